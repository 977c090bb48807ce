use async_trait::async_trait;

use crate::Event;

/// Delivers committed events to the sockets of the users they concern, on this instance and,
/// with a shared bus, on every other.
///
/// Publishing cannot fail from the caller's point of view: the change is already durable, and a
/// client that misses an event recovers it with `sync`. Adapters log their own failures.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Sends `event` on its way.
    async fn publish(&self, event: Event);
}
