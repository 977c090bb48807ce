//! The realtime protocol as a chat app relies on it: nothing lost, duplicated or misordered
//! across disconnects, receipts and badges on every device, edits and deletions, typing,
//! presence, and slow clients cut off.
//!
//! These tests read every frame in arrival order (presence, receipts and `sync.done`
//! included) with a raw socket of their own, because the order is what they check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use confab_api::ws::{
    AckResult, ClientFrame, PresenceStatus, ServerFrame, SyncCursor, TypingState,
};
use confab_api::{ErrorCode, Message};
use confab_realtime::SocketConfig;
use confab_tests::{TestApp, TestUser, WAIT};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

/// One device, reading every frame the server sends, in order.
struct Device {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    refs: u64,
}

impl Device {
    /// Connects and reads up to the `sync.done` that ends the greeting, returning what came
    /// between `hello` and it.
    async fn connect(app: &TestApp, user: &TestUser) -> (Self, Vec<ServerFrame>) {
        let mut device = Self::connect_quietly(app, user).await;
        let greeting = device
            .until(|f| {
                matches!(
                    f,
                    ServerFrame::SyncDone {
                        reference: None,
                        ..
                    }
                )
            })
            .await;
        (device, greeting)
    }

    /// Connects and reads only the `hello`.
    async fn connect_quietly(app: &TestApp, user: &TestUser) -> Self {
        let url = format!("{}?token={}", app.ws_url(), user.token);
        let (stream, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("handshake in time")
            .expect("handshake succeeds");
        let mut device = Self { stream, refs: 0 };
        match device.next().await {
            ServerFrame::Hello { user_id, .. } => assert_eq!(user_id, user.id),
            other => panic!("expected hello first, got {other:?}"),
        }
        device
    }

    async fn next(&mut self) -> ServerFrame {
        self.next_within(WAIT)
            .await
            .unwrap_or_else(|| panic!("no frame within {WAIT:?}"))
    }

    /// The next data frame, or `None` if none arrives within `wait`.
    async fn next_within(&mut self, wait: Duration) -> Option<ServerFrame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()?;
            match next {
                Some(Ok(WsMessage::Text(text))) => {
                    return Some(
                        serde_json::from_str(text.as_str())
                            .unwrap_or_else(|e| panic!("{e}: {}", text.as_str())),
                    );
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
                other => panic!("the socket ended while a frame was expected: {other:?}"),
            }
        }
    }

    /// Reads frames until one matches, returning those before it and it.
    async fn until(&mut self, done: impl Fn(&ServerFrame) -> bool) -> Vec<ServerFrame> {
        let mut frames = Vec::new();
        loop {
            let frame = self.next().await;
            let last = done(&frame);
            frames.push(frame);
            if last {
                return frames;
            }
        }
    }

    async fn send(&mut self, frame: &ClientFrame) -> String {
        self.refs += 1;
        let reference = format!("r{}", self.refs);
        let mut value = serde_json::to_value(frame).unwrap();
        value
            .as_object_mut()
            .unwrap()
            .insert("ref".into(), reference.clone().into());
        self.stream
            .send(WsMessage::text(value.to_string()))
            .await
            .unwrap();
        reference
    }

    /// Everything the server had queued for this socket, up to the `pong` of a fresh `ping`.
    async fn drain(&mut self) -> Vec<ServerFrame> {
        let reference = self.send(&ClientFrame::Ping {}).await;
        let mut frames = self
            .until(|f| matches!(f, ServerFrame::Pong { reference: Some(r) } if *r == reference))
            .await;
        frames.pop();
        frames
    }

    /// Sends `sync` with these cursors and reads up to its `sync.done`.
    async fn sync(&mut self, cursors: &[(Uuid, u64)]) -> Vec<ServerFrame> {
        let cursors = cursors
            .iter()
            .map(|&(conversation_id, seq)| SyncCursor {
                conversation_id,
                seq,
            })
            .collect();
        let reference = self.send(&ClientFrame::Sync { cursors }).await;
        self.until(
            |f| matches!(f, ServerFrame::SyncDone { reference: Some(r), .. } if *r == reference),
        )
        .await
    }

