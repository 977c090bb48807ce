use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use confab_domain::UserId;
use confab_realtime::Interest;
use fred::interfaces::SortedSetsInterface;
use fred::types::scripts::Script;

use crate::RedisConnection;
use crate::deadline::{keep_ms, now_ms, ttl_ms};

/// Puts this instance on the routes of some users, with a deadline, and clears the deadlines
/// already passed (instances that stopped renewing theirs). A user's set expires long after
/// any deadline in it (ten TTLs), only so that Redis forgets users nobody routes any more.
const ROUTE: &str = r"
for i = 6, #ARGV do
  local key = ARGV[5] .. ARGV[i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[2])
  redis.call('ZADD', key, ARGV[1], ARGV[4])
  redis.call('PEXPIRE', key, ARGV[3])
end
return #ARGV - 5
";

/// Users routed per script call when renewing: large enough to keep round trips few, small
/// enough not to hold Redis for long.
const RENEW_BATCH: usize = 500;

/// The key of `user`'s routes, given [`route_prefix`].
pub(crate) fn route_key(prefix: &str, user: UserId) -> String {
    format!("{prefix}{user}")
}

/// What every route key begins with.
pub(crate) fn route_prefix(connection: &RedisConnection) -> String {
    connection.key("route:user:")
}

/// Which instances hold sockets of which users, kept in Redis for the bus (see
/// [`RedisBus`](crate::RedisBus)): one sorted set per user, of the instances that hold a socket
/// of theirs, each with a deadline.
///
/// This instance adds itself to a user's routes when their first socket here opens, before
/// the socket reads its backlog, and removes itself when their last socket here closes. It
/// pushes its deadlines forward every third of the TTL; an instance that dies stops doing so,
/// and publishers stop routing to it once its deadlines pass. Renewing also puts back routes
/// that Redis lost (a restart without persistence).
#[derive(Clone)]
pub struct RedisRoutes {
    connection: RedisConnection,
    ttl: Duration,
    /// Sockets per user on this instance.
    counts: Arc<Mutex<HashMap<UserId, usize>>>,
    /// Serializes route changes, so that a user who leaves and comes back at once ends routed.
    changes: Arc<tokio::sync::Mutex<()>>,
    route: Script,
}

impl std::fmt::Debug for RedisRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRoutes")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl RedisRoutes {
    /// Routes on `connection`; those of an instance that stops renewing them lapse after
    /// `ttl`.
    pub fn new(connection: RedisConnection, ttl: Duration) -> Self {
        Self {
            connection,
            ttl,
            counts: Arc::default(),
            changes: Arc::new(tokio::sync::Mutex::new(())),
            route: Script::from_lua(ROUTE),
        }
    }

    /// Pushes this instance's deadlines forward every third of the TTL, until the process
    /// ends.
    pub fn keep_alive(&self) -> tokio::task::JoinHandle<()> {
        let routes = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(routes.ttl / 3);
            loop {
                every.tick().await;
                let users: Vec<UserId> = routes.lock_counts().keys().copied().collect();
                for batch in users.chunks(RENEW_BATCH) {
                    if let Err(error) = routes.add(batch).await {
                        tracing::warn!(%error, "could not renew this instance's routes in Redis");
                    }
                }
            }
        })
    }

    fn lock_counts(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, usize>> {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn count(&self, user: UserId, change: isize) -> (usize, usize) {
        let mut counts = self.lock_counts();
        let before = counts.get(&user).copied().unwrap_or(0);
        let after = before.saturating_add_signed(change);
        if after == 0 {
            counts.remove(&user);
        } else {
            counts.insert(user, after);
        }
        (before, after)
    }

    fn wanted(&self, user: UserId) -> bool {
        self.lock_counts().contains_key(&user)
    }

    async fn add(&self, users: &[UserId]) -> Result<(), fred::error::Error> {
        let now = now_ms();
        let mut args = vec![
            now.saturating_add(ttl_ms(self.ttl)).to_string(),
            now.to_string(),
            keep_ms(self.ttl).to_string(),
            self.connection.instance_id().to_owned(),
            route_prefix(&self.connection),
        ];
        args.extend(users.iter().map(ToString::to_string));
        let _: i64 = self
            .route
            .evalsha_with_reload(&self.connection.client, Vec::<String>::new(), args)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Interest for RedisRoutes {
    async fn arrive(&self, user: UserId) {
        let (before, _) = self.count(user, 1);
        if before > 0 {
            return;
        }
        let _change = self.changes.lock().await;
        if self.wanted(user)
            && let Err(error) = self.add(&[user]).await
        {
            // Live events from other instances will not reach this user's socket until the
            // next renewal routes them; the socket still fills gaps from storage and `sync`.
            tracing::warn!(%error, %user, "could not route the user's events to this instance");
        }
    }

    async fn leave(&self, user: UserId) {
        let (_, after) = self.count(user, -1);
        if after > 0 {
            return;
        }
        let _change = self.changes.lock().await;
        if !self.wanted(user) {
            let key = route_key(&route_prefix(&self.connection), user);
            let removed: Result<i64, _> = self
                .connection
                .client
                .zrem(key, self.connection.instance_id())
                .await;
            if let Err(error) = removed {
                // Publishers route this user's events here, in vain, until the deadline.
                tracing::warn!(%error, %user, "could not remove the user's route");
            }
        }
    }
}
