use std::collections::HashSet;
use std::fmt;

use confab_domain::{Conversation, ConversationId, Message, Role, Seq, Timestamp, UserId};
use uuid::Uuid;

/// Identifies one connected socket (one device), so that an event can skip the socket it came
/// from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
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

/// One member's personal view of a conversation's new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberActivity {
    /// The member.
    pub user_id: UserId,
    /// Their role.
    pub role: Role,
    /// Their unread count now.
    pub unread_count: u64,
}

/// Something that happened and was committed, for delivery to the sockets of the users it
/// concerns. Published only after the change is durable. Serializable, so that a bus can carry
/// it to other instances.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
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
    /// A message was edited.
    MessageUpdated {
        /// The message in its new state.
        message: Message,
        /// Every member.
        recipients: Vec<UserId>,
    },
    /// A message was deleted: it keeps its id and seq, and loses its body.
    MessageDeleted {
        /// The message in its deleted state.
        message: Message,
        /// Every member.
        recipients: Vec<UserId>,
    },
    /// A member's read or delivery cursor moved forward.
    Receipt {
        /// The conversation.
        conversation_id: ConversationId,
        /// Whose cursors.
        user_id: UserId,
        /// Their read cursor now.
        read_seq: Seq,
        /// Their delivery cursor now.
        delivered_seq: Seq,
        /// Every member, the reader's other devices included.
        recipients: Vec<UserId>,
    },
    /// A member started or stopped typing. Never stored.
    Typing {
        /// The conversation.
        conversation_id: ConversationId,
        /// Who is typing.
        user_id: UserId,
        /// Started (true) or stopped (false).
        typing: bool,
        /// The other members: never the typist.
        recipients: Vec<UserId>,
    },
    /// A user came online or went offline.
    Presence {
        /// The user.
        user_id: UserId,
        /// Online now?
        online: bool,
        /// When they were last seen (set when they go offline).
        last_seen_at: Option<Timestamp>,
        /// Users who share a conversation with them.
        recipients: Vec<UserId>,
    },
    /// A conversation changed in a way that moves it in sidebars: new activity, a read on
    /// another device. Each member gets their own unread count and role.
    ConversationUpdated {
        /// The conversation now.
        conversation: Conversation,
        /// Its newest message.
        last_message: Option<Message>,
        /// The members to tell, each with their own view.
        members: Vec<MemberActivity>,
    },
}

impl Event {
    /// Every user who should hear of the event.
    pub fn recipients(&self) -> Vec<UserId> {
        match self {
            Self::MessageCreated { recipients, .. }
            | Self::MessageUpdated { recipients, .. }
            | Self::MessageDeleted { recipients, .. }
            | Self::Receipt { recipients, .. }
            | Self::Typing { recipients, .. }
            | Self::Presence { recipients, .. } => recipients.clone(),
            Self::ConversationUpdated { members, .. } => {
                members.iter().map(|m| m.user_id).collect()
            }
        }
    }

    /// The copy of this event for some of its recipients only: `users` alone among its
    /// recipients, and for `ConversationUpdated` only their own views (each carries its
    /// member's unread count).
    ///
    /// A bus that carries events between instances sends each instance the copy for the
    /// recipients it holds sockets of: for a group of n members spread over k instances that
    /// is k copies, each listing only its own instance's members, not n copies of an n-long
    /// list.
    #[must_use]
    pub fn addressed_to(mut self, users: &HashSet<UserId>) -> Self {
        match &mut self {
            Self::MessageCreated { recipients, .. }
            | Self::MessageUpdated { recipients, .. }
            | Self::MessageDeleted { recipients, .. }
            | Self::Receipt { recipients, .. }
            | Self::Typing { recipients, .. }
            | Self::Presence { recipients, .. } => recipients.retain(|user| users.contains(user)),
            Self::ConversationUpdated { members, .. } => {
                members.retain(|member| users.contains(&member.user_id));
            }
        }
        self
    }

    /// The socket the event came from, which does not get it back.
    pub fn origin(&self) -> Option<SessionId> {
        match self {
            Self::MessageCreated { origin, .. } => *origin,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use confab_domain::ConversationKind;

    fn activity(user_id: UserId, unread_count: u64) -> MemberActivity {
        MemberActivity {
            user_id,
            role: Role::Member,
            unread_count,
        }
    }

    #[test]
    fn a_copy_for_some_recipients_lists_only_them() {
        let users = [UserId::generate(), UserId::generate(), UserId::generate()];
        let typing = Event::Typing {
            conversation_id: ConversationId::generate(),
            user_id: UserId::generate(),
            typing: true,
            recipients: users.to_vec(),
        };
        let some = HashSet::from([users[0], users[2], UserId::generate()]);
        let copy = typing.clone().addressed_to(&some);
        assert_eq!(
            copy.recipients(),
            vec![users[0], users[2]],
            "only recipients that were already there, in their order"
        );
        assert_eq!(typing.recipients().len(), 3, "the original is untouched");
    }

    #[test]
    fn a_copy_of_a_conversation_update_keeps_only_its_recipients_own_views() {
        let (ann, bob, cy) = (UserId::generate(), UserId::generate(), UserId::generate());
        let update = Event::ConversationUpdated {
            conversation: Conversation {
                id: ConversationId::generate(),
                kind: ConversationKind::Group,
                name: Some("team".into()),
                topic: None,
                created_at: Utc::now(),
                updated_at: Utc::now(),
                last_seq: Seq::new(3),
                last_deleted_seq: Seq::ZERO,
            },
            last_message: None,
            members: vec![activity(ann, 0), activity(bob, 3), activity(cy, 1)],
        };
        let Event::ConversationUpdated { members, .. } =
            update.addressed_to(&HashSet::from([bob, cy]))
        else {
            panic!("still a conversation update")
        };
        assert_eq!(members, vec![activity(bob, 3), activity(cy, 1)]);
    }
}
