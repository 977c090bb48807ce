use std::fmt;

use confab_domain::{Message, UserId};
use uuid::Uuid;

/// Identifies one connected socket (one device), so that an event can skip the socket it came
/// from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(Uuid);

impl SessionId {
    /// A fresh session id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// The UUID inside.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Something that happened and was committed, for delivery to the sockets of the users it
/// concerns. Published only after the change is durable.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new message was stored.
    MessageCreated {
        /// The message as stored.
        message: Message,
        /// Every member of the conversation, the sender included (their other devices need it).
        recipients: Vec<UserId>,
        /// The socket that sent it, which gets an `ack` instead of a copy.
        origin: Option<SessionId>,
    },
}

impl Event {
    /// The users whose sockets should receive the event.
    pub fn recipients(&self) -> &[UserId] {
        match self {
            Self::MessageCreated { recipients, .. } => recipients,
        }
    }

    /// The socket the event came from, which does not get it back.
    pub fn origin(&self) -> Option<SessionId> {
        match self {
            Self::MessageCreated { origin, .. } => *origin,
        }
    }
}
