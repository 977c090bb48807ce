//! The Redis adapters against a real Redis, as several instances would share it. They need
//! `CONFAB_TEST_REDIS_URL` (CI's services pass sets it; a test fails if Redis is then
//! unreachable). Each test uses its own key prefix and deletes its keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use confab_app::Event;
use confab_app::SessionId;
use confab_app::ports::EventPublisher;
use confab_app::ports::{PresenceStore, RateDecision, RateLimit, RateLimiter};
use confab_domain::ConversationId;
use confab_domain::UserId;
use confab_realtime::{Hub, Interest, LocalSocket};
use confab_redis::{
    RedisBus, RedisConnection, RedisPresence, RedisRateLimiter, RedisRoutes, RedisSettings,
};

/// A connection as instance `instance` with the test's own prefix, or `None` (said out loud)
/// when no Redis is configured for tests.
async fn instance(prefix: &str, instance: &str) -> Option<RedisConnection> {
    let Ok(url) = std::env::var("CONFAB_TEST_REDIS_URL") else {
        eprintln!("not run: set CONFAB_TEST_REDIS_URL to test the Redis adapters (CI does)");
        return None;
    };
    let settings = RedisSettings {
        url,
        prefix: prefix.to_owned(),
        instance_id: instance.to_owned(),
    };
    Some(
        RedisConnection::connect(&settings)
            .await
            .expect("CONFAB_TEST_REDIS_URL is set, so Redis must answer"),
    )
}

fn unique_prefix() -> String {
    format!("confab_test_{}", uuid::Uuid::now_v7().simple())
}

#[tokio::test]
async fn the_rate_limit_holds_across_instances_under_concurrency() {
    let prefix = unique_prefix();
    let (Some(first), Some(second)) =
        (instance(&prefix, "i1").await, instance(&prefix, "i2").await)
    else {
        return;
    };
    let limiters = [
        Arc::new(RedisRateLimiter::new(first)),
        Arc::new(RedisRateLimiter::new(second)),
    ];
    let limit = RateLimit::per_minute(20);
    let hits = (0..100).map(|i| {
        let limiter = limiters[i % 2].clone();
        tokio::spawn(async move { limiter.hit("send:direct:ann", limit).await.unwrap() })
    });
    let decisions: Vec<RateDecision> = futures_util::future::join_all(hits)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let allowed = decisions
        .iter()
        .filter(|d| **d == RateDecision::Allowed)
        .count();
    assert_eq!(
        allowed, 20,
        "exactly the limit gets through, whichever instance counts"
    );
    let waits = decisions.iter().filter_map(|d| match d {
        RateDecision::Limited { retry_after } => Some(*retry_after),
        RateDecision::Allowed => None,
    });
    assert!(
        waits
            .into_iter()
            .all(|w| w > Duration::ZERO && w <= Duration::from_secs(60))
    );
}

/// `n` hits on `key`, one after another: how many were allowed.
async fn allowed_of(limiter: &RedisRateLimiter, key: &str, limit: RateLimit, n: usize) -> usize {
    let mut allowed = 0;
    for _ in 0..n {
        if limiter.hit(key, limit).await.unwrap() == RateDecision::Allowed {
            allowed += 1;
        }
    }
    allowed
}

#[tokio::test]
async fn one_instance_keeps_the_limit_exact_while_it_answers_hits_itself() {
    let prefix = unique_prefix();
    let Some(connection) = instance(&prefix, "i1").await else {
        return;
    };
    let limiter = RedisRateLimiter::new(connection);
    let limit = RateLimit::per_minute(10);
    // Hits 2 to 5 are answered without waiting for Redis; the rest wait for its count.
    assert_eq!(allowed_of(&limiter, "send:direct:ann", limit, 10).await, 10);
    let RateDecision::Limited { retry_after } =
        limiter.hit("send:direct:ann", limit).await.unwrap()
    else {
        panic!("the eleventh hit in the window must be refused");
    };
    assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(60));
}

