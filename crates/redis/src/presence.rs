use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use confab_app::SessionId;
use confab_app::ports::{PresenceStore, StoreError, StoreResult};
use confab_domain::UserId;
use fred::types::scripts::Script;

use crate::RedisConnection;
use crate::deadline::{keep_ms, now_ms, ttl_ms};

/// A socket joins its user's set with a deadline; returns how many live sockets the user has.
/// The sets themselves expire long after any deadline in them (ten TTLs), only so that Redis
/// forgets users nobody sweeps any more: the sweep must find a user's set to announce them.
const CONNECT: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return redis.call('ZCARD', KEYS[1])
";

/// Pushes the deadlines of many sockets (`user|session`) forward in one call; the user sets'
/// keys are derived from the members, as in the sweep.
const RENEW: &str = r"
for i = 4, #ARGV do
  local member = ARGV[i]
  local split = string.find(member, '|', 1, true)
  local key = ARGV[3] .. string.sub(member, 1, split - 1)
  redis.call('ZADD', key, ARGV[1], string.sub(member, split + 1))
  redis.call('PEXPIRE', key, ARGV[2])
  redis.call('ZADD', KEYS[1], ARGV[1], member)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return #ARGV - 3
";

/// Sockets renewed per script call: large enough to keep round trips few, small enough not to
/// hold Redis for long.
const RENEW_BATCH: usize = 500;

/// A socket leaves; returns whether it was still there and how many live sockets remain.
const DISCONNECT: &str = r"
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
return {removed, redis.call('ZCARD', KEYS[1])}
";

/// Takes the sockets whose deadline passed (their instance stopped renewing them) and returns
/// the users left with none. Each deadline is taken by exactly one instance (ZREM decides),
/// so each user goes offline once.
const SWEEP: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 500)
local gone = {}
for _, member in ipairs(due) do
  if redis.call('ZREM', KEYS[1], member) == 1 then
    local split = string.find(member, '|', 1, true)
    local user = string.sub(member, 1, split - 1)
    local session = string.sub(member, split + 1)
    local key = ARGV[2] .. user
    -- Only the sweep that removes a user's last socket announces them: a second expired
    -- socket of theirs, already cleared below, announces nothing.
    local removed = redis.call('ZREM', key, session)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
    if removed == 1 and redis.call('ZCARD', key) == 0 then
      table.insert(gone, user)
    end
  end
end
return gone
";

/// Presence shared by every instance. Each socket is an entry with a deadline in its user's
/// set; this instance renews the deadlines of its own sockets every third of the TTL, so a
/// user is online while any instance renews one of their sockets.
#[derive(Clone)]
pub struct RedisPresence {
    connection: RedisConnection,
    ttl: Duration,
    local: Arc<Mutex<HashMap<SessionId, UserId>>>,
    connect: Script,
    renew: Script,
    disconnect: Script,
    sweep: Script,
}

impl std::fmt::Debug for RedisPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPresence")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn backend(error: fred::error::Error) -> StoreError {
    StoreError::Backend(Box::new(error))
}

/// A socket's entry in the deadlines set.
fn member(user: UserId, session: SessionId) -> String {
    format!("{user}|{session}")
}

impl RedisPresence {
    /// Presence on `connection`; a socket whose instance stops renewing it counts as gone
    /// after `ttl`.
    pub fn new(connection: RedisConnection, ttl: Duration) -> Self {
        Self {
            connection,
            ttl,
            local: Arc::default(),
            connect: Script::from_lua(CONNECT),
            renew: Script::from_lua(RENEW),
            disconnect: Script::from_lua(DISCONNECT),
            sweep: Script::from_lua(SWEEP),
        }
    }

    fn user_key(&self, user: UserId) -> String {
        self.connection.key(&format!("presence:user:{user}"))
    }

    fn deadlines_key(&self) -> String {
        self.connection.key("presence:deadlines")
    }

