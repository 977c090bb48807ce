//! Two real `confab` processes over one database and one Redis behave as one server. They need
//! `CONFAB_TEST_REDIS_URL` (CI's services pass sets it, with Postgres); the database is the
//! test run's own (Postgres with `CONFAB_TEST_DATABASE_URL`, else one SQLite file both share).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use confab_api::ws::{ClientFrame, PresenceStatus, ServerFrame};
use confab_api::{Conversation, Message, Session};
use confab_persistence::testing::TestDatabase;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "cluster-tests-secret-0123456789abcdef";

/// One `confab` process.
struct Instance {
    child: Child,
    port: u16,
    id: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Instance {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/api/v1{path}", self.port)
    }

    /// SIGKILL: no goodbye to anyone.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// Two instances sharing one database and one Redis (under a prefix of their own).
struct Cluster {
    instances: Vec<Instance>,
    redis_url: String,
    prefix: String,
    http: reqwest::Client,
    _database: TestDatabase,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts two instances, or returns `None` (said out loud) without Redis.
    async fn start(extra_env: &[(&str, &str)]) -> Option<Self> {
        let Ok(redis_url) = std::env::var("CONFAB_TEST_REDIS_URL") else {
            eprintln!("not run: set CONFAB_TEST_REDIS_URL to test several instances (CI does)");
            return None;
        };
        confab_server::install_crypto_provider();
        let database = TestDatabase::create().await;
        let dir = tempfile::tempdir().unwrap();
        let prefix = format!("confab_test_{}", Uuid::now_v7().simple());
        let mut instances = Vec::new();
        // One after the other: the first applies the migrations.
        // Instance ids are unique to the cluster: `cut_redis` finds connections by the name
        // derived from the id, and the tests' clusters run at once on one Redis.
        let run = &prefix[prefix.len() - 8..];
        for name in ["i1", "i2"] {
            instances.push(spawn(
                &format!("{name}-{run}"),
                &database.url,
                &redis_url,
                &prefix,
                dir.path(),
                extra_env,
            ));
        }
        Some(Self {
            instances,
            redis_url,
            prefix,
            http: reqwest::Client::new(),
            _database: database,
            _dir: dir,
        })
    }

