use std::time::Duration;

use async_trait::async_trait;
use confab_app::ports::{RateDecision, RateLimit, RateLimiter, StoreError, StoreResult};
use fred::types::scripts::Script;

use crate::RedisConnection;

/// Counts in one script, so that concurrent hits from any number of instances can never let
/// more than the limit through: the first hit of a window starts its expiry.
const HIT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
return {count, ttl}
";

/// Rate limits shared by every instance.
#[derive(Debug, Clone)]
pub struct RedisRateLimiter {
    connection: RedisConnection,
    script: Script,
}

impl RedisRateLimiter {
    /// A limiter on `connection`.
    pub fn new(connection: RedisConnection) -> Self {
        Self {
            connection,
            script: Script::from_lua(HIT),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(&self, key: &str, limit: RateLimit) -> StoreResult<RateDecision> {
        let key = self.connection.key(&format!("rate:{key}"));
        let window_ms = u64::try_from(limit.window.as_millis()).unwrap_or(u64::MAX);
        let (count, ttl): (u64, i64) = self
            .script
            .evalsha_with_reload(&self.connection.client, vec![key], vec![window_ms])
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        if count > u64::from(limit.max) {
            let retry_after = Duration::from_millis(u64::try_from(ttl).unwrap_or(0));
            return Ok(RateDecision::Limited { retry_after });
        }
        Ok(RateDecision::Allowed)
    }
}
