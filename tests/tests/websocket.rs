//! The WebSocket: authentication at the handshake, chatting, fan-out to every device, read
//! state, ordering, bad frames, and the limits that close a socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use confab_api::ErrorCode;
use confab_api::ws::{ClientFrame, ServerFrame};
use confab_realtime::SocketConfig;
use confab_tests::reqwest::StatusCode;
use confab_tests::{Closed, TestApp, TestUser, WsClient, mint_token};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};
use uuid::Uuid;

/// An app with ann and bob and their direct conversation.
async fn ann_and_bob() -> (TestApp, TestUser, TestUser, Uuid) {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let (_, direct) = app.open_direct(&ann, &bob).await;
    (app, ann, bob, direct.id)
}

fn send(conversation_id: Uuid, body: &str, client_msg_id: Option<&str>) -> ClientFrame {
    ClientFrame::MessageSend {
        conversation_id,
        body: Some(body.to_owned()),
        client_msg_id: client_msg_id.map(str::to_owned),
    }
}

/// The handshake is refused with a 401 (and, when the client library keeps the body, the
/// JSON error body) instead of being upgraded.
async fn assert_unauthorized(request: tokio_tungstenite::tungstenite::handshake::client::Request) {
    let status = StatusCode::UNAUTHORIZED;
    match WsClient::try_handshake(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), status.as_u16());
            if let Some(body) = response.body() {
                let error: confab_api::ErrorBody =
                    serde_json::from_slice(body).expect("a JSON error body");
                assert_eq!(error.error.code, ErrorCode::Unauthorized);
            }
        }
        Err(other) => panic!("expected an HTTP {status} answer to the handshake, got {other}"),
        Ok(_) => panic!("the handshake succeeded; expected HTTP {status}"),
    }
}

#[tokio::test]
async fn a_socket_authenticates_with_the_token_in_the_query() {
    let (app, ann, _bob, _direct) = ann_and_bob().await;

    let mut socket = WsClient::connect(&app, &ann).await;

    assert_ne!(socket.session_id, Uuid::nil());
    assert!(socket.barrier().await.is_empty());
}

#[tokio::test]
async fn a_socket_authenticates_with_the_bearer_header() {
    let (app, ann, _bob, _direct) = ann_and_bob().await;

    let mut socket = WsClient::connect_with_header(&app, &ann).await;

    assert!(socket.barrier().await.is_empty());
}

#[tokio::test]
async fn each_socket_gets_its_own_session_id_and_the_configured_heartbeat() {
    let (app, ann, _bob, _direct) = ann_and_bob().await;

    let first = WsClient::connect(&app, &ann).await;
    let second = WsClient::connect(&app, &ann).await;

    assert_ne!(first.session_id, second.session_id);
    assert_eq!(first.heartbeat_interval_ms, 25_000);
}

#[tokio::test]
async fn a_socket_gets_what_was_sent_while_its_user_was_offline_then_sync_done() {
    let (app, ann, bob, direct) = ann_and_bob().await;
    let group = app.create_group(&ann, "Pair", &[&bob]).await.id;
    let mut sent = Vec::new();
    for (conversation, text) in [
        (direct, "d1"),
        (group, "g1"),
        (direct, "d2"),
        (group, "g2"),
        (direct, "d3"),
    ] {
        sent.push(app.send_message(&ann, conversation, text, None).await.1);
    }

    let mut bob_socket = WsClient::connect(&app, &bob).await;

    let in_conversation = |conversation: Uuid| -> Vec<u64> {
        bob_socket
            .backlog
            .iter()
            .filter(|m| m.conversation_id == conversation)
            .map(|m| m.seq)
            .collect()
    };
    assert_eq!(in_conversation(direct), [1, 2, 3], "in seq order");
    assert_eq!(in_conversation(group), [1, 2], "in seq order");
    let mut backlog = bob_socket.backlog.clone();
    backlog.sort_by_key(|m| m.id);
    sent.sort_by_key(|m| m.id);
    assert_eq!(backlog, sent, "every missed message, exactly as stored");
    assert!(bob_socket.skipped.is_empty());
    assert!(bob_socket.barrier().await.is_empty(), "each exactly once");
}

