//! Rate limits shared by every instance, counted in Redis.
//!
//! Every message sent counts against its sender's limit, so the count is on the path of every
//! send. Hits asked for while one script call is under way wait for it and go out together in
//! the next call: one round trip for all of them, however many sockets are sending. The counts
//! stay exact across instances; nothing is counted locally.

use std::time::Duration;

use async_trait::async_trait;
use confab_app::ports::{RateDecision, RateLimit, RateLimiter, StoreError, StoreResult};
use fred::types::scripts::Script;
use tokio::sync::{mpsc, oneshot};

use crate::RedisConnection;

/// Counts every key of one batch in one script, so that concurrent hits from any number of
/// instances can never let more than the limit through: the first hit of a window starts its
/// expiry. Returns each key's count and remaining time, in order, flattened.
const HIT: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then
    redis.call('PEXPIRE', key, ARGV[i])
  end
  out[#out + 1] = count
  out[#out + 1] = redis.call('PTTL', key)
end
return out
";

/// The most hits counted by one script call.
const BATCH: usize = 256;
/// Hits waiting for the counter task; a full queue makes callers wait for room.
const QUEUE: usize = 4096;

/// One hit waiting to be counted: its full key, its window, and who wants the answer.
type Pending = (String, u64, oneshot::Sender<StoreResult<(u64, i64)>>);

/// Rate limits shared by every instance.
#[derive(Debug, Clone)]
pub struct RedisRateLimiter {
    connection: RedisConnection,
    queue: mpsc::Sender<Pending>,
}

impl RedisRateLimiter {
    /// A limiter on `connection`. Must be called within a Tokio runtime: it starts the task
    /// that counts hits in batches.
    pub fn new(connection: RedisConnection) -> Self {
        let (queue, incoming) = mpsc::channel(QUEUE);
        tokio::spawn(count_batches(connection.clone(), incoming));
        Self { connection, queue }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(&self, key: &str, limit: RateLimit) -> StoreResult<RateDecision> {
        let key = self.connection.key(&format!("rate:{key}"));
        let window_ms = u64::try_from(limit.window.as_millis()).unwrap_or(u64::MAX);
        let stopped = || StoreError::Backend("the rate limit counter has stopped".into());
        let (answer, counted) = oneshot::channel();
        self.queue
            .send((key, window_ms, answer))
            .await
            .map_err(|_| stopped())?;
        let (count, ttl) = counted.await.map_err(|_| stopped())??;
        if count > u64::from(limit.max) {
            let retry_after = Duration::from_millis(u64::try_from(ttl).unwrap_or(0));
            return Ok(RateDecision::Limited { retry_after });
        }
        Ok(RateDecision::Allowed)
    }
}

/// Counts queued hits, as many per script call as have queued up, until every limiter is gone.
async fn count_batches(connection: RedisConnection, mut incoming: mpsc::Receiver<Pending>) {
    let script = Script::from_lua(HIT);
    let mut batch = Vec::with_capacity(BATCH);
    while incoming.recv_many(&mut batch, BATCH).await > 0 {
        let mut keys = Vec::with_capacity(batch.len());
        let mut windows = Vec::with_capacity(batch.len());
        let mut answers = Vec::with_capacity(batch.len());
        for (key, window, answer) in batch.drain(..) {
            keys.push(key);
            windows.push(window);
            answers.push(answer);
        }
        match count(&connection, &script, keys, windows).await {
            Ok(counts) => {
                for (answer, counted) in answers.into_iter().zip(counts) {
                    let _ = answer.send(Ok(counted));
                }
            }
            // The script is all or nothing for anything short of a bug in it, so the error is
            // everyone's: each caller gets it, and the send fails rather than going uncounted.
            Err(error) => {
                let text = error.to_string();
                for answer in answers {
                    let _ = answer.send(Err(StoreError::Backend(text.clone().into())));
                }
            }
        }
    }
}

/// One script call counting `keys`: their counts and remaining times, in order.
async fn count(
    connection: &RedisConnection,
    script: &Script,
    keys: Vec<String>,
    windows: Vec<u64>,
) -> Result<Vec<(u64, i64)>, fred::error::Error> {
    let expected = keys.len();
    let flat: Vec<i64> = script
        .evalsha_with_reload(&connection.client, keys, windows)
        .await?;
    if flat.len() != expected * 2 {
        return Err(fred::error::Error::new(
            fred::error::ErrorKind::Parse,
            format!("expected {} counts, got {}", expected * 2, flat.len()),
        ));
    }
    Ok(flat
        .chunks_exact(2)
        .map(|pair| (u64::try_from(pair[0]).unwrap_or(u64::MAX), pair[1]))
        .collect())
}
