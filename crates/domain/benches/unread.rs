//! The unread computation: `Member::unread_count`, run for every member on every
//! `conversation.updated` and conversation list, with a varying number of deleted seqs.
//!
//! `cargo bench -p confab-domain --bench unread`

use std::hint::black_box;

use confab_domain::{ConversationId, DeletedSeqs, Member, Role, Seq, UserId};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// The conversation's newest seq.
const LAST_SEQ: u64 = 10_000;
/// The member has read up to here: 100 messages above the cursor.
const READ_SEQ: u64 = LAST_SEQ - 100;

fn member() -> Member {
    let now = chrono::Utc::now();
    Member {
        conversation_id: ConversationId::generate(),
        user_id: UserId::generate(),
        role: Role::Member,
        joined_at: now,
        read_seq: Seq::new(READ_SEQ),
        delivered_seq: Seq::new(READ_SEQ),
        muted_until: None,
    }
}

/// `count` deleted seqs spread evenly over the whole conversation, newest first (the order is
/// free): most lie at or below the cursor and are skipped, about 1 % lie above it.
fn deleted(count: u64) -> Vec<Seq> {
    if count == 0 {
        return Vec::new();
    }
    let step = LAST_SEQ / count;
    (1..=count).rev().map(|i| Seq::new(i * step)).collect()
}

/// Spread evenly over `(from, LAST_SEQ]`: the `deleted_seqs` above a room's lowest cursor.
fn deleted_above(from: u64, count: u64) -> Vec<Seq> {
    let step = (LAST_SEQ - from) / count.max(1);
    (1..=count).map(|i| Seq::new(from + i * step)).collect()
}

fn unread_count(c: &mut Criterion) {
    let member = member();
    let mut group = c.benchmark_group("unread_count");
    for count in [0_u64, 10, 100, 1_000] {
        let seqs = deleted(count);
        // Sanity: the arithmetic the benchmark measures gives the right answer.
        let above = seqs
            .iter()
            .filter(|seq| seq.value() > READ_SEQ && seq.value() <= LAST_SEQ)
            .count() as u64;
        let deleted = DeletedSeqs::new(seqs);
        assert_eq!(
            member.unread_count(Seq::new(LAST_SEQ), &deleted),
            LAST_SEQ - READ_SEQ - above
        );
        group.bench_with_input(
            BenchmarkId::new("deleted", count),
            &deleted,
            |b, deleted| {
                b.iter(|| {
                    black_box(&member)
                        .unread_count(black_box(Seq::new(LAST_SEQ)), black_box(deleted))
                });
            },
        );
    }
    group.finish();
}

/// What one `conversation.updated` costs in a big room: every member's count against the
/// same deleted seqs above the lowest cursor (as the activity service computes it), two binary
/// searches a member.
fn unread_count_room(c: &mut Criterion) {
    const MEMBERS: u64 = 10_000;
    let template = member();
    // Cursors spread over the last 1 000 messages.
    let members: Vec<Member> = (0..MEMBERS)
        .map(|i| Member {
            user_id: UserId::generate(),
            read_seq: Seq::new(LAST_SEQ - 1 - i % 1_000),
            ..template.clone()
        })
        .collect();
    let lowest = LAST_SEQ - 1_000;
    let mut group = c.benchmark_group("unread_count_room_10k");
    group.throughput(Throughput::Elements(MEMBERS));
    group.sample_size(20);
    for count in [0_u64, 10, 100, 1_000] {
        // `count` deleted seqs above the lowest cursor, as `deleted_seqs` returns them, sorted
        // once per update as the activity service does.
        let deleted = DeletedSeqs::new(deleted_above(lowest, count));
        group.bench_with_input(
            BenchmarkId::new("deleted", count),
            &deleted,
            |b, deleted| {
                b.iter(|| {
                    black_box(&members)
                        .iter()
                        .map(|m| m.unread_count(Seq::new(LAST_SEQ), black_box(deleted)))
                        .sum::<u64>()
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, unread_count, unread_count_room);
criterion_main!(benches);