#[tokio::test]
async fn a_senders_own_messages_are_not_in_her_backlog() {
    let (app, ann, _bob, direct) = ann_and_bob().await;
    let mut ann_laptop = WsClient::connect(&app, &ann).await;
    ann_laptop
        .send_message(direct, "sent from the laptop", None, "l-1")
        .await;
    app.send_message(&ann, direct, "sent over REST", None).await;
    assert_eq!(
        ann_laptop.barrier().await.len(),
        1,
        "the REST copy reached the laptop"
    );

    let ann_phone = WsClient::connect(&app, &ann).await;

    // Sending delivered them to her: her delivery cursor is at 2, so nothing is above it.
    assert_eq!(
        ann_phone.backlog,
        [],
        "her own messages came back as missed"
    );
}

#[tokio::test]
async fn a_socket_without_a_valid_token_is_refused_with_401_before_the_upgrade() {
    let (app, ann, _bob, _direct) = ann_and_bob().await;
    let expired = app.token_with_ttl(ann.id, chrono::Duration::minutes(-5));
    let forged = mint_token(
        b"not-the-server-secret-not-the-server-secret",
        ann.id,
        chrono::Duration::minutes(5),
    );

    assert_unauthorized(app.ws_url().into_client_request().unwrap()).await;
    for token in ["garbage", expired.as_str(), forged.as_str()] {
        let by_query = format!("{}?token={token}", app.ws_url())
            .into_client_request()
            .unwrap();
        assert_unauthorized(by_query).await;

        let mut by_header = app.ws_url().into_client_request().unwrap();
        by_header.headers_mut().insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        assert_unauthorized(by_header).await;
    }
}

#[tokio::test]
async fn two_users_chat_over_their_sockets() {
    let (app, ann, bob, direct) = ann_and_bob().await;
    let mut ann_socket = WsClient::connect(&app, &ann).await;
    let mut bob_socket = WsClient::connect(&app, &bob).await;

    let sent = ann_socket
        .send_message(direct, "hello over ws", None, "r-1")
        .await;
    assert_eq!(sent.seq, 1);
    assert_eq!(sent.sender_id, ann.id);
    assert_eq!(sent.conversation_id, direct);
    assert_eq!(sent.body.as_deref(), Some("hello over ws"));
    assert_eq!(bob_socket.expect_message_new().await, sent);

    let reply = bob_socket
        .send_message(direct, "hello back", None, "b-1")
        .await;
    assert_eq!(reply.seq, 2);
    assert_eq!(ann_socket.expect_message_new().await, reply);

    // Both messages are stored, as acknowledged.
    assert_eq!(app.all_messages(&ann, direct).await, [sent, reply]);
    assert!(ann_socket.barrier().await.is_empty());
    assert!(bob_socket.barrier().await.is_empty());
}

#[tokio::test]
async fn a_message_reaches_every_other_device_once_and_the_sending_device_only_as_an_ack() {
    let (app, ann, bob, direct) = ann_and_bob().await;
    let mut ann_tab1 = WsClient::connect(&app, &ann).await;
    let mut ann_tab2 = WsClient::connect_with_header(&app, &ann).await;
    let mut bob_phone = WsClient::connect(&app, &bob).await;
    let mut bob_laptop = WsClient::connect(&app, &bob).await;

    let sent = ann_tab1
        .send_message(direct, "to every device", None, "tab1-1")
        .await;

    assert!(
        ann_tab1.barrier().await.is_empty(),
        "the sending socket gets the ack, not a copy"
    );
    for (name, socket) in [
        ("ann's tab 2", &mut ann_tab2),
        ("bob's phone", &mut bob_phone),
        ("bob's laptop", &mut bob_laptop),
    ] {
        let frames = socket.barrier().await;
        assert_eq!(
            frames,
            [ServerFrame::MessageNew {
                message: sent.clone()
            }],
            "{name} gets it exactly once"
        );
    }
}

