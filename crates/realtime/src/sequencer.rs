//! Per-socket ordering: each conversation's messages leave a socket in seq order, each once.
//!
//! Live events can arrive out of order (two senders commit 7 and 8; 8 is published first) or
//! not at all (a bus dropped one). The sequencer holds an early message until the ones before
//! it have gone out, and reports a gap that stays open too long so the socket can fill it from
//! storage. It also remembers which range of each conversation this socket has sent, so that
//! the backlog and `sync` never send a message twice.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use confab_domain::{ConversationId, Seq};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// One conversation as seen by one socket.
#[derive(Debug)]
struct Track {
    /// Everything in `(origin, next]` has gone out on this socket (or was deliberately
    /// passed over, like the sender's own message answered by an `ack`).
    origin: Seq,
    next: Seq,
    /// Early arrivals, waiting for the seqs before them.
    early: BTreeMap<Seq, Utf8Bytes>,
    /// The newest seq the socket has heard of (from `conversation.updated`), though the
    /// message itself has not arrived: a lost last message shows as `next < known`.
    known: Seq,
    /// Since when the oldest early arrival has waited.
    waiting_since: Option<Instant>,
}

/// A hole in one conversation: the seqs strictly between `after` and `before` have not
/// arrived, though `before` has (or, at the tail, is known to exist). `until` is the newest
/// seq the socket knows of: storage is asked up to there at once, so that the gaps behind
/// this one are filled in the same pass instead of each waiting out its own patience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gap {
    pub(crate) conversation_id: ConversationId,
    pub(crate) after: Seq,
    pub(crate) before: Seq,
    pub(crate) until: Seq,
}

#[derive(Debug, Default)]
pub(crate) struct Sequencer {
    tracks: HashMap<ConversationId, Track>,
}

impl Sequencer {
    /// Starts following a conversation whose messages up to `seq` this socket will not send
    /// unless asked (`sync`).
    pub(crate) fn start_at(&mut self, conversation: ConversationId, seq: Seq) {
        self.tracks.insert(
            conversation,
            Track {
                origin: seq,
                next: seq,
                early: BTreeMap::new(),
                known: seq,
                waiting_since: None,
            },
        );
    }

    /// Where the socket stands in a conversation: `(origin, next)`, if it follows it.
    pub(crate) fn position(&self, conversation: ConversationId) -> Option<(Seq, Seq)> {
        self.tracks.get(&conversation).map(|t| (t.origin, t.next))
    }

    /// The socket is about to send the messages `(after, origin]` that it had not sent: its
    /// sent range now starts at `after`.
    pub(crate) fn extend_back(&mut self, conversation: ConversationId, after: Seq) {
        if let Some(track) = self.tracks.get_mut(&conversation) {
            track.origin = track.origin.min(after);
        }
    }

    /// A frame for message `seq` of `conversation`: returns what may go out now, in order.
    /// Anything already sent is dropped; anything early is held.
    pub(crate) fn offer(
        &mut self,
        conversation: ConversationId,
        seq: Seq,
        frame: Utf8Bytes,
        now: Instant,
    ) -> Vec<Utf8Bytes> {
        let track = self.tracks.entry(conversation).or_insert_with(|| {
            // First sight of this conversation on this socket (it is new, or the user just
            // joined it): this message is where the socket's range begins.
            let before = Seq::new(seq.value().saturating_sub(1));
            Track {
                origin: before,
                next: before,
                early: BTreeMap::new(),
                known: before,
                waiting_since: None,
            }
        });
        if seq <= track.next {
            return Vec::new();
        }
        track.early.insert(seq, frame);
        Self::release(track, now)
    }

    /// The gaps that have stayed open longer than `patience`.
    pub(crate) fn overdue(&self, now: Instant, patience: Duration) -> Vec<Gap> {
        self.tracks
            .iter()
            .filter(|(_, t)| {
                t.waiting_since
                    .is_some_and(|since| now.duration_since(since) >= patience)
            })
            .filter_map(|(id, t)| {
                let before = t
                    .early
                    .keys()
                    .next()
                    .copied()
                    .or_else(|| (t.known > t.next).then(|| t.known.next()))?;
                let newest = t.early.keys().next_back().copied().unwrap_or(t.known);
                Some(Gap {
                    conversation_id: *id,
                    after: t.next,
                    before,
                    until: newest.max(t.known),
                })
            })
            .collect()
    }

    /// The conversation is known to reach `last` (a `conversation.updated` said so). If its
    /// messages up to there have not all come, that is a gap at the tail: the message that
    /// would reveal it by arriving early may never come.
    pub(crate) fn heard_of(&mut self, conversation: ConversationId, last: Seq, now: Instant) {
        let Some(track) = self.tracks.get_mut(&conversation) else {
            return;
        };
        track.known = track.known.max(last);
        if track.known > track.next && track.waiting_since.is_none() {
            track.waiting_since = Some(now);
        }
    }

