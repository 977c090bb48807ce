//! WebSocket frames both ways: parsing what clients send (`ClientEnvelope::parse`, once per
//! incoming frame) and serializing what the server sends (`serde_json::to_string` of a
//! `ServerFrame`, what `confab-realtime`'s `encode` does once per event).
//!
//! `cargo bench -p confab-api --bench ws_frames`

use std::hint::black_box;

use chrono::{DateTime, Utc};
use confab_api::ConversationUpdate;
use confab_api::ws::{ClientEnvelope, ServerFrame, TypingState};
use confab_app::MemberActivity;
use confab_domain::{
    ClientMsgId, Conversation, ConversationId, ConversationKind, Message, MessageId, MessageKind,
    Role, Seq, UserId,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use uuid::Uuid;

/// A realistic message text: exactly 100 characters, with punctuation and a quote to escape.
const BODY: &str = "Running ten minutes late, the \"usual\" train is stuck. Start without me, I'll catch up by the demo!!!";

fn client_frames() -> Vec<(&'static str, String)> {
    let conversation = Uuid::now_v7();
    let message = Uuid::now_v7();
    let cursors: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"conversation_id":"{}","seq":{}}}"#,
                Uuid::now_v7(),
                1000 + i
            )
        })
        .collect();
    vec![
        (
            "message.send",
            format!(
                r#"{{"type":"message.send","ref":"r-1842","conversation_id":"{conversation}","client_msg_id":"0b6f3c1e-5f7a-4d2b-9a61-3f1d2c4b5a69","body":"{}"}}"#,
                BODY.replace('"', "\\\"")
            ),
        ),
        (
            "message.read",
            format!(
                r#"{{"type":"message.read","ref":"r-1843","conversation_id":"{conversation}","seq":48213}}"#
            ),
        ),
        (
            "typing",
            format!(r#"{{"type":"typing","conversation_id":"{conversation}","state":"start"}}"#),
        ),
        ("ping", r#"{"type":"ping","ref":"r-1844"}"#.to_owned()),
        (
            "message.edit",
            format!(
                r#"{{"type":"message.edit","ref":"r-1845","message_id":"{message}","body":"{}"}}"#,
                BODY.replace('"', "\\\"")
            ),
        ),
        (
            "sync_20_cursors",
            format!(
                r#"{{"type":"sync","ref":"r-1846","cursors":[{}]}}"#,
                cursors.join(",")
            ),
        ),
        // The error path: a client sending garbage must stay cheap to answer.
        (
            "unknown_type",
            r#"{"type":"launch.rocket","ref":"r-1847","payload":{"a":1}}"#.to_owned(),
        ),
    ]
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (name, text) in client_frames() {
        let parsed = ClientEnvelope::parse(&text);
        // Every frame but the deliberately bad one must parse, or the bench measures an error.
        assert_eq!(parsed.is_ok(), name != "unknown_type", "{name}: {parsed:?}");
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &text, |b, text| {
            b.iter(|| ClientEnvelope::parse(black_box(text)));
        });
    }
    group.finish();
}

fn server_frames() -> Vec<(&'static str, ServerFrame)> {
    assert_eq!(BODY.chars().count(), 100);
    // Fixed instants with nanoseconds, as stored timestamps have.
    let at = |secs: i64| {
        DateTime::<Utc>::from_timestamp(1_790_000_000 + secs, 123_456_789).unwrap_or_default()
    };
    let conversation = Conversation {
        id: ConversationId::generate(),
        kind: ConversationKind::Group,
        name: Some("Platform team".to_owned()),
        topic: Some("Deploys, incidents and the occasional cake".to_owned()),
        created_at: at(0),
        updated_at: at(86_400),
        last_seq: Seq::new(48_213),
        last_deleted_seq: Seq::ZERO,
    };
    let message = Message {
        id: MessageId::generate(),
        conversation_id: conversation.id,
        seq: conversation.last_seq,
        sender_id: UserId::generate(),
        kind: MessageKind::Text,
        body: Some(BODY.to_owned()),
        client_msg_id: ClientMsgId::parse("0b6f3c1e-5f7a-4d2b-9a61-3f1d2c4b5a69").ok(),
        created_at: at(86_400),
        edited_at: None,
        deleted_at: None,
    };
    let member = MemberActivity {
        user_id: UserId::generate(),
        role: Role::Member,
        unread_count: 7,
    };
    vec![
        (
            "message.new",
            ServerFrame::MessageNew {
                message: (&message).into(),
            },
        ),
        (
            "conversation.updated",
            ServerFrame::ConversationUpdated {
                conversation: ConversationUpdate::new(&conversation, Some(&message), &member),
            },
        ),
        (
            "receipt",
            ServerFrame::Receipt {
                conversation_id: conversation.id.as_uuid(),
                user_id: member.user_id.as_uuid(),
                read_seq: 48_213,
                delivered_seq: 48_213,
            },
        ),
        (
            "typing",
            ServerFrame::Typing {
                conversation_id: conversation.id.as_uuid(),
                user_id: member.user_id.as_uuid(),
                state: TypingState::Start,
            },
        ),
    ]
}

fn serialize(c: &mut Criterion) {
    let mut group = c.benchmark_group("serialize");
    for (name, frame) in server_frames() {
        let text = serde_json::to_string(&frame);
        assert!(text.is_ok(), "{name}: {text:?}");
        group.throughput(Throughput::Bytes(text.map_or(0, |t| t.len() as u64)));
        group.bench_with_input(BenchmarkId::from_parameter(name), &frame, |b, frame| {
            b.iter(|| serde_json::to_string(black_box(frame)));
        });
    }
    group.finish();
}

criterion_group!(benches, parse, serialize);
criterion_main!(benches);