    async fn signup(&self, on: usize, name: &str) -> Session {
        let body = serde_json::json!({"username": name, "email": format!("{name}@example.org"), "password": "correct horse battery"});
        let response = self
            .http
            .post(self.instances[on].url("/auth/signup"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    async fn direct(&self, on: usize, user: &Session, with: &str) -> Conversation {
        let response = self
            .http
            .post(self.instances[on].url(&format!("/conversations/direct/{with}")))
            .bearer_auth(&user.access_token)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        response.json().await.unwrap()
    }

    async fn group(&self, on: usize, owner: &Session, members: &[&str]) -> Conversation {
        let response = self
            .http
            .post(self.instances[on].url("/conversations/groups"))
            .bearer_auth(&owner.access_token)
            .json(&serde_json::json!({"name": "team", "members": members}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    /// Sends over REST on instance `on`; the status and, when stored, the message.
    async fn send(
        &self,
        on: usize,
        user: &Session,
        conversation: Uuid,
        body: &str,
    ) -> (u16, Option<Message>) {
        let response = self
            .http
            .post(self.instances[on].url(&format!("/conversations/{conversation}/messages")))
            .bearer_auth(&user.access_token)
            .json(&serde_json::json!({"body": body}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            if status < 300 {
                Some(response.json().await.unwrap())
            } else {
                None
            },
        )
    }

    async fn history(&self, on: usize, user: &Session, conversation: Uuid) -> Vec<Message> {
        let response = self
            .http
            .get(
                self.instances[on]
                    .url(&format!("/conversations/{conversation}/messages?limit=200")),
            )
            .bearer_auth(&user.access_token)
            .send()
            .await
            .unwrap();
        let page: confab_api::MessagePage = response.json().await.unwrap();
        page.messages
    }

    async fn connect(&self, on: usize, user: &Session) -> Device {
        let url = format!(
            "ws://127.0.0.1:{}/api/v1/ws?token={}",
            self.instances[on].port, user.access_token
        );
        let (stream, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .unwrap()
            .unwrap();
        let mut device = Device { stream };
        device
            .wait_for(|f| {
                matches!(
                    f,
                    ServerFrame::SyncDone {
                        reference: None,
                        ..
                    }
                )
            })
            .await;
        device
    }

    /// Cuts instance `on`'s connections to Redis from the Redis side, as a Redis restart or a
    /// network cut would.
    fn cut_redis(&self, on: usize) {
        let id = &self.instances[on].id;
        for name in [format!("confab-{id}"), format!("confab-{id}-sub")] {
            let list = Command::new("redis-cli")
                .args(["-u", &self.redis_url, "CLIENT", "LIST"])
                .output()
                .unwrap();
            let list = String::from_utf8_lossy(&list.stdout);
            for line in list
                .lines()
                .filter(|l| l.contains(&format!(" name={name} ")))
            {
                let client_id = line
                    .split_whitespace()
                    .find_map(|f| f.strip_prefix("id="))
                    .unwrap();
                let killed = Command::new("redis-cli")
                    .args(["-u", &self.redis_url, "CLIENT", "KILL", "ID", client_id])
                    .output()
                    .unwrap();
                assert!(killed.status.success());
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Leave nothing behind in the shared Redis.
        let keys = Command::new("redis-cli")
            .args([
                "-u",
                &self.redis_url,
                "--scan",
                "--pattern",
                &format!("{}:*", self.prefix),
            ])
            .output();
        if let Ok(keys) = keys {
            for key in String::from_utf8_lossy(&keys.stdout).lines() {
                let _ = Command::new("redis-cli")
                    .args(["-u", &self.redis_url, "DEL", key])
                    .output();
            }
        }
    }
}

fn spawn(
    name: &str,
    database: &str,
    redis: &str,
    prefix: &str,
    dir: &std::path::Path,
    extra_env: &[(&str, &str)],
) -> Instance {
    let mut command = Command::new(env!("CARGO_BIN_EXE_confab"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CONFAB_")) {
        command.env_remove(key);
    }
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("CONFAB_DATA_DIR", dir.join(name))
        .env("CONFAB_DATABASE_URL", database)
        .env("CONFAB_REDIS_URL", redis)
        .env("CONFAB_REDIS_PREFIX", prefix)
        .env("CONFAB_INSTANCE_ID", name)
        .env("CONFAB_JWT_SECRET", SECRET)
        .env("CONFAB_PRESENCE_TTL_SECS", "3")
        .env("CONFAB_LOG_FORMAT", "json")
        .env(
            "CONFAB_LOG",
            std::env::var("CLUSTER_LOG").unwrap_or("info".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, value) in extra_env {
        command.env(key, value);
    }
    // Owned by an `Instance` at once, so that it is killed and reaped however the test ends.
    let mut instance = Instance {
        child: command.spawn().unwrap(),
        port: 0,
        id: name.to_owned(),
    };
    let mut lines = BufReader::new(instance.child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "{name} did not start");
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("{name} exited before listening"))
            .unwrap();
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if let Some(port) = event["port"].as_u64() {
            // What the instance logs from here on is shown with a failing test's output
            // (spawned threads inherit the test's capture).
            let name = name.to_owned();
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    eprintln!("[{name}] {line}");
                }
            });
            instance.port = u16::try_from(port).unwrap();
            return instance;
        }
    }
}

struct Device {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Device {
    async fn next(&mut self) -> ServerFrame {
        self.try_next().await.expect("a frame in time")
    }

    /// The next text frame, or `None` if none comes within [`WAIT`].
    async fn try_next(&mut self) -> Option<ServerFrame> {
        loop {
            let next = tokio::time::timeout(WAIT, self.stream.next()).await.ok()?;
            match next {
                Some(Ok(WsMessage::Text(text))) => {
                    return Some(serde_json::from_str(text.as_str()).unwrap());
                }
                Some(Ok(_)) => {}
                other => panic!("the socket ended: {other:?}"),
            }
        }
    }

    async fn wait_for(&mut self, wanted: impl Fn(&ServerFrame) -> bool) -> ServerFrame {
        loop {
            let frame = self.next().await;
            if wanted(&frame) {
                return frame;
            }
        }
    }

    async fn send(&mut self, frame: &ClientFrame) {
        self.stream
            .send(WsMessage::text(serde_json::to_string(frame).unwrap()))
            .await
            .unwrap();
    }

    /// The seqs of the next `count` messages of `conversation`, in arrival order.
    async fn messages(&mut self, conversation: Uuid, count: usize) -> Vec<u64> {
        let mut seqs = Vec::new();
        while seqs.len() < count {
            let frame = self
                .try_next()
                .await
                .unwrap_or_else(|| panic!("{count} messages in time; got {seqs:?}"));
            if let ServerFrame::MessageNew { message } = frame
                && message.conversation_id == conversation
            {
                seqs.push(message.seq);
            }
        }
        seqs
    }
}

#[tokio::test]
async fn users_on_different_instances_chat_with_receipts_typing_and_presence() {
    let Some(cluster) = Cluster::start(&[]).await else {
        return;
    };
    let ann = cluster.signup(0, "ann").await;
    let bob = cluster.signup(1, "bob").await;
    let direct = cluster.direct(0, &ann, "bob").await;
    let mut ann_socket = cluster.connect(0, &ann).await;
    let mut bob_socket = cluster.connect(1, &bob).await;
    let online = ann_socket
        .wait_for(|f| matches!(f, ServerFrame::Presence { .. }))
        .await;
    assert!(
        matches!(online, ServerFrame::Presence { user_id, status: PresenceStatus::Online, .. } if user_id == bob.user.id)
    );

    ann_socket
        .send(&ClientFrame::MessageSend {
            conversation_id: direct.id,
            body: Some("hi from i1".into()),
            client_msg_id: None,
        })
        .await;
    let received = bob_socket
        .wait_for(|f| matches!(f, ServerFrame::MessageNew { .. }))
        .await;
    assert!(
        matches!(received, ServerFrame::MessageNew { message } if message.body.as_deref() == Some("hi from i1") && message.seq == 1)
    );

    bob_socket
        .send(&ClientFrame::Typing {
            conversation_id: direct.id,
            state: confab_api::ws::TypingState::Start,
        })
        .await;
    let typing = ann_socket
        .wait_for(|f| matches!(f, ServerFrame::Typing { .. }))
        .await;
    assert!(matches!(typing, ServerFrame::Typing { user_id, .. } if user_id == bob.user.id));

    bob_socket
        .send(&ClientFrame::MessageRead {
            conversation_id: direct.id,
            seq: 1,
        })
        .await;
    let receipt = ann_socket
        .wait_for(|f| matches!(f, ServerFrame::Receipt { .. }))
        .await;
    assert!(
        matches!(receipt, ServerFrame::Receipt { user_id, read_seq: 1, .. } if user_id == bob.user.id)
    );
}

#[tokio::test]
async fn group_members_on_another_instance_each_get_their_own_unread_count() {
    let Some(cluster) = Cluster::start(&[]).await else {
        return;
    };
    let ann = cluster.signup(0, "ann").await;
    let bob = cluster.signup(1, "bob").await;
    let cat = cluster.signup(1, "cat").await;
    let group = cluster.group(0, &ann, &["bob", "cat"]).await;
    let mut bob_socket = cluster.connect(1, &bob).await;
    let mut cat_socket = cluster.connect(1, &cat).await;

    assert_eq!(cluster.send(0, &ann, group.id, "one").await.0, 201);
    cat_socket
        .wait_for(|f| matches!(f, ServerFrame::MessageNew { .. }))
        .await;
    cat_socket
        .send(&ClientFrame::MessageRead {
            conversation_id: group.id,
            seq: 1,
        })
        .await;
    cat_socket
        .wait_for(|f| matches!(f, ServerFrame::Receipt { user_id, read_seq: 1, .. } if *user_id == cat.user.id))
        .await;
    assert_eq!(cluster.send(0, &ann, group.id, "two").await.0, 201);

    // Sent on instance 0, heard on instance 1: each member's sidebar gets their own count.
    for (socket, unread) in [(&mut bob_socket, 2), (&mut cat_socket, 1)] {
        let update = socket
            .wait_for(|f| matches!(f, ServerFrame::ConversationUpdated { conversation } if conversation.last_seq == 2))
            .await;
        let ServerFrame::ConversationUpdated { conversation } = update else {
            unreachable!()
        };
        assert_eq!(conversation.id, group.id);
        assert_eq!(conversation.unread_count, unread);
        assert_eq!(
            conversation.last_message.and_then(|m| m.body).as_deref(),
            Some("two")
        );
    }
}

#[tokio::test]
async fn a_user_with_a_device_on_each_instance_gets_every_message_on_both_once() {
    let Some(cluster) = Cluster::start(&[("CONFAB_RATE_DIRECT_PER_MIN", "1000")]).await else {
        return;
    };
    let ann = cluster.signup(0, "ann").await;
    let bob = cluster.signup(0, "bob").await;
    let direct = cluster.direct(0, &ann, "bob").await;
    let mut on_one = cluster.connect(0, &ann).await;
    let mut on_two = cluster.connect(1, &ann).await;
    for i in 0..40 {
        let (status, _) = cluster.send(i % 2, &bob, direct.id, &format!("m{i}")).await;
        assert_eq!(status, 201);
    }
    let everything: Vec<u64> = (1..=40).collect();
    assert_eq!(on_one.messages(direct.id, 40).await, everything);
    assert_eq!(on_two.messages(direct.id, 40).await, everything);
}

#[tokio::test]
async fn when_an_instance_is_killed_its_users_go_offline_and_lose_nothing_by_reconnecting() {
    let Some(mut cluster) = Cluster::start(&[("CONFAB_RATE_DIRECT_PER_MIN", "1000")]).await else {
        return;
    };
    let ann = cluster.signup(0, "ann").await;
    let bob = cluster.signup(1, "bob").await;
    let direct = cluster.direct(0, &ann, "bob").await;
    let mut ann_socket = cluster.connect(0, &ann).await;
    let mut bob_socket = cluster.connect(1, &bob).await;

    let mut acked = Vec::new();
    for i in 0..10 {
        let (_, message) = cluster
            .send(1, &bob, direct.id, &format!("before {i}"))
            .await;
        acked.push(message.unwrap().seq);
    }
    ann_socket.messages(direct.id, 5).await;
    cluster.instances[0].kill();
    // Bob keeps talking to ann's dead instance's users while they are away.
    for i in 0..10 {
        let (_, message) = cluster
            .send(1, &bob, direct.id, &format!("after {i}"))
            .await;
        acked.push(message.unwrap().seq);
    }
    let started = Instant::now();
    let offline = bob_socket
        .wait_for(|f| {
            matches!(
                f,
                ServerFrame::Presence {
                    status: PresenceStatus::Offline,
                    ..
                }
            )
        })
        .await;
    assert!(matches!(offline, ServerFrame::Presence { user_id, .. } if user_id == ann.user.id));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "offline within the 3 s TTL and a sweep"
    );

    // Ann reconnects to the surviving instance: her backlog holds every acknowledged message once.
    let url = format!(
        "ws://127.0.0.1:{}/api/v1/ws?token={}",
        cluster.instances[1].port, ann.access_token
    );
    let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut ann_again = Device { stream };
    let mut held = Vec::new();
    loop {
        match ann_again.next().await {
            ServerFrame::MessageNew { message } if message.conversation_id == direct.id => {
                held.push(message.seq)
            }
            ServerFrame::SyncDone { .. } => break,
            _ => {}
        }
    }
    assert_eq!(held, acked, "every acknowledged message, once, in order");
}

#[tokio::test]
async fn after_its_redis_connections_are_cut_an_instance_loses_nothing_and_fans_out_again() {
    let Some(cluster) = Cluster::start(&[("CONFAB_RATE_DIRECT_PER_MIN", "1000")]).await else {
        return;
    };
    let ann = cluster.signup(0, "ann").await;
    let bob = cluster.signup(1, "bob").await;
    let direct = cluster.direct(0, &ann, "bob").await;
    let mut bob_socket = cluster.connect(1, &bob).await;

    // Sent on both instances in turn. While instance 2 reconnects, what instance 1 publishes
    // does not reach it: bob's socket there gets every other message live and must fill the
    // holes between them from storage.
    let mut acked = Vec::new();
    for i in 0..30 {
        if i == 10 {
            cluster.cut_redis(0);
            cluster.cut_redis(1);
        }
        let (status, message) = cluster.send(i % 2, &ann, direct.id, &format!("m{i}")).await;
        assert_eq!(status, 201, "sending never depends on Redis");
        acked.push(message.unwrap().seq);
    }
    let stored: Vec<u64> = cluster
        .history(1, &bob, direct.id)
        .await
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(stored, acked, "no acknowledged message is lost");
    assert_eq!(
        bob_socket.messages(direct.id, acked.len()).await,
        acked,
        "the socket delivers every message once, in order"
    );

    // Fan-out resumes by itself: a message sent on instance 1 reaches bob on instance 2 live.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, message) = cluster.send(0, &ann, direct.id, "are you there?").await;
        let seq = message.unwrap().seq;
        let arrived = tokio::time::timeout(
            Duration::from_secs(2),
            bob_socket.wait_for(
                |f| matches!(f, ServerFrame::MessageNew { message } if message.seq == seq),
            ),
        )
        .await;
        if arrived.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fan-out did not resume after Redis came back"
        );
    }
}

#[tokio::test]
async fn the_rate_limit_holds_across_both_instances() {
    let Some(cluster) = Cluster::start(&[]).await else {
        return;
    };
    let ann = cluster.signup(0, "ann").await;
    cluster.signup(1, "bob").await;
    let direct = cluster.direct(0, &ann, "bob").await;
    for i in 0..20 {
        let (status, _) = cluster.send(i % 2, &ann, direct.id, &format!("m{i}")).await;
        assert_eq!(status, 201, "message {i} is within the limit");
    }
    for on in [0, 1] {
        let (status, _) = cluster.send(on, &ann, direct.id, "one too many").await;
        assert_eq!(
            status, 429,
            "the 21st direct message in the minute is refused on instance {on}"
        );
    }
}