    /// When the next gap becomes overdue, if any is open.
    pub(crate) fn next_deadline(&self, patience: Duration) -> Option<Instant> {
        self.tracks
            .values()
            .filter_map(|t| t.waiting_since)
            .min()
            .map(|since| since + patience)
    }

    /// Gives up on what storage could not fill of `gap` (it was deleted, or the user may not
    /// see it): what waits behind it goes out. Only `gap` is given up on: a gap behind it that
    /// the fill did not reach starts its own wait.
    pub(crate) fn skip_gap(&mut self, gap: Gap, now: Instant) -> Vec<Utf8Bytes> {
        let Some(track) = self.tracks.get_mut(&gap.conversation_id) else {
            return Vec::new();
        };
        let last_missing = Seq::new(gap.before.value().saturating_sub(1));
        let mut ready = Vec::new();
        if track.next < last_missing {
            // Whatever is held inside the gap goes out in order; the rest is passed over.
            let behind = track.early.split_off(&gap.before);
            ready.extend(std::mem::replace(&mut track.early, behind).into_values());
            track.next = last_missing;
        }
        track.waiting_since = None;
        ready.extend(Self::release(track, now));
        ready
    }

    /// Filling `conversation`'s gap failed (storage did not answer): wait the patience again
    /// before the next try, instead of giving up on messages that exist.
    pub(crate) fn retry_later(&mut self, conversation: ConversationId, now: Instant) {
        if let Some(track) = self.tracks.get_mut(&conversation)
            && track.waiting_since.is_some()
        {
            track.waiting_since = Some(now);
        }
    }