#[tokio::test]
async fn a_non_members_socket_gets_nothing_and_cannot_send() {
    let (app, ann, _bob, direct) = ann_and_bob().await;
    let eve = app.signup("eve").await;
    let mut ann_socket = WsClient::connect(&app, &ann).await;
    let mut eve_socket = WsClient::connect(&app, &eve).await;

    ann_socket
        .send_message(direct, "private", None, "a-1")
        .await;
    assert!(
        eve_socket.barrier().await.is_empty(),
        "eve is not in the conversation"
    );

    eve_socket
        .send_frame(&send(direct, "let me in", None), "e-1")
        .await;
    let (reference, code, _) = eve_socket.expect_error().await;
    assert_eq!(
        (reference.as_deref(), code),
        (Some("e-1"), ErrorCode::NotFound)
    );
    assert!(ann_socket.barrier().await.is_empty(), "nothing was posted");
    assert_eq!(app.all_messages(&ann, direct).await.len(), 1);
}

#[tokio::test]
async fn a_muted_member_is_refused_over_rest_and_the_socket_until_the_mute_is_lifted() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let group = app.create_group(&ann, "Team", &[&bob]).await;
    let mut ann_socket = WsClient::connect(&app, &ann).await;
    let mut bob_socket = WsClient::connect(&app, &bob).await;
    let an_hour = chrono::Utc::now() + chrono::Duration::hours(1);
    app.database().mute(group.id, bob.id, Some(an_hour)).await;

    // Before anything was sent to the group, and after: the server checks the mute either way.
    let response = app
        .send_message_raw(&bob, group.id, &serde_json::json!({"body": "let me speak"}))
        .await;
    confab_tests::expect_error(response, StatusCode::FORBIDDEN, ErrorCode::Forbidden).await;
    let welcome = ann_socket
        .send_message(group.id, "welcome", None, "a-1")
        .await;
    assert_eq!(
        bob_socket.barrier().await,
        [ServerFrame::MessageNew { message: welcome }],
        "a muted member still hears the conversation"
    );
    bob_socket
        .send_frame(&send(group.id, "please", None), "b-1")
        .await;
    let (reference, code, _) = bob_socket.expect_error().await;
    assert_eq!(
        (reference.as_deref(), code),
        (Some("b-1"), ErrorCode::Forbidden)
    );
    assert!(ann_socket.barrier().await.is_empty(), "nothing was posted");
    assert_eq!(app.all_messages(&ann, group.id).await.len(), 1);

    // The socket stays open, and once the mute is lifted the next send goes through.
    app.database().mute(group.id, bob.id, None).await;
    let thanks = bob_socket
        .send_message(group.id, "thanks", None, "b-2")
        .await;
    assert_eq!(thanks.seq, 2);
    assert_eq!(
        ann_socket.barrier().await,
        [ServerFrame::MessageNew { message: thanks }]
    );
}

#[tokio::test]
async fn resending_a_client_msg_id_over_the_socket_acks_the_first_message_and_fans_out_nothing() {
    let (app, ann, bob, direct) = ann_and_bob().await;
    let mut ann_tab1 = WsClient::connect(&app, &ann).await;
    let mut ann_tab2 = WsClient::connect(&app, &ann).await;
    let mut bob_socket = WsClient::connect(&app, &bob).await;

    let first = ann_tab1
        .send_message(direct, "once", Some("k-1"), "r-1")
        .await;
    assert_eq!(
        bob_socket.barrier().await,
        [ServerFrame::MessageNew {
            message: first.clone()
        }]
    );
    assert_eq!(
        ann_tab2.barrier().await,
        [ServerFrame::MessageNew {
            message: first.clone()
        }]
    );

    let again = ann_tab1
        .send_message(direct, "once", Some("k-1"), "r-2")
        .await;
    assert_eq!(again, first, "the second ack carries the first message");

    assert!(
        bob_socket.barrier().await.is_empty(),
        "no second message.new"
    );
    assert!(ann_tab2.barrier().await.is_empty(), "no second message.new");
    assert!(ann_tab1.barrier().await.is_empty());
    assert_eq!(app.all_messages(&bob, direct).await, [first]);
}