    /// Waits (up to `WAIT`) for a frame that matches, skipping others.
    async fn wait_for(&mut self, wanted: impl Fn(&ServerFrame) -> bool) -> ServerFrame {
        self.until(&wanted).await.pop().unwrap()
    }

    async fn close(mut self) {
        let _ = self.stream.close(None).await;
        // Read until the server's side of the close, so the server has seen it.
        while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, self.stream.next()).await {}
    }
}

fn messages_of(frames: &[ServerFrame]) -> Vec<&Message> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::MessageNew { message } => Some(message),
            _ => None,
        })
        .collect()
}

fn seqs(messages: &[&Message]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}

/// The unread counts that `conversation.updated` frames gave for `conversation`, in order.
fn badges(frames: &[ServerFrame], conversation: Uuid) -> Vec<u64> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::ConversationUpdated { conversation: c } if c.id == conversation => {
                Some(c.unread_count)
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_offline_user_receives_the_backlog_on_connect_in_order_then_sync_done() {
    let app = TestApp::spawn().await;
    let (ann, bob) = (app.signup("ann").await, app.signup("bob").await);
    let (_, direct) = app.open_direct(&ann, &bob).await;
    for i in 1..=5 {
        app.send_message(&ann, direct.id, &format!("while you were out {i}"), None)
            .await;
    }
    let (_bob, greeting) = Device::connect(&app, &bob).await;
    let backlog = messages_of(&greeting);
    assert_eq!(seqs(&backlog), [1, 2, 3, 4, 5]);
    assert!(backlog.iter().all(|m| m.conversation_id == direct.id));
    assert!(
        matches!(greeting.last(), Some(ServerFrame::SyncDone { reference: None, skipped }) if skipped.is_empty()),
        "sync.done ends the greeting, after every backlog message"
    );
}

#[tokio::test]
async fn a_large_backlog_is_bounded_per_conversation_and_says_what_was_left_out() {
    let config = SocketConfig {
        backlog_per_conversation: 3,
        ..SocketConfig::default()
    };
    let app = TestApp::spawn_with(config).await;
    let (ann, bob) = (app.signup("ann").await, app.signup("bob").await);
    let (_, direct) = app.open_direct(&ann, &bob).await;
    for i in 1..=8 {
        app.send_message(&ann, direct.id, &format!("m{i}"), None)
            .await;
    }
    let (mut device, greeting) = Device::connect(&app, &bob).await;
    assert_eq!(
        seqs(&messages_of(&greeting)),
        [6, 7, 8],
        "the newest messages come first"
    );
    let Some(ServerFrame::SyncDone { skipped, .. }) = greeting.last() else {
        panic!("no sync.done")
    };
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        (
            skipped[0].conversation_id,
            skipped[0].after_seq,
            skipped[0].before_seq
        ),
        (direct.id, 0, 6)
    );

    // The client asks for the rest with the cursor it holds (nothing): it gets 1..=5, once.
    let frames = device.sync(&[(direct.id, 0)]).await;
    assert_eq!(seqs(&messages_of(&frames)), [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn after_a_disconnect_200_messages_from_several_senders_arrive_each_once_in_order() {
    let config = SocketConfig {
        backlog_per_conversation: 500,
        ..SocketConfig::default()
    };
    let app = TestApp::spawn_with(config).await;
    let (ann, bob, cid) = (
        app.signup("ann").await,
        app.signup("bob").await,
        app.signup("cid").await,
    );
    let group = app.create_group(&ann, "crew", &[&bob, &cid]).await;
    let (_, direct) = app.open_direct(&bob, &cid).await;
    let (device, _) = Device::connect(&app, &cid).await;
    device.close().await;

    // 200 messages from two senders in two conversations, sent concurrently.
    let (app_ref, ann_ref, bob_ref) = (&app, &ann, &bob);
    let sends = (0..200).map(|i| async move {
        let (sender, conversation) = match i % 4 {
            0 | 1 => (ann_ref, group.id),
            2 => (bob_ref, group.id),
            _ => (bob_ref, direct.id),
        };
        app_ref
            .send_message(sender, conversation, &format!("message {i}"), None)
            .await
    });
    futures_util::future::join_all(sends).await;

    let (mut device, greeting) = Device::connect(&app, &cid).await;
    // A sync with the cursors the client held before it dropped must add nothing.
    let mut frames = greeting;
    frames.extend(device.sync(&[(group.id, 0), (direct.id, 0)]).await);

    let mut held: HashMap<Uuid, Vec<u64>> = HashMap::new();
    for message in messages_of(&frames) {
        held.entry(message.conversation_id)
            .or_default()
            .push(message.seq);
    }
    assert_eq!(
        held[&group.id],
        (1..=150).collect::<Vec<_>>(),
        "the group, complete, once, in order"
    );
    assert_eq!(
        held[&direct.id],
        (1..=50).collect::<Vec<_>>(),
        "the direct chat, complete, once, in order"
    );
}

#[tokio::test]
async fn sync_catches_up_a_device_whose_user_received_the_messages_elsewhere() {
    let app = TestApp::spawn().await;
    let (ann, bob) = (app.signup("ann").await, app.signup("bob").await);
    let (_, direct) = app.open_direct(&ann, &bob).await;
    let (mut phone, _) = Device::connect(&app, &bob).await;
    for i in 1..=6 {
        app.send_message(&ann, direct.id, &format!("m{i}"), None)
            .await;
    }
    assert_eq!(seqs(&messages_of(&phone.drain().await)), [1, 2, 3, 4, 5, 6]);
    phone
        .send(&ClientFrame::Delivered {
            conversation_id: direct.id,
            seq: 6,
        })
        .await;
    phone
        .wait_for(|f| matches!(f, ServerFrame::Ack { .. }))
        .await;

    // The laptop held up to 2 from an earlier session; delivered_seq is 6, so no backlog.
    let (mut laptop, greeting) = Device::connect(&app, &bob).await;
    assert!(messages_of(&greeting).is_empty());
    let frames = laptop.sync(&[(direct.id, 2)]).await;
    assert_eq!(seqs(&messages_of(&frames)), [3, 4, 5, 6]);
    // Asking again gives nothing twice.
    let frames = laptop.sync(&[(direct.id, 2)]).await;
    assert!(messages_of(&frames).is_empty());
}

#[tokio::test]
async fn concurrent_senders_are_seen_by_every_socket_in_the_same_seq_order_without_gaps() {
    let app = TestApp::spawn().await;
    let (ann, bob, cid) = (
        app.signup("ann").await,
        app.signup("bob").await,
        app.signup("cid").await,
    );
    let group = app.create_group(&ann, "race", &[&bob, &cid]).await;
    let (mut ann_socket, _) = Device::connect(&app, &ann).await;
    let (mut bob_socket, _) = Device::connect(&app, &bob).await;
    let (mut cid_socket, _) = Device::connect(&app, &cid).await;

    // Both fire 25 sends without waiting for acks.
    for i in 0..25 {
        let frame = |who: &str| ClientFrame::MessageSend {
            conversation_id: group.id,
            body: Some(format!("{who} {i}")),
            client_msg_id: None,
        };
        ann_socket.send(&frame("ann")).await;
        bob_socket.send(&frame("bob")).await;
    }
    // Each socket's view of the conversation: acks for its own messages, message.new for the
    // others', in arrival order.
    let view = |frames: Vec<ServerFrame>| -> Vec<u64> {
        frames
            .into_iter()
            .filter_map(|f| match f {
                ServerFrame::MessageNew { message } => Some(message.seq),
                ServerFrame::Ack {
                    result: confab_api::ws::AckResult::Sent { message },
                    ..
                } => Some(message.seq),
                _ => None,
            })
            .collect()
    };
    let everything: Vec<u64> = (1..=50).collect();
    let mut ann_view = Vec::new();
    while ann_view.len() < 50 {
        ann_view.extend(view(vec![ann_socket.next().await]));
    }
    let mut bob_view = Vec::new();
    while bob_view.len() < 50 {
        bob_view.extend(view(vec![bob_socket.next().await]));
    }
    let mut cid_view = Vec::new();
    while cid_view.len() < 50 {
        cid_view.extend(view(vec![cid_socket.next().await]));
    }
    assert_eq!(ann_view, everything);
    assert_eq!(bob_view, everything);
    assert_eq!(cid_view, everything);
}

#[tokio::test]
async fn reading_on_one_device_updates_the_badge_on_the_other_and_receipts_reach_the_sender() {
    let app = TestApp::spawn().await;
    let (ann, bob) = (app.signup("ann").await, app.signup("bob").await);
    let (_, direct) = app.open_direct(&ann, &bob).await;
    let (mut ann_socket, _) = Device::connect(&app, &ann).await;
    let (mut bob_phone, _) = Device::connect(&app, &bob).await;
    let (mut bob_laptop, _) = Device::connect(&app, &bob).await;
    ann_socket.drain().await;

    for i in 1..=3 {
        app.send_message(&ann, direct.id, &format!("m{i}"), None)
            .await;
    }
    // Each new message badges bob's devices with his own unread count, and keeps ann's at 0.
    let badges = |frames: &[ServerFrame]| badges(frames, direct.id);
    assert_eq!(badges(&bob_laptop.drain().await), [1, 2, 3]);
    assert_eq!(badges(&ann_socket.drain().await), [0, 0, 0]);
    bob_phone.drain().await;

    // Delivered first: ann sees the "delivered" tick.
    bob_phone
        .send(&ClientFrame::Delivered {
            conversation_id: direct.id,
            seq: 3,
        })
        .await;
    bob_phone
        .wait_for(|f| matches!(f, ServerFrame::Ack { .. }))
        .await;
    let receipts: Vec<(u64, u64)> = ann_socket
        .drain()
        .await
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::Receipt {
                user_id,
                read_seq,
                delivered_seq,
                conversation_id,
            } if user_id == bob.id && conversation_id == direct.id => {
                Some((read_seq, delivered_seq))
            }
            _ => None,
        })
        .collect();
    assert_eq!(receipts, [(0, 3)]);

    // Then read on the phone: the laptop's badge drops to 0 and ann sees the "read" tick.
    bob_phone
        .send(&ClientFrame::MessageRead {
            conversation_id: direct.id,
            seq: 3,
        })
        .await;
    bob_phone
        .wait_for(|f| matches!(f, ServerFrame::Ack { .. }))
        .await;
    assert_eq!(badges(&bob_laptop.drain().await), [0]);
    let read_tick = ann_socket.drain().await.into_iter().any(|f| {
        matches!(f, ServerFrame::Receipt { user_id, read_seq: 3, delivered_seq: 3, .. } if user_id == bob.id)
    });
    assert!(read_tick);
    // REST agrees: both cursors on the member, unread 0.
    let conversation = app.conversation(&bob, direct.id).await;
    let me = conversation
        .members
        .iter()
        .find(|m| m.user.id == bob.id)
        .unwrap();
    assert_eq!(
        (me.read_seq, me.delivered_seq, conversation.unread_count),
        (3, 3, 0)
    );
}

#[tokio::test]
async fn edits_and_deletions_fan_out_and_show_up_in_history_sync_and_unread_counts() {
    let app = TestApp::spawn().await;
    let (ann, bob) = (app.signup("ann").await, app.signup("bob").await);
    let (_, direct) = app.open_direct(&ann, &bob).await;
    let (_, first) = app.send_message(&ann, direct.id, "helo", None).await;
    let (_, second) = app.send_message(&ann, direct.id, "oops", None).await;
    let (mut ann_socket, _) = Device::connect(&app, &ann).await;
    let (mut bob_socket, _) = Device::connect(&app, &bob).await;
    bob_socket.drain().await;

    ann_socket
        .send(&ClientFrame::MessageEdit {
            message_id: first.id,
            body: "hello".into(),
        })
        .await;
    let edited = match ann_socket
        .wait_for(|f| matches!(f, ServerFrame::Ack { .. } | ServerFrame::Error { .. }))
        .await
    {
        ServerFrame::Ack {
            result: confab_api::ws::AckResult::Sent { message },
            ..
        } => message,
        other => panic!("expected the edit's ack, got {other:?}"),
    };
    assert_eq!((edited.body.as_deref(), edited.seq), (Some("hello"), 1));
    assert!(edited.edited_at.is_some());
    let response = app
        .client
        .delete(app.api(&format!(
            "/conversations/{}/messages/{}",
            direct.id, second.id
        )))
        .bearer_auth(&ann.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let frames = bob_socket.drain().await;
    assert!(frames.iter().any(|f| matches!(f, ServerFrame::MessageUpdated { message } if message.id == first.id && message.body.as_deref() == Some("hello"))));
    assert!(frames.iter().any(|f| matches!(f, ServerFrame::MessageDeleted { message } if message.id == second.id && message.body.is_none() && message.seq == 2)));

    // Bob may neither edit nor delete ann's message.
    bob_socket
        .send(&ClientFrame::MessageEdit {
            message_id: first.id,
            body: "mine now".into(),
        })
        .await;
    assert!(matches!(
        bob_socket
            .wait_for(|f| matches!(f, ServerFrame::Error { .. }))
            .await,
        ServerFrame::Error {
            code: ErrorCode::Forbidden,
            ..
        }
    ));
    let response = app
        .client
        .patch(app.api(&format!(
            "/conversations/{}/messages/{}",
            direct.id, first.id
        )))
        .bearer_auth(&bob.token)
        .json(&serde_json::json!({"body": "mine now"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // History and a fresh sync show the current state; the deletion keeps its seq; the deleted
    // message no longer counts as unread.
    let history = app.all_messages(&bob, direct.id).await;
    assert_eq!(history.len(), 2);
    assert_eq!(
        (
            history[0].body.as_deref(),
            history[1].body.as_deref(),
            history[1].seq
        ),
        (Some("hello"), None, 2)
    );
    assert!(history[1].deleted_at.is_some());
    assert_eq!(app.conversation(&bob, direct.id).await.unread_count, 1);
    // Bob never acknowledged delivery: a new device gets both in its backlog, as they are now.
    let (mut fresh, greeting) = Device::connect(&app, &bob).await;
    let backlog = messages_of(&greeting);
    assert_eq!(seqs(&backlog), [1, 2]);
    assert_eq!(
        (backlog[0].body.as_deref(), backlog[1].body.as_deref()),
        (Some("hello"), None)
    );
    // A device that held only the first before the edit syncs and gets the second as it is now.
    let reference = fresh
        .send(&ClientFrame::Delivered {
            conversation_id: direct.id,
            seq: 2,
        })
        .await;
    fresh
        .wait_for(|f| matches!(f, ServerFrame::Ack { reference: Some(r), .. } if *r == reference))
        .await;
    let (mut other, greeting) = Device::connect(&app, &bob).await;
    assert!(messages_of(&greeting).is_empty());
    let synced = other.sync(&[(direct.id, 1)]).await;
    let synced = messages_of(&synced);
    assert_eq!(seqs(&synced), [2]);
    assert!(synced[0].body.is_none() && synced[0].deleted_at.is_some());
}

#[tokio::test]
async fn typing_reaches_the_others_not_the_typist_is_never_stored_and_expires_by_itself() {
    let config = SocketConfig {
        typing_timeout: Duration::from_millis(800),
        ..SocketConfig::default()
    };
    let app = TestApp::spawn_with(config).await;
    let (ann, bob) = (app.signup("ann").await, app.signup("bob").await);
    let (_, direct) = app.open_direct(&ann, &bob).await;
    let (mut ann_socket, _) = Device::connect(&app, &ann).await;
    let (mut ann_tablet, _) = Device::connect(&app, &ann).await;
    let (mut bob_socket, _) = Device::connect(&app, &bob).await;
    ann_socket.drain().await;
    ann_tablet.drain().await;
    bob_socket.drain().await;

    ann_socket
        .send(&ClientFrame::Typing {
            conversation_id: direct.id,
            state: TypingState::Start,
        })
        .await;
    let typing = bob_socket
        .wait_for(|f| matches!(f, ServerFrame::Typing { .. }))
        .await;
    assert!(
        matches!(typing, ServerFrame::Typing { user_id, state: TypingState::Start, conversation_id } if user_id == ann.id && conversation_id == direct.id)
    );
    let typist_frames = [ann_socket.drain().await, ann_tablet.drain().await].concat();
    assert!(
        !typist_frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Typing { .. })),
        "the typist's devices are not told"
    );

    // No `stop` from ann: the server ends it after the timeout.
    let stop = bob_socket
        .wait_for(|f| matches!(f, ServerFrame::Typing { .. }))
        .await;
    assert!(matches!(
        stop,
        ServerFrame::Typing {
            state: TypingState::Stop,
            ..
        }
    ));
    assert!(
        app.all_messages(&bob, direct.id).await.is_empty(),
        "typing is never stored"
    );

    // Typing in a conversation one is not in is refused.
    let (_, other) = app.open_direct(&bob, &app.signup("cid").await).await;
    ann_socket
        .send(&ClientFrame::Typing {
            conversation_id: other.id,
            state: TypingState::Start,
        })
        .await;
    assert!(matches!(
        ann_socket
            .wait_for(|f| matches!(f, ServerFrame::Error { .. }))
            .await,
        ServerFrame::Error {
            code: ErrorCode::NotFound,
            ..
        }
    ));
}

#[tokio::test]
async fn presence_goes_online_at_the_first_device_and_offline_with_last_seen_after_the_last() {
    let app = TestApp::spawn().await;
    let (ann, bob) = (app.signup("ann").await, app.signup("bob").await);
    app.open_direct(&ann, &bob).await;
    let (mut ann_socket, _) = Device::connect(&app, &ann).await;

    let (bob_phone, greeting) = Device::connect(&app, &bob).await;
    assert!(
        greeting.iter().any(|f| matches!(f, ServerFrame::Presence { user_id, status: PresenceStatus::Online, .. } if *user_id == ann.id)),
        "a connecting client learns which contacts are online"
    );
    let online = ann_socket
        .wait_for(|f| matches!(f, ServerFrame::Presence { .. }))
        .await;
    assert!(
        matches!(online, ServerFrame::Presence { user_id, status: PresenceStatus::Online, .. } if user_id == bob.id)
    );

    let (bob_laptop, _) = Device::connect(&app, &bob).await;
    bob_phone.close().await;
    assert!(
        !ann_socket
            .drain()
            .await
            .iter()
            .any(|f| matches!(f, ServerFrame::Presence { .. })),
        "one of two devices leaving changes nothing"
    );
    bob_laptop.close().await;
    let offline = ann_socket
        .wait_for(|f| matches!(f, ServerFrame::Presence { .. }))
        .await;
    let ServerFrame::Presence {
        user_id,
        status: PresenceStatus::Offline,
        last_seen_at: Some(seen),
    } = offline
    else {
        panic!("expected bob offline with last_seen_at, got {offline:?}")
    };
    assert_eq!(user_id, bob.id);
    assert!((chrono::Utc::now() - seen).num_seconds().abs() < 30);
}

#[tokio::test]
async fn a_device_silent_past_the_heartbeat_counts_as_gone_for_presence() {
    let config = SocketConfig {
        heartbeat: Duration::from_millis(300),
        ..SocketConfig::default()
    };
    let app = TestApp::spawn_with(config).await;
    let (ann, bob) = (app.signup("ann").await, app.signup("bob").await);
    app.open_direct(&ann, &bob).await;
    let (mut ann_socket, _) = Device::connect(&app, &ann).await;
    // Bob connects and then never reads again, so he never answers a ping.
    let _silent_bob = Device::connect_quietly(&app, &bob).await;
    // Ann keeps her socket alive by reading (tungstenite answers pings as it reads).
    let offline = ann_socket
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
    assert!(
        matches!(offline, ServerFrame::Presence { user_id, last_seen_at: Some(_), .. } if user_id == bob.id)
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_instead_of_buffering_without_limit() {
    let config = SocketConfig {
        outbound_capacity: 8,
        write_timeout: Duration::from_millis(500),
        heartbeat: Duration::from_secs(60),
        ..SocketConfig::default()
    };
    let app = TestApp::spawn_with(config).await;
    let (ann, bob) = (app.signup("ann").await, app.signup("bob").await);
    let (_, direct) = app.open_direct(&ann, &bob).await;
    let (mut ann_socket, _) = Device::connect(&app, &ann).await;
    let _stalled_bob = Device::connect_quietly(&app, &bob).await;
    ann_socket
        .wait_for(|f| {
            matches!(
                f,
                ServerFrame::Presence {
                    status: PresenceStatus::Online,
                    ..
                }
            )
        })
        .await;

    // Large messages fill bob's socket buffers (megabytes on loopback), then his bounded queue.
    let body = "x".repeat(3900);
    let mut cut_off = false;
    for i in 0..3000 {
        app.send_message(&ann, direct.id, &format!("{i} {body}"), None)
            .await;
        if i % 50 == 49 {
            let frames = ann_socket.drain().await;
            if frames.iter().any(|f| matches!(f, ServerFrame::Presence { user_id, status: PresenceStatus::Offline, .. } if *user_id == bob.id)) {
                cut_off = true;
                break;
            }
        }
    }
    if !cut_off {
        ann_socket
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
    }
    // Nothing was lost for bob: it all waits in storage for his next connection.
    let (_bob_again, greeting) = Device::connect(&app, &bob).await;
    assert!(!messages_of(&greeting).is_empty());
}

/// The HTTP status of a refused handshake.
async fn refused_status(app: &TestApp, user: &TestUser) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let request = format!("{}?token={}", app.ws_url(), user.token)
        .into_client_request()
        .unwrap();
    match confab_tests::WsClient::try_handshake(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Ok(_) => panic!("the handshake was accepted"),
        Err(other) => panic!("the handshake failed without an HTTP answer: {other}"),
    }
}

#[tokio::test]
async fn a_user_cannot_hold_more_sockets_than_the_cap_until_one_closes() {
    let app =
        TestApp::spawn_configured(SocketConfig::default(), &["--max-sockets-per-user", "2"]).await;
    let ann = app.signup("ann").await;
    let (first, _) = Device::connect(&app, &ann).await;
    let (_second, _) = Device::connect(&app, &ann).await;
    assert_eq!(
        refused_status(&app, &ann).await,
        429,
        "a third socket is refused before the upgrade"
    );
    first.close().await;
    let (_third, _) = Device::connect(&app, &ann).await;
}

#[tokio::test]
async fn too_many_connection_attempts_from_one_address_are_refused() {
    let app =
        TestApp::spawn_configured(SocketConfig::default(), &["--rate-connect-per-min", "3"]).await;
    let ann = app.signup("ann").await;
    for _ in 0..3 {
        let (device, _) = Device::connect(&app, &ann).await;
        device.close().await;
    }
    assert_eq!(refused_status(&app, &ann).await, 429);
}

#[tokio::test]
async fn what_arrives_for_a_user_is_not_held_up_by_their_own_slow_send() {
    let app = TestApp::spawn().await;
    let (ann, bob) = (app.signup("ann").await, app.signup("bob").await);
    let (_, direct) = app.open_direct(&ann, &bob).await;
    let (mut ann_socket, _) = Device::connect(&app, &ann).await;
    let (mut bob_socket, _) = Device::connect(&app, &bob).await;
    ann_socket.drain().await;
    bob_socket.drain().await;

    // Another writer holds the conversation, so ann's send waits for it.
    let held = app.database().hold_conversation(direct.id).await;
    let sent = ann_socket
        .send(&ClientFrame::MessageSend {
            conversation_id: direct.id,
            body: Some("hello".into()),
            client_msg_id: None,
        })
        .await;
    bob_socket
        .send(&ClientFrame::Typing {
            conversation_id: direct.id,
            state: TypingState::Start,
        })
        .await;
    let first = ann_socket
        .wait_for(|f| matches!(f, ServerFrame::Typing { .. } | ServerFrame::Ack { .. }))
        .await;
    assert!(
        matches!(first, ServerFrame::Typing { user_id, .. } if user_id == bob.id),
        "bob's typing reaches ann while her send waits, not after it: got {first:?}"
    );

    held.release().await;
    let ack = ann_socket
        .wait_for(|f| matches!(f, ServerFrame::Ack { reference: Some(r), .. } if *r == sent))
        .await;
    assert!(
        matches!(ack, ServerFrame::Ack { result: AckResult::Sent { message }, .. } if message.seq == 1 && message.body.as_deref() == Some("hello"))
    );
}

#[tokio::test]
async fn each_members_badge_leaves_out_the_deleted_messages_above_their_own_cursor() {
    let app = TestApp::spawn().await;
    let (ann, bob, cid) = (
        app.signup("ann").await,
        app.signup("bob").await,
        app.signup("cid").await,
    );
    let group = app.create_group(&ann, "badges", &[&bob, &cid]).await;
    let mut sent = Vec::new();
    for i in 1..=4 {
        sent.push(
            app.send_message(&ann, group.id, &format!("m{i}"), None)
                .await
                .1,
        );
    }
    // Bob has read up to the first message; cid has read nothing.
    app.mark_read(&bob, group.id, 1).await;
    let (mut bob_socket, _) = Device::connect(&app, &bob).await;
    let (mut cid_socket, _) = Device::connect(&app, &cid).await;
    let badges = |frames: Vec<ServerFrame>| badges(&frames, group.id);
    let delete = |message: &Message| {
        app.client
            .delete(app.api(&format!(
                "/conversations/{}/messages/{}",
                group.id, message.id
            )))
            .bearer_auth(&ann.token)
            .send()
    };

    // The third message goes: above both cursors, so both badges drop by one.
    assert_eq!(delete(&sent[2]).await.unwrap().status(), 200);
    assert_eq!(badges(bob_socket.drain().await), [2]);
    assert_eq!(badges(cid_socket.drain().await), [3]);
    // The first goes: at bob's cursor, so only cid's badge drops.
    assert_eq!(delete(&sent[0]).await.unwrap().status(), 200);
    assert_eq!(badges(bob_socket.drain().await), [2]);
    assert_eq!(badges(cid_socket.drain().await), [2]);
    // A new message counts on top, with both deletions still left out.
    app.send_message(&ann, group.id, "m5", None).await;
    assert_eq!(badges(bob_socket.drain().await), [3]);
    assert_eq!(badges(cid_socket.drain().await), [3]);
    // REST agrees.
    assert_eq!(app.conversation(&bob, group.id).await.unread_count, 3);
    assert_eq!(app.conversation(&cid, group.id).await.unread_count, 3);
}