    fn release(track: &mut Track, now: Instant) -> Vec<Utf8Bytes> {
        let mut ready = Vec::new();
        while let Some(entry) = track.early.first_entry() {
            if *entry.key() != track.next.next() {
                break;
            }
            track.next = *entry.key();
            ready.push(entry.remove());
        }
        track.known = track.known.max(track.next);
        // Anything left is behind a gap: keep the clock of the oldest wait, start one if new.
        let behind = !track.early.is_empty() || track.known > track.next;
        track.waiting_since = if behind {
            Some(track.waiting_since.unwrap_or(now))
        } else {
            None
        };
        ready
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An empty sequencer, a conversation and the time now.
    fn fresh() -> (Sequencer, ConversationId, Instant) {
        (
            Sequencer::default(),
            ConversationId::generate(),
            Instant::now(),
        )
    }

    fn frame(seq: u64) -> Utf8Bytes {
        Utf8Bytes::from(format!("m{seq}"))
    }

    #[test]
    fn in_order_messages_go_straight_out_and_repeats_are_dropped() {
        let (mut seq, c, now) = fresh();
        seq.start_at(c, Seq::new(3));
        assert_eq!(seq.offer(c, Seq::new(4), frame(4), now), vec![frame(4)]);
        assert!(seq.offer(c, Seq::new(4), frame(4), now).is_empty());
        assert!(seq.offer(c, Seq::new(2), frame(2), now).is_empty());
        assert_eq!(seq.position(c), Some((Seq::new(3), Seq::new(4))));
    }

    #[test]
    fn an_early_message_waits_for_the_ones_before_it() {
        let (mut seq, c, now) = fresh();
        seq.start_at(c, Seq::ZERO);
        assert!(seq.offer(c, Seq::new(2), frame(2), now).is_empty());
        assert!(seq.offer(c, Seq::new(3), frame(3), now).is_empty());
        assert_eq!(
            seq.offer(c, Seq::new(1), frame(1), now),
            vec![frame(1), frame(2), frame(3)]
        );
        assert!(seq.next_deadline(Duration::from_secs(1)).is_none());
    }

    #[test]
    fn a_gap_left_open_is_reported_after_the_patience_and_can_be_skipped() {
        let (mut seq, c, t0) = fresh();
        let patience = Duration::from_millis(500);
        seq.start_at(c, Seq::new(5));
        assert!(seq.offer(c, Seq::new(8), frame(8), t0).is_empty());
        assert!(seq.overdue(t0, patience).is_empty());
        assert_eq!(seq.next_deadline(patience), Some(t0 + patience));
        let gaps = seq.overdue(t0 + patience, patience);
        assert_eq!(
            gaps,
            vec![Gap {
                conversation_id: c,
                after: Seq::new(5),
                before: Seq::new(8),
                until: Seq::new(8),
            }]
        );
        // Storage fills 6, which goes out at once; 7 it cannot find: give up on it.
        assert_eq!(
            seq.offer(c, Seq::new(6), frame(6), t0 + patience),
            vec![frame(6)]
        );
        assert_eq!(seq.skip_gap(gaps[0], t0 + patience), vec![frame(8)]);
        assert!(seq.next_deadline(patience).is_none());
    }

    #[test]
    fn giving_up_on_a_gap_passes_over_only_that_gap() {
        let (mut seq, c, t0) = fresh();
        let patience = Duration::from_millis(500);
        seq.start_at(c, Seq::new(5));
        // 6 and 8 were lost; 7 and 9 wait.
        assert!(seq.offer(c, Seq::new(7), frame(7), t0).is_empty());
        assert!(seq.offer(c, Seq::new(9), frame(9), t0).is_empty());
        let t1 = t0 + patience;
        let gaps = seq.overdue(t1, patience);
        assert_eq!(
            gaps,
            vec![Gap {
                conversation_id: c,
                after: Seq::new(5),
                before: Seq::new(7),
                until: Seq::new(9),
            }]
        );
        // Storage gave 6 only (8 was not committed yet when it looked): 6 and 7 go out, and
        // 9 keeps waiting for 8, which gets a patience of its own.
        assert_eq!(
            seq.offer(c, Seq::new(6), frame(6), t1),
            vec![frame(6), frame(7)]
        );
        assert!(seq.skip_gap(gaps[0], t1).is_empty());
        assert_eq!(seq.position(c), Some((Seq::new(5), Seq::new(7))));
        assert_eq!(seq.next_deadline(patience), Some(t1 + patience));
        assert_eq!(
            seq.offer(c, Seq::new(8), frame(8), t1),
            vec![frame(8), frame(9)]
        );
    }

    #[test]
    fn what_storage_found_inside_a_gap_goes_out_in_order_when_the_rest_is_given_up() {
        let (mut seq, c, t0) = fresh();
        let patience = Duration::from_millis(500);
        seq.start_at(c, Seq::new(5));
        assert!(seq.offer(c, Seq::new(8), frame(8), t0).is_empty());
        let gaps = seq.overdue(t0 + patience, patience);
        // Storage has 7 but not 6 (deleted, say): 7 waits for 6 until the gap is given up on.
        assert!(
            seq.offer(c, Seq::new(7), frame(7), t0 + patience)
                .is_empty()
        );
        assert_eq!(
            seq.skip_gap(gaps[0], t0 + patience),
            vec![frame(7), frame(8)]
        );
        assert_eq!(seq.position(c), Some((Seq::new(5), Seq::new(8))));
    }

    #[test]
    fn a_failed_fill_is_tried_again_after_the_patience() {
        let (mut seq, c, t0) = fresh();
        let patience = Duration::from_millis(500);
        seq.start_at(c, Seq::new(1));
        assert!(seq.offer(c, Seq::new(3), frame(3), t0).is_empty());
        let t1 = t0 + patience;
        seq.retry_later(c, t1);
        assert!(seq.overdue(t1, patience).is_empty());
        assert_eq!(seq.next_deadline(patience), Some(t1 + patience));
        assert_eq!(seq.position(c), Some((Seq::new(1), Seq::new(1))));
    }

    #[test]
    fn a_lost_last_message_is_noticed_from_the_conversations_newest_seq() {
        let (mut seq, c, t0) = fresh();
        let patience = Duration::from_millis(500);
        seq.start_at(c, Seq::new(2));
        assert_eq!(seq.offer(c, Seq::new(3), frame(3), t0), vec![frame(3)]);
        seq.heard_of(c, Seq::new(3), t0);
        assert!(seq.next_deadline(patience).is_none(), "nothing is missing");
        seq.heard_of(c, Seq::new(5), t0);
        let gaps = seq.overdue(t0 + patience, patience);
        assert_eq!(
            gaps,
            vec![Gap {
                conversation_id: c,
                after: Seq::new(3),
                before: Seq::new(6),
                until: Seq::new(5),
            }]
        );
        assert_eq!(seq.offer(c, Seq::new(4), frame(4), t0), vec![frame(4)]);
        assert_eq!(seq.offer(c, Seq::new(5), frame(5), t0), vec![frame(5)]);
        assert!(seq.next_deadline(patience).is_none(), "filled");
    }

    #[test]
    fn a_conversation_first_seen_live_starts_at_that_message() {
        let (mut seq, c, now) = fresh();
        assert_eq!(seq.offer(c, Seq::new(41), frame(41), now), vec![frame(41)]);
        assert_eq!(seq.position(c), Some((Seq::new(40), Seq::new(41))));
    }

    #[test]
    fn extending_back_widens_the_sent_range() {
        let (mut seq, c) = (Sequencer::default(), ConversationId::generate());
        seq.start_at(c, Seq::new(10));
        seq.extend_back(c, Seq::new(4));
        assert_eq!(seq.position(c), Some((Seq::new(4), Seq::new(10))));
    }
}