#[tokio::test]
async fn message_read_over_the_socket_acks_the_read_state_that_rest_reports() {
    let (app, ann, bob, direct) = ann_and_bob().await;
    let mut bob_socket = WsClient::connect(&app, &bob).await;
    for text in ["one", "two", "three"] {
        app.send_message(&ann, direct, text, None).await;
    }
    assert_eq!(
        bob_socket.barrier().await.len(),
        3,
        "bob has the three messages"
    );
    let read = |seq| ClientFrame::MessageRead {
        conversation_id: direct,
        seq,
    };

    bob_socket.send_frame(&read(2), "read-1").await;
    assert_eq!(bob_socket.expect_read_ack("read-1").await, (direct, 2, 1));
    let view = app.conversation(&bob, direct).await;
    assert_eq!(view.unread_count, 1, "REST agrees with the ack");
    let bobs_entry = view.members.iter().find(|m| m.user.id == bob.id).unwrap();
    assert_eq!(bobs_entry.read_seq, 2);

    // Lower seqs do not move it back; higher ones are clamped to the newest message.
    bob_socket.send_frame(&read(1), "read-2").await;
    assert_eq!(bob_socket.expect_read_ack("read-2").await, (direct, 2, 1));
    bob_socket.send_frame(&read(50), "read-3").await;
    assert_eq!(bob_socket.expect_read_ack("read-3").await, (direct, 3, 0));
    assert_eq!(app.conversation(&bob, direct).await.unread_count, 0);
}

#[tokio::test]
async fn message_read_in_a_conversation_of_others_is_not_found() {
    let (app, _ann, _bob, direct) = ann_and_bob().await;
    let eve = app.signup("eve").await;
    let mut eve_socket = WsClient::connect(&app, &eve).await;

    eve_socket
        .send_frame(
            &ClientFrame::MessageRead {
                conversation_id: direct,
                seq: 1,
            },
            "peek",
        )
        .await;

    let (reference, code, _) = eve_socket.expect_error().await;
    assert_eq!(
        (reference.as_deref(), code),
        (Some("peek"), ErrorCode::NotFound)
    );
}

#[tokio::test]
async fn messages_sent_in_a_burst_arrive_in_seq_order_without_gaps() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    // A group: its rate limit (30 a minute) leaves room for the burst.
    let group = app.create_group(&ann, "Burst", &[&bob]).await.id;
    let mut ann_socket = WsClient::connect(&app, &ann).await;
    let mut bob_socket = WsClient::connect(&app, &bob).await;

    // Sent back to back, without waiting for the acks.
    for i in 1..=20 {
        ann_socket
            .send_frame(&send(group, &format!("burst {i}"), None), &format!("r-{i}"))
            .await;
    }
    for i in 1..=20u64 {
        let acked = ann_socket.expect_sent_ack(&format!("r-{i}")).await;
        assert_eq!(acked.seq, i, "acks come in the order the frames were sent");
    }

    let mut received = Vec::new();
    for _ in 1..=20 {
        received.push(bob_socket.expect_message_new().await);
    }
    let seqs: Vec<u64> = received.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<u64>>());
    let bodies: Vec<String> = received.iter().map(|m| m.body.clone().unwrap()).collect();
    assert_eq!(
        bodies,
        (1..=20).map(|i| format!("burst {i}")).collect::<Vec<_>>()
    );
    assert!(bob_socket.barrier().await.is_empty(), "nothing twice");
}

#[tokio::test]
async fn a_message_sent_over_rest_reaches_every_socket_of_every_member() {
    let (app, ann, bob, direct) = ann_and_bob().await;
    let mut ann_socket = WsClient::connect(&app, &ann).await;
    let mut bob_socket = WsClient::connect(&app, &bob).await;

    let (_, sent) = app
        .send_message(&ann, direct, "from the REST API", None)
        .await;

    assert_eq!(
        bob_socket.barrier().await,
        [ServerFrame::MessageNew {
            message: sent.clone()
        }]
    );
    assert_eq!(
        ann_socket.barrier().await,
        [ServerFrame::MessageNew { message: sent }],
        "the sender's devices get it too: none of them sent it"
    );
}

