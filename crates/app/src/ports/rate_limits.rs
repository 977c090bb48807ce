use std::time::Duration;

use async_trait::async_trait;

use super::StoreResult;

/// How much of something is allowed: `max` events per `window`, the window starting at the
/// first event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Events allowed per window.
    pub max: u32,
    /// The window.
    pub window: Duration,
}

impl RateLimit {
    /// `max` events per minute.
    pub const fn per_minute(max: u32) -> Self {
        Self {
            max,
            window: Duration::from_secs(60),
        }
    }
}

/// The answer of a rate limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Go ahead.
    Allowed,
    /// Refused; the window reopens after this long.
    Limited {
        /// How long until the caller may try again.
        retry_after: Duration,
    },
}

/// Counts events per key in windows, one count shared by every instance. On one instance a
/// limit is exact; an implementation that answers some hits from a local picture of the count
/// may let a limit be passed when one key is hit on several instances close together, and
/// documents by how much and how close.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one event for `key` and says whether it is within `limit`.
    async fn hit(&self, key: &str, limit: RateLimit) -> StoreResult<RateDecision>;
}
