use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use confab_app::ports::{RateDecision, RateLimit, RateLimiter, StoreResult};
use tokio::time::Instant;

/// Rate limits for a single instance: counters in memory, each window starting at its first
/// event. The Redis limiter takes over when instances must share the count.
#[derive(Debug, Default)]
pub struct InProcessRateLimiter {
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    count: u32,
    ends_at: Instant,
}

/// Past this many keys, expired windows are swept on the next hit, so that memory follows the
/// number of active users rather than every user ever seen.
const SWEEP_ABOVE: usize = 10_000;

impl InProcessRateLimiter {
    /// No counts yet.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RateLimiter for InProcessRateLimiter {
    async fn hit(&self, key: &str, limit: RateLimit) -> StoreResult<RateDecision> {
        let now = Instant::now();
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, window| window.ends_at > now);
        }
        let window = windows
            .entry(key.to_owned())
            .and_modify(|window| {
                if window.ends_at <= now {
                    *window = Window {
                        count: 0,
                        ends_at: now + limit.window,
                    };
                }
            })
            .or_insert(Window {
                count: 0,
                ends_at: now + limit.window,
            });
        window.count = window.count.saturating_add(1);
        if window.count > limit.max {
            return Ok(RateDecision::Limited {
                retry_after: window.ends_at - now,
            });
        }
        Ok(RateDecision::Allowed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_event_past_the_limit_is_refused_until_the_window_ends() {
        let limiter = InProcessRateLimiter::new();
        let limit = RateLimit {
            max: 3,
            window: Duration::from_secs(60),
        };
        for _ in 0..3 {
            assert_eq!(
                limiter.hit("ann", limit).await.unwrap(),
                RateDecision::Allowed
            );
        }
        tokio::time::advance(Duration::from_secs(20)).await;
        let RateDecision::Limited { retry_after } = limiter.hit("ann", limit).await.unwrap() else {
            panic!("the fourth event in the window must be refused");
        };
        assert_eq!(retry_after, Duration::from_secs(40));
        assert_eq!(
            limiter.hit("bob", limit).await.unwrap(),
            RateDecision::Allowed,
            "keys count apart"
        );
        tokio::time::advance(Duration::from_secs(40)).await;
        assert_eq!(
            limiter.hit("ann", limit).await.unwrap(),
            RateDecision::Allowed,
            "a new window"
        );
    }

    #[tokio::test]
    async fn concurrent_hits_never_let_more_than_the_limit_through() {
        let limiter = std::sync::Arc::new(InProcessRateLimiter::new());
        let limit = RateLimit::per_minute(20);
        let hits = (0..100).map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.hit("ann", limit).await.unwrap() })
        });
        let mut allowed = 0;
        for hit in hits {
            if hit.await.unwrap() == RateDecision::Allowed {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 20);
    }
}