#[tokio::test]
async fn a_group_message_reaches_every_member() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let carl = app.signup("carl").await;
    let group = app.create_group(&ann, "Trio", &[&bob, &carl]).await;
    let mut ann_socket = WsClient::connect(&app, &ann).await;
    let mut bob_socket = WsClient::connect(&app, &bob).await;
    let mut carl_socket = WsClient::connect(&app, &carl).await;

    let sent = carl_socket
        .send_message(group.id, "hi all", None, "c-1")
        .await;

    assert_eq!(
        ann_socket.barrier().await,
        [ServerFrame::MessageNew {
            message: sent.clone()
        }]
    );
    assert_eq!(
        bob_socket.barrier().await,
        [ServerFrame::MessageNew { message: sent }]
    );
    assert!(carl_socket.barrier().await.is_empty());
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_socket_keeps_working() {
    let (app, ann, bob, direct) = ann_and_bob().await;
    let mut socket = WsClient::connect(&app, &ann).await;
    let mut bob_socket = WsClient::connect(&app, &bob).await;
    let long_body = "x".repeat(4001);
    let unknown = Uuid::now_v7();

    // (what, frame, expected ref, expected code)
    let table: Vec<(&str, String, Option<&str>, ErrorCode)> = vec![
        (
            "malformed JSON",
            r#"{"type": "ping", "ref": "t1""#.to_owned(),
            None,
            ErrorCode::BadRequest,
        ),
        (
            "a JSON array",
            r#"[{"type": "ping"}]"#.to_owned(),
            None,
            ErrorCode::BadRequest,
        ),
        (
            "a JSON string",
            r#""ping""#.to_owned(),
            None,
            ErrorCode::BadRequest,
        ),
        (
            "unknown type",
            r#"{"type": "launch.rocket", "ref": "t3"}"#.to_owned(),
            Some("t3"),
            ErrorCode::BadRequest,
        ),
        (
            "missing type",
            r#"{"ref": "t4", "body": "hi"}"#.to_owned(),
            Some("t4"),
            ErrorCode::BadRequest,
        ),
        (
            "missing conversation_id",
            r#"{"type": "message.send", "ref": "t5", "body": "hi"}"#.to_owned(),
            Some("t5"),
            ErrorCode::BadRequest,
        ),
        (
            "wrong field type",
            format!(
                r#"{{"type": "message.read", "ref": "t6", "conversation_id": "{direct}", "seq": "three"}}"#
            ),
            Some("t6"),
            ErrorCode::BadRequest,
        ),
        (
            "conversation_id that is not a uuid",
            r#"{"type": "message.send", "ref": "t7", "conversation_id": "nope", "body": "hi"}"#
                .to_owned(),
            Some("t7"),
            ErrorCode::BadRequest,
        ),
        (
            "body too long",
            format!(
                r#"{{"type": "message.send", "ref": "t8", "conversation_id": "{direct}", "body": "{long_body}"}}"#
            ),
            Some("t8"),
            ErrorCode::ValidationFailed,
        ),
        (
            "empty body",
            format!(
                r#"{{"type": "message.send", "ref": "t9", "conversation_id": "{direct}", "body": "  "}}"#
            ),
            Some("t9"),
            ErrorCode::ValidationFailed,
        ),
        (
            "unknown conversation",
            format!(
                r#"{{"type": "message.send", "ref": "t10", "conversation_id": "{unknown}", "body": "hi"}}"#
            ),
            Some("t10"),
            ErrorCode::NotFound,
        ),
    ];
    for (what, frame, expected_ref, expected_code) in &table {
        socket.send_text(frame).await;
        let (reference, code, details) = socket.expect_error().await;
        assert_eq!(
            reference.as_deref(),
            *expected_ref,
            "{what}: the ref is echoed when there is one"
        );
        assert_eq!(code, *expected_code, "{what}");
        if code == ErrorCode::ValidationFailed {
            let fields: Vec<&String> = details
                .as_ref()
                .and_then(|d| d.as_object())
                .unwrap()
                .keys()
                .collect();
            assert_eq!(fields, ["body"], "{what}: details name the field");
        }
    }
    socket.send_binary(vec![0, 159, 146, 150]).await;
    let (reference, code, _) = socket.expect_error().await;
    assert_eq!(
        (reference, code),
        (None, ErrorCode::BadRequest),
        "a binary frame"
    );

    // The same socket still works.
    socket
        .send_frame(&ClientFrame::Ping {}, "still-there")
        .await;
    assert_eq!(
        socket.next_frame().await,
        ServerFrame::Pong {
            reference: Some("still-there".into())
        }
    );
    let sent = socket
        .send_message(direct, "still works", None, "ok-1")
        .await;
    assert_eq!(sent.seq, 1, "none of the bad frames posted anything");
    assert_eq!(
        bob_socket.barrier().await,
        [ServerFrame::MessageNew { message: sent }]
    );
}