#[tokio::test]
async fn hits_answered_by_one_instance_count_against_the_limit_on_another() {
    let prefix = unique_prefix();
    let (Some(first), Some(second)) =
        (instance(&prefix, "i1").await, instance(&prefix, "i2").await)
    else {
        return;
    };
    let (one, two) = (RedisRateLimiter::new(first), RedisRateLimiter::new(second));
    let limit = RateLimit::per_minute(20);
    // Most of these ten are answered by the first instance itself and counted in the
    // background; the eleventh is past half the limit, so it waits for Redis, whose count by
    // then includes every hit queued before it.
    assert_eq!(allowed_of(&one, "send:group:ann", limit, 11).await, 11);
    assert_eq!(
        allowed_of(&two, "send:group:ann", limit, 10).await,
        9,
        "the second instance sees the first one's eleven hits"
    );
}

#[tokio::test]
async fn hits_counted_together_keep_each_keys_own_count_and_limit() {
    let prefix = unique_prefix();
    let Some(connection) = instance(&prefix, "i1").await else {
        return;
    };
    let limiter = Arc::new(RedisRateLimiter::new(connection));
    // Sent at once, so that they share script calls: three senders with different limits.
    let senders = [("ann", 5), ("bob", 10), ("cy", 60)];
    let hits = (0..90).map(|i| {
        let limiter = limiter.clone();
        let (who, max) = senders[i % 3];
        tokio::spawn(async move {
            let decision = limiter
                .hit(&format!("send:group:{who}"), RateLimit::per_minute(max))
                .await
                .unwrap();
            (who, decision)
        })
    });
    let decisions: Vec<(&str, RateDecision)> = futures_util::future::join_all(hits)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for (who, max) in senders {
        let allowed = decisions
            .iter()
            .filter(|(w, d)| *w == who && *d == RateDecision::Allowed)
            .count();
        assert_eq!(allowed, usize::try_from(max.min(30)).unwrap(), "{who}");
    }
}

