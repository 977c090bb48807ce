//! # confab-app
//!
//! Confab's use cases. Each service (`AuthService`, `ConversationService`, `MessageService`)
//! holds the ports it needs as `Arc<dyn Port>` and knows nothing of HTTP, SQL or sockets: the
//! adapters in other crates implement the ports, and the edges (REST, WebSocket) call the
//! services.
//!
//! With the `mocks` feature, every port has a `mockall` mock (`MockUserRepository`, …) for unit
//! tests; release builds never contain them.
#![deny(missing_docs)]

mod error;
mod events;
pub mod ports;
mod services;
mod views;

use std::sync::Arc;

pub use error::AppError;
pub use events::{Event, MemberActivity, SessionId};
pub use services::auth::{AuthService, Session, SignupInput};
pub use services::conversations::ConversationService;
pub use services::messages::{MessageService, SendInput, SendLimits, Sent};
pub use services::presence::{ConnectionLimits, PresenceService};
pub use views::{Backlog, ConversationView, MemberView, MessagePage, PageQuery, ReadState};

/// Everything a service may need from the outside world, as adapters chosen at start-up.
#[derive(Clone)]
pub struct Ports {
    /// User accounts.
    pub users: Arc<dyn ports::UserRepository>,
    /// Conversations and their members.
    pub conversations: Arc<dyn ports::ConversationRepository>,
    /// Messages.
    pub messages: Arc<dyn ports::MessageRepository>,
    /// Where committed events go to reach sockets.
    pub events: Arc<dyn ports::EventPublisher>,
    /// Who is online.
    pub presence: Arc<dyn ports::PresenceStore>,
    /// Rate limits.
    pub limiter: Arc<dyn ports::RateLimiter>,
    /// How fast a user may send.
    pub send_limits: SendLimits,
    /// Who may open sockets.
    pub connection_limits: ConnectionLimits,
    /// Password hashing.
    pub hasher: Arc<dyn ports::PasswordHasher>,
    /// Access tokens.
    pub tokens: Arc<dyn ports::TokenIssuer>,
    /// The time.
    pub clock: Arc<dyn ports::Clock>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}

/// All of Confab's use cases, wired to one set of ports. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Services {
    /// Accounts and tokens.
    pub auth: Arc<AuthService>,
    /// Conversations, members, read state.
    pub conversations: Arc<ConversationService>,
    /// Sending and reading messages.
    pub messages: Arc<MessageService>,
    /// Who is online.
    pub presence: Arc<PresenceService>,
}

impl Services {
    /// Builds every service over `ports`.
    pub fn new(ports: Ports) -> Self {
        Self {
            auth: Arc::new(AuthService::new(
                ports.users.clone(),
                ports.hasher.clone(),
                ports.tokens.clone(),
                ports.clock.clone(),
            )),
            conversations: Arc::new(ConversationService::new(
                ports.conversations.clone(),
                ports.users.clone(),
                ports.messages.clone(),
                ports.events.clone(),
                ports.clock.clone(),
            )),
            messages: Arc::new(MessageService::new(
                ports.conversations.clone(),
                ports.messages,
                ports.events.clone(),
                ports.clock.clone(),
                ports.limiter.clone(),
                ports.send_limits,
            )),
            presence: Arc::new(PresenceService::new(
                ports.presence,
                ports.limiter.clone(),
                ports.connection_limits,
                ports.conversations,
                ports.users,
                ports.events,
                ports.clock,
            )),
        }
    }
}