#[tokio::test]
async fn a_plain_http_request_to_the_socket_route_is_a_bad_request() {
    let (app, ann, _bob, _direct) = ann_and_bob().await;

    let response = app.get_raw("/ws", Some(&ann.token)).await;

    confab_tests::expect_error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
}

#[tokio::test]
async fn ping_is_answered_with_pong_repeating_its_ref() {
    let (app, ann, _bob, _direct) = ann_and_bob().await;
    let mut socket = WsClient::connect(&app, &ann).await;

    socket.send_text(r#"{"type": "ping", "ref": "p-1"}"#).await;
    assert_eq!(
        socket.next_frame().await,
        ServerFrame::Pong {
            reference: Some("p-1".into())
        }
    );
    socket.send_text(r#"{"type": "ping"}"#).await;
    assert_eq!(
        socket.next_frame().await,
        ServerFrame::Pong { reference: None }
    );
}

#[tokio::test]
async fn a_frame_over_64_kib_closes_the_socket_with_1009() {
    let (app, ann, _bob, direct) = ann_and_bob().await;
    let mut socket = WsClient::connect(&app, &ann).await;

    let padding = "x".repeat(64 * 1024);
    socket
        .send_text(&format!(r#"{{"type": "message.send", "ref": "big", "conversation_id": "{direct}", "body": "{padding}"}}"#))
        .await;

    assert_eq!(socket.expect_close().await, Closed::Code(1009));
    assert!(app.all_messages(&ann, direct).await.is_empty());
}

#[tokio::test]
async fn a_frame_of_exactly_64_kib_is_read() {
    let (app, ann, _bob, direct) = ann_and_bob().await;
    let mut socket = WsClient::connect(&app, &ann).await;

    // The frame is within the limit; the body inside it is too long for a message.
    let frame = format!(
        r#"{{"type": "message.send", "ref": "near", "conversation_id": "{direct}", "body": "BODY"}}"#
    );
    let padding = "x".repeat(64 * 1024 - (frame.len() - "BODY".len()));
    let frame = frame.replace("BODY", &padding);
    assert_eq!(frame.len(), 64 * 1024);
    socket.send_text(&frame).await;

    let (reference, code, _) = socket.expect_error().await;
    assert_eq!(
        (reference.as_deref(), code),
        (Some("near"), ErrorCode::ValidationFailed)
    );
}

#[tokio::test]
async fn a_silent_client_is_closed_after_two_heartbeats() {
    let heartbeat = Duration::from_secs(1);
    let app = TestApp::spawn_with(SocketConfig {
        heartbeat,
        ..SocketConfig::default()
    })
    .await;
    let ann = app.signup("ann").await;
    let mut socket = WsClient::connect(&app, &ann).await;
    assert_eq!(socket.heartbeat_interval_ms, 1_000);

    // Here the silence is the behaviour under test: not reading means not answering the
    // server's pings, for longer than two heartbeat intervals.
    tokio::time::sleep(heartbeat * 3 + Duration::from_millis(500)).await;

    match socket.expect_close().await {
        Closed::Code(code) => assert_eq!(code, 1008, "closed as a policy violation"),
        Closed::Ended => {}
    }
}

#[tokio::test]
async fn a_client_that_answers_pings_stays_connected_past_two_heartbeats() {
    let heartbeat = Duration::from_secs(1);
    let app = TestApp::spawn_with(SocketConfig {
        heartbeat,
        ..SocketConfig::default()
    })
    .await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let (_, direct) = app.open_direct(&ann, &bob).await;
    let mut socket = WsClient::connect(&app, &ann).await;

    // Reading keeps answering the server's pings (the library does it by itself). Waiting
    // for a frame that never comes, for three heartbeats, is the behaviour under test.
    let quiet = tokio::time::timeout(heartbeat * 3, socket.next_frame()).await;
    assert!(quiet.is_err(), "nothing was sent in the meantime");

    let sent = socket
        .send_message(direct.id, "still here", None, "alive")
        .await;
    assert_eq!(sent.seq, 1);
}

#[tokio::test]
async fn sending_faster_than_the_limit_over_the_socket_is_an_error_with_retry_after_ms() {
    let app =
        TestApp::spawn_configured(SocketConfig::default(), &["--rate-direct-per-min", "2"]).await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let (_, direct) = app.open_direct(&ann, &bob).await;
    let mut socket = WsClient::connect(&app, &ann).await;
    socket.send_message(direct.id, "one", None, "r-1").await;
    socket.send_message(direct.id, "two", None, "r-2").await;

    socket
        .send_frame(&send(direct.id, "three", None), "r-3")
        .await;
    let frame = socket.next_frame_json().await;

    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["code"], "rate_limited", "{frame}");
    assert_eq!(frame["ref"], "r-3", "{frame}");
    let retry_after_ms = frame["retry_after_ms"].as_u64();
    assert!(
        retry_after_ms.is_some_and(|ms| ms > 0 && ms <= 60_000),
        "the error says when to retry, as `retry_after_ms`: {frame}"
    );
    // The socket stays open.
    assert!(socket.barrier().await.is_empty());
}

/// Opens a raw TCP connection to the app and writes `bytes` in one go.
async fn raw_connection(app: &TestApp, bytes: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

/// A client text frame, masked (with the all-zero key, which leaves the payload as it is).
fn masked_text_frame(payload: &str) -> Vec<u8> {
    let len = u8::try_from(payload.len()).expect("a short frame");
    assert!(len < 126, "a short frame");
    let mut frame = vec![0x81, 0x80 | len, 0, 0, 0, 0];
    frame.extend_from_slice(payload.as_bytes());
    frame
}

#[tokio::test]
async fn a_frame_sent_right_behind_the_handshake_is_answered() {
    use tokio::io::AsyncReadExt;
    use tokio_tungstenite::tungstenite::protocol::Role;
    let (app, ann, _bob, _direct) = ann_and_bob().await;
    // A client that does not wait for the 101: its first frame arrives in the same packet as
    // the handshake, so the server has read it before the connection becomes a WebSocket.
    let mut bytes = format!(
        "GET /api/v1/ws?token={} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        ann.token
    )
    .into_bytes();
    bytes.extend(masked_text_frame(r#"{"type": "ping", "ref": "early"}"#));
    let mut stream = raw_connection(&app, &bytes).await;

    let mut read = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("the handshake is answered in time")
            .unwrap();
        assert!(
            n > 0,
            "the server closed the connection during the handshake"
        );
        read.extend_from_slice(&chunk[..n]);
        if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&read[..head_end]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    let mut socket = tokio_tungstenite::WebSocketStream::from_partially_read(
        stream,
        read[head_end..].to_vec(),
        Role::Client,
        None,
    )
    .await;
    let mut types = Vec::new();
    while !types.iter().any(|t| t == "pong") {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the pong comes in time")
            .expect("the socket stays open")
            .unwrap();
        if let Message::Text(text) = message {
            let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
            if frame["type"] == "pong" {
                assert_eq!(frame["ref"], "early");
            }
            types.push(frame["type"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(types.first().map(String::as_str), Some("hello"));
    assert!(types.iter().any(|t| t == "sync.done"), "{types:?}");
}

#[tokio::test]
async fn an_upgrade_request_to_another_route_gets_that_routes_answer() {
    use tokio::io::AsyncReadExt;
    let app = TestApp::spawn().await;
    let mut stream = raw_connection(
        &app,
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n\
          Upgrade: websocket\r\n\r\n",
    )
    .await;

    // Answered like any request, then closed: the connection cannot go back to plain HTTP.
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the answer comes, and the connection closes, in time")
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with(r#"{"status":"ok"}"#), "{response}");
}
