//! Rate limits shared by every instance, counted in Redis.
//!
//! Every message sent counts against its sender's limit, so the count is on the path of every
//! send. Hits asked for while one script call is under way wait for it and go out together in
//! the next call: one round trip for all of them, however many sockets are sending. A sender
//! well under their limit does not wait even for that: the hit is answered from what this
//! instance knows of the count ([`crate::allowance`]) and counted in the background. Redis's
//! count stays the one every instance goes by.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use confab_app::ports::{RateDecision, RateLimit, RateLimiter, StoreError, StoreResult};
use fred::types::scripts::Script;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::RedisConnection;
use crate::allowance::{Allowances, Answer};

/// Counts every key of one batch in one script, so that hits waiting for it, from any number
/// of instances, never let more than the limit through (hits answered locally are bounded as
/// [`crate::allowance`] says): the first hit of a window starts its expiry. Returns each key's
/// count and remaining time, in order, flattened.
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

/// One hit waiting to be counted: its full key, its window, and who waits for the answer
/// (nobody when it was answered locally).
type Pending = (
    String,
    u64,
    Option<oneshot::Sender<StoreResult<(u64, i64)>>>,
);

/// This instance's picture of the counts, shared by the callers and the counter task.
type Shared = Arc<Mutex<Allowances>>;

/// Rate limits shared by every instance.
#[derive(Debug, Clone)]
pub struct RedisRateLimiter {
    connection: RedisConnection,
    queue: mpsc::Sender<Pending>,
    allowances: Shared,
}

impl RedisRateLimiter {
    /// A limiter on `connection`. Must be called within a Tokio runtime: it starts the task
    /// that counts hits in batches.
    pub fn new(connection: RedisConnection) -> Self {
        let (queue, incoming) = mpsc::channel(QUEUE);
        let allowances = Shared::default();
        tokio::spawn(count_batches(
            connection.clone(),
            incoming,
            allowances.clone(),
        ));
        Self {
            connection,
            queue,
            allowances,
        }
    }
}

/// The picture, even if a thread panicked while holding it: it holds plain counts, and a stale
/// one only sends more hits to Redis.
fn lock(allowances: &Mutex<Allowances>) -> MutexGuard<'_, Allowances> {
    allowances
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(&self, key: &str, limit: RateLimit) -> StoreResult<RateDecision> {
        let key = self.connection.key(&format!("rate:{key}"));
        let window_ms = u64::try_from(limit.window.as_millis()).unwrap_or(u64::MAX);
        let stopped = || StoreError::Backend("the rate limit counter has stopped".into());
        let permit = self.queue.reserve().await.map_err(|_| stopped())?;
        let (answer, counted) = oneshot::channel();
        // The picture takes the hit and the queue gets it under one lock, with room already
        // reserved: hits reach Redis in the order the picture saw them, and a caller that
        // gives up while waiting for room leaves no hit in the picture that Redis never gets.
        let local = {
            let mut allowances = lock(&self.allowances);
            let local = allowances.hit(&key, limit.max, Instant::now()) == Answer::Local;
            permit.send((key, window_ms, (!local).then_some(answer)));
            local
        };
        if local {
            return Ok(RateDecision::Allowed);
        }
        let (count, ttl) = counted.await.map_err(|_| stopped())??;
        if count > u64::from(limit.max) {
            let retry_after = Duration::from_millis(u64::try_from(ttl).unwrap_or(0));
            return Ok(RateDecision::Limited { retry_after });
        }
        Ok(RateDecision::Allowed)
    }
}

/// Counts queued hits, as many per script call as have queued up, until every limiter is gone.
async fn count_batches(
    connection: RedisConnection,
    mut incoming: mpsc::Receiver<Pending>,
    allowances: Shared,
) {
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
        let result = count(&connection, &script, keys.clone(), windows).await;
        let now = Instant::now();
        match result {
            Ok(counts) => {
                {
                    let mut allowances = lock(&allowances);
                    for (key, (count, ttl)) in keys.iter().zip(&counts) {
                        allowances.counted(key, *count, *ttl, now);
                    }
                }
                for (answer, counted) in answers.into_iter().zip(counts) {
                    if let Some(answer) = answer {
                        let _ = answer.send(Ok(counted));
                    }
                }
            }
            // The script is all or nothing for anything short of a bug in it, so the error is
            // everyone's: each waiting caller gets it and decides (the send service lets the
            // message through and logs it). Hits answered locally have nobody to tell, so the
            // loss is logged here.
            Err(error) => {
                {
                    let mut allowances = lock(&allowances);
                    for key in &keys {
                        allowances.lost(key, now);
                    }
                }
                let text = error.to_string();
                let unanswered = answers.iter().filter(|answer| answer.is_none()).count();
                if unanswered > 0 {
                    tracing::warn!(%error, hits = unanswered, "rate limit hits allowed locally could not be counted");
                }
                for answer in answers.into_iter().flatten() {
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