#[tokio::test]
async fn a_user_is_online_while_any_instance_holds_one_of_their_sockets() {
    let prefix = unique_prefix();
    let (Some(first), Some(second)) =
        (instance(&prefix, "i1").await, instance(&prefix, "i2").await)
    else {
        return;
    };
    let (one, two) = (
        RedisPresence::new(first, Duration::from_secs(30)),
        RedisPresence::new(second, Duration::from_secs(30)),
    );
    let (ann, bob) = (UserId::generate(), UserId::generate());
    let (phone, laptop) = (SessionId::generate(), SessionId::generate());
    assert!(
        one.connected(ann, phone).await.unwrap(),
        "the first socket anywhere"
    );
    assert!(
        !two.connected(ann, laptop).await.unwrap(),
        "a second socket, on another instance"
    );
    assert_eq!(two.online(&[ann, bob]).await.unwrap(), vec![ann]);
    assert!(
        !one.disconnected(ann, phone).await.unwrap(),
        "the laptop is still there"
    );
    assert!(
        two.disconnected(ann, laptop).await.unwrap(),
        "the last socket anywhere"
    );
    assert!(one.online(&[ann]).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_sockets_of_a_dead_instance_expire_and_each_user_is_swept_once() {
    let prefix = unique_prefix();
    let (Some(dead), Some(alive)) = (
        instance(&prefix, "dead").await,
        instance(&prefix, "alive").await,
    ) else {
        return;
    };
    let ttl = Duration::from_millis(300);
    // The dead instance connected sockets and then stopped renewing them (no keep_alive).
    let dying = RedisPresence::new(dead, ttl);
    let (ann, bob) = (UserId::generate(), UserId::generate());
    dying.connected(ann, SessionId::generate()).await.unwrap();
    dying.connected(ann, SessionId::generate()).await.unwrap();
    let survivor = RedisPresence::new(alive, ttl);
    survivor
        .connected(bob, SessionId::generate())
        .await
        .unwrap();
    survivor.keep_alive();
    assert!(
        survivor.expired().await.unwrap().is_empty(),
        "nothing is due yet"
    );

    tokio::time::sleep(ttl * 2).await;
    let (a, b) = tokio::join!(survivor.expired(), survivor.expired());
    let mut gone = a.unwrap();
    gone.extend(b.unwrap());
    assert_eq!(
        gone,
        vec![ann],
        "ann went offline once; bob's socket is renewed"
    );
    assert_eq!(survivor.online(&[ann, bob]).await.unwrap(), vec![bob]);
}

/// One instance's side of the bus: its hub, its routes and its bus, listening.
struct Node {
    hub: Arc<Hub>,
    routes: RedisRoutes,
    bus: RedisBus,
    _listening: tokio::task::JoinHandle<()>,
}

impl Node {
    async fn start(connection: RedisConnection, ttl: Duration) -> Self {
        let routes = RedisRoutes::new(connection.clone(), ttl);
        let hub = Arc::new(Hub::with_interest(Arc::new(routes.clone())));
        let bus = RedisBus::new(connection, hub.clone());
        let listening = bus.listen().await.unwrap();
        Self {
            hub,
            routes,
            bus,
            _listening: listening,
        }
    }

    /// A socket of `user` on this instance, routed like a WebSocket's.
    async fn socket(&self, user: UserId) -> LocalSocket {
        let socket = self.hub.attach(user, 16);
        self.routes.arrive(user).await;
        socket
    }
}

/// Two instances, `i1` and `i2`, on the bus with the test's own prefix, and that prefix; or
/// `None` when no Redis is configured for tests.
async fn two_nodes(ttl: Duration) -> Option<(Node, Node, String)> {
    let prefix = unique_prefix();
    let first = instance(&prefix, "i1").await?;
    let second = instance(&prefix, "i2").await?;
    Some((
        Node::start(first, ttl).await,
        Node::start(second, ttl).await,
        prefix,
    ))
}

fn typing(recipients: Vec<UserId>) -> Event {
    Event::Typing {
        conversation_id: ConversationId::generate(),
        user_id: UserId::generate(),
        typing: true,
        recipients,
    }
}

async fn next_frame(socket: &mut LocalSocket) -> String {
    let frame = tokio::time::timeout(Duration::from_secs(5), socket.queue.recv())
        .await
        .expect("a frame within 5 s")
        .expect("the hub keeps the queue open");
    frame.text.to_string()
}

#[tokio::test]
async fn an_event_reaches_each_recipients_sockets_on_every_instance_once() {
    let Some((one, two, _)) = two_nodes(Duration::from_secs(30)).await else {
        return;
    };
    let (ann, bob, cy) = (UserId::generate(), UserId::generate(), UserId::generate());
    let mut ann_here = one.socket(ann).await;
    let mut ann_there = two.socket(ann).await;
    let mut bob_there = two.socket(bob).await;

    one.bus.publish(typing(vec![ann, bob, cy])).await;
    let frames = [
        next_frame(&mut ann_here).await,
        next_frame(&mut ann_there).await,
        next_frame(&mut bob_there).await,
    ];
    assert!(frames.iter().all(|frame| frame == &frames[0]));

    // A second event, to Ann only, follows the first on the same path: had the publishing
    // instance heard its own event back, that copy would be queued before this one.
    two.bus.publish(typing(vec![ann])).await;
    let from_two = next_frame(&mut ann_there).await;
    assert_eq!(next_frame(&mut ann_here).await, from_two);
    assert!(ann_here.queue.try_recv().is_err(), "nothing else, no echo");
    assert!(bob_there.queue.try_recv().is_err());
}

#[tokio::test]
async fn routes_that_redis_lost_come_back_with_the_next_renewal() {
    let Some((one, two, prefix)) = two_nodes(Duration::from_millis(600)).await else {
        return;
    };
    let _renewing = one.routes.keep_alive();
    let ann = UserId::generate();
    let mut ann_there = one.socket(ann).await;

    // As if Redis restarted without persistence: every route is gone.
    let url = std::env::var("CONFAB_TEST_REDIS_URL").unwrap();
    let raw = fred::prelude::Client::new(
        fred::prelude::Config::from_url(&url).unwrap(),
        None,
        None,
        None,
    );
    fred::prelude::ClientLike::init(&raw).await.unwrap();
    let deleted: i64 =
        fred::prelude::KeysInterface::del(&raw, format!("{prefix}:route:user:{ann}"))
            .await
            .unwrap();
    assert_eq!(deleted, 1, "the route was there");

    // Published until it gets through: the renewal within a third of the TTL restores it.
    let arrived = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            two.bus.publish(typing(vec![ann])).await;
            if tokio::time::timeout(Duration::from_millis(100), ann_there.queue.recv())
                .await
                .is_ok()
            {
                return;
            }
        }
    })
    .await;
    assert!(arrived.is_ok(), "events reach ann's socket again");
}
