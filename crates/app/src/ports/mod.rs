//! The ports: what the use cases need from the outside world, as traits. Adapters in other
//! crates implement them; services hold them as `Arc<dyn Port>`.

mod clock;
mod conversations;
mod credentials;
mod events;
mod messages;
mod presence;
mod probe;
mod rate_limits;
mod users;

pub use clock::{Clock, SystemClock};
pub use conversations::ConversationRepository;
pub use credentials::{AccessToken, PasswordHasher, TokenError, TokenIssuer};
pub use events::EventPublisher;
pub use messages::{MessageRepository, NewMessage, Posted};
pub use presence::PresenceStore;
pub use probe::Probe;
pub use rate_limits::{RateDecision, RateLimit, RateLimiter};
pub use users::{NewUser, UserCredentials, UserRepository};

#[cfg(feature = "mocks")]
pub use {
    clock::MockClock,
    conversations::MockConversationRepository,
    credentials::{MockPasswordHasher, MockTokenIssuer},
    events::MockEventPublisher,
    messages::MockMessageRepository,
    presence::MockPresenceStore,
    probe::MockProbe,
    rate_limits::MockRateLimiter,
    users::MockUserRepository,
};

/// Why a repository call failed, in terms the use cases can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule would be broken; the text says which, for the client.
    #[error("{0}")]
    Conflict(String),
    /// The database failed or could not be reached.
    #[error("storage failure")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What every repository call returns.
pub type StoreResult<T> = Result<T, StoreError>;
