//! Fan-out of one event to 10 000 sockets on this instance: one `message.new` serialized
//! once and pushed into every socket's bounded queue, as `Hub::fan_out` and `deliver` do; and,
//! for comparison, a `conversation.updated`, whose text differs per member.
//!
//! `cargo bench -p confab-realtime --bench fan_out`
//!
//! Only the push is timed. Between iterations every queue is drained untimed, as the sockets'
//! tasks would, so each push lands in a queue with room: the numbers are the delivery path, never
//! the overflow path of a full queue (each iteration checks that every socket got its frame).
//! Draining polls each queue with a no-op waker, which stays registered, so a push pays for
//! waking the socket like in the server; what the wake costs the runtime afterwards (scheduling
//! 10 000 tasks) is outside this benchmark, and measured end to end by `confab-load`.

use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use chrono::Utc;
use confab_api::ws::ServerFrame;
use confab_app::{Event, MemberActivity};
use confab_domain::{
    ClientMsgId, Conversation, ConversationId, ConversationKind, Message, MessageId, MessageKind,
    Role, Seq, UserId,
};
use confab_realtime::{Hub, LocalSocket, Outbound, SocketConfig, deliver};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Sockets on this instance, one per member of one big room.
const SOCKETS: usize = 10_000;

/// A realistic message text: exactly 100 characters.
const BODY: &str = "Running ten minutes late, the \"usual\" train is stuck. Start without me, I'll catch up by the demo!!!";

/// A hub with one socket for each of `SOCKETS` users, every queue as deep as in the server.
struct Room {
    hub: Hub,
    members: Vec<UserId>,
    sockets: Vec<LocalSocket>,
}

impl Room {
    fn new() -> Self {
        let capacity = SocketConfig::default().outbound_capacity;
        let hub = Hub::new();
        let members: Vec<UserId> = (0..SOCKETS).map(|_| UserId::generate()).collect();
        let sockets = members
            .iter()
            .map(|user| hub.attach(*user, capacity))
            .collect();
        let mut room = Self {
            hub,
            members,
            sockets,
        };
        // Registers each socket's waker before the first push.
        room.drain();
        room
    }

    /// Takes every queued frame out of every socket and returns how many there were.
    fn drain(&mut self) -> usize {
        let mut cx = Context::from_waker(Waker::noop());
        let mut frames = 0;
        for socket in &mut self.sockets {
            while let Poll::Ready(Some(_)) = socket.queue.poll_recv(&mut cx) {
                frames += 1;
            }
        }
        frames
    }

    /// Times `push` (given the hub and the members) alone, `iters` times, with every queue
    /// drained in between.
    fn time(&mut self, iters: u64, push: impl Fn(&Hub, &[UserId])) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let start = Instant::now();
            push(&self.hub, &self.members);
            total += start.elapsed();
            assert_eq!(
                self.drain(),
                SOCKETS,
                "every socket gets the frame once and none overflows"
            );
        }
        total
    }
}

fn conversation() -> Conversation {
    let now = Utc::now();
    Conversation {
        id: ConversationId::generate(),
        kind: ConversationKind::Room,
        name: Some("Company all-hands".to_owned()),
        topic: Some("Announcements and questions for everyone".to_owned()),
        created_at: now,
        updated_at: now,
        last_seq: Seq::new(48_213),
        last_deleted_seq: Seq::ZERO,
    }
}

fn message(conversation: &Conversation) -> Message {
    assert_eq!(BODY.chars().count(), 100);
    Message {
        id: MessageId::generate(),
        conversation_id: conversation.id,
        seq: conversation.last_seq,
        sender_id: UserId::generate(),
        kind: MessageKind::Text,
        body: Some(BODY.to_owned()),
        client_msg_id: ClientMsgId::parse("0b6f3c1e-5f7a-4d2b-9a61-3f1d2c4b5a69").ok(),
        created_at: conversation.updated_at,
        edited_at: None,
        deleted_at: None,
    }
}

fn fan_out(c: &mut Criterion) {
    let conversation = conversation();
    let message = message(&conversation);
    let mut room = Room::new();

    let mut group = c.benchmark_group("fan_out_10k");
    group.throughput(Throughput::Elements(SOCKETS as u64));

    // The push alone: a frame serialized beforehand, cloned (a reference count) into each queue.
    let text = serde_json::to_string(&ServerFrame::MessageNew {
        message: (&message).into(),
    });
    assert!(text.is_ok(), "{text:?}");
    let frame = Outbound {
        text: text.unwrap_or_default().into(),
        position: Some((conversation.id, message.seq)),
        newest: None,
    };
    group.bench_function("hub.fan_out/message.new", |b| {
        b.iter_custom(|iters| room.time(iters, |hub, members| hub.fan_out(members, None, &frame)));
    });

    // What the publisher does per event: build the frame, serialize it once, push it to all.
    let event = Event::MessageCreated {
        message: message.clone(),
        recipients: room.members.clone(),
        origin: None,
    };
    group.bench_function("deliver/message.new", |b| {
        b.iter_custom(|iters| room.time(iters, |hub, _| deliver(hub, &event)));
    });
    group.finish();

    // `conversation.updated` carries each member's own unread count, so no text is shared:
    // each member's frame is built for them (one push each, plus that member's text).
    let mut group = c.benchmark_group("fan_out_10k_per_member");
    group.throughput(Throughput::Elements(SOCKETS as u64));
    group.sample_size(10);
    let event = Event::ConversationUpdated {
        conversation: conversation.clone(),
        last_message: Some(message.clone()),
        members: room
            .members
            .iter()
            .zip(0..)
            .map(|(user, unread)| MemberActivity {
                user_id: *user,
                role: Role::Member,
                unread_count: unread % 50,
            })
            .collect(),
    };
    group.bench_function("deliver/conversation.updated", |b| {
        b.iter_custom(|iters| room.time(iters, |hub, _| deliver(hub, &event)));
    });
    group.finish();
}

criterion_group!(benches, fan_out);
criterion_main!(benches);