    /// How long Redis keeps a user's set after its last renewal (see CONNECT).
    fn keep_ms(&self) -> i64 {
        keep_ms(self.ttl)
    }

    fn ttl_ms(&self) -> i64 {
        ttl_ms(self.ttl)
    }

    /// Renews the deadlines of this instance's sockets every third of the TTL, until the
    /// process ends.
    pub fn keep_alive(&self) -> tokio::task::JoinHandle<()> {
        let presence = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(presence.ttl / 3);
            loop {
                every.tick().await;
                if let Err(error) = presence.renew().await {
                    tracing::warn!(%error, "could not renew presence in Redis");
                }
            }
        })
    }

    async fn renew(&self) -> Result<(), fred::error::Error> {
        let members: Vec<String> = {
            let local = self
                .local
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            local
                .iter()
                .map(|(session, user)| member(*user, *session))
                .collect()
        };
        let deadline = now_ms() + self.ttl_ms();
        for batch in members.chunks(RENEW_BATCH) {
            let mut args = vec![
                deadline.to_string(),
                self.keep_ms().to_string(),
                self.connection.key("presence:user:"),
            ];
            args.extend(batch.iter().cloned());
            let _: i64 = self
                .renew
                .evalsha_with_reload(&self.connection.client, vec![self.deadlines_key()], args)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl PresenceStore for RedisPresence {
    async fn connected(&self, user: UserId, session: SessionId) -> StoreResult<bool> {
        self.local
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(session, user);
        let now = now_ms();
        let keys = vec![self.user_key(user), self.deadlines_key()];
        let args = vec![
            session.to_string(),
            (now + self.ttl_ms()).to_string(),
            now.to_string(),
            member(user, session),
            self.keep_ms().to_string(),
        ];
        let live: i64 = self
            .connect
            .evalsha_with_reload(&self.connection.client, keys, args)
            .await
            .map_err(backend)?;
        Ok(live == 1)
    }

    async fn disconnected(&self, user: UserId, session: SessionId) -> StoreResult<bool> {
        self.local
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&session);
        let keys = vec![self.user_key(user), self.deadlines_key()];
        let args = vec![
            session.to_string(),
            now_ms().to_string(),
            member(user, session),
        ];
        let (removed, live): (i64, i64) = self
            .disconnect
            .evalsha_with_reload(&self.connection.client, keys, args)
            .await
            .map_err(backend)?;
        // A socket already swept as expired was announced offline then; not twice.
        Ok(removed == 1 && live == 0)
    }

    async fn sockets(&self, user: UserId) -> StoreResult<usize> {
        let live: i64 = fred::interfaces::SortedSetsInterface::zcount(
            &self.connection.client,
            self.user_key(user),
            (now_ms() + 1) as f64,
            f64::INFINITY,
        )
        .await
        .map_err(backend)?;
        Ok(usize::try_from(live).unwrap_or(0))
    }

    async fn online(&self, users: &[UserId]) -> StoreResult<Vec<UserId>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let pipeline = self.connection.client.pipeline();
        let now = now_ms();
        for user in users {
            let queued: Result<(), _> = fred::interfaces::SortedSetsInterface::zcount(
                &pipeline,
                self.user_key(*user),
                (now + 1) as f64,
                f64::INFINITY,
            )
            .await;
            queued.map_err(backend)?;
        }
        let counts: Vec<i64> = pipeline.all().await.map_err(backend)?;
        Ok(users
            .iter()
            .zip(counts)
            .filter(|(_, count)| *count > 0)
            .map(|(user, _)| *user)
            .collect())
    }

    async fn expired(&self) -> StoreResult<Vec<UserId>> {
        let keys = vec![self.deadlines_key()];
        let args = vec![now_ms().to_string(), self.connection.key("presence:user:")];
        let gone: Vec<String> = self
            .sweep
            .evalsha_with_reload(&self.connection.client, keys, args)
            .await
            .map_err(backend)?;
        Ok(gone.iter().filter_map(|user| user.parse().ok()).collect())
    }
}
