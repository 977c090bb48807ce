//! Per-socket ordering: each conversation's messages leave a socket in seq order, each once.
//!
//! Live events can arrive out of order (two senders commit 7 and 8; 8 is published first) or
//! not at all (a bus dropped one). The sequencer holds an early message until the ones before
//! it have gone out, and reports a gap that stays open too long so the socket can fill it from
//! storage. It also remembers which range of each conversation this socket has sent, so that
//! the backlog and `sync` never send a message twice.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytestring::ByteString;
use confab_domain::{ConversationId, Seq};
use tokio::time::Instant;

/// One conversation as seen by one socket.
#[derive(Debug)]
struct Track {
    /// Everything in `(origin, next]` has gone out on this socket (or was deliberately
    /// passed over, like the sender's own message answered by an `ack`).
    origin: Seq,
    next: Seq,
    /// Early arrivals, waiting for the seqs before them.
    early: BTreeMap<Seq, ByteString>,
    /// The newest seq the socket has heard of (from `conversation.updated`), though the
    /// message itself has not arrived: a lost last message shows as `next < known`.
    known: Seq,
    /// Since when the oldest early arrival has waited.
    waiting_since: Option<Instant>,
}

/// A hole in one conversation: the seqs strictly between `after` and `before` have not
/// arrived, though `before` has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gap {
    pub(crate) conversation_id: ConversationId,
    pub(crate) after: Seq,
    pub(crate) before: Seq,
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
        frame: ByteString,
        now: Instant,
    ) -> Vec<ByteString> {
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
                Some(Gap {
                    conversation_id: *id,
                    after: t.next,
                    before,
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

    /// Gives up on the rest of a gap (storage had nothing more to fill it with): releases
    /// what waits behind it.
    pub(crate) fn skip_gap(
        &mut self,
        conversation: ConversationId,
        now: Instant,
    ) -> Vec<ByteString> {
        let Some(track) = self.tracks.get_mut(&conversation) else {
            return Vec::new();
        };
        match track.early.keys().next().copied() {
            Some(first) => track.next = Seq::new(first.value().saturating_sub(1)),
            // A tail gap storage could not fill: stop waiting for it.
            None => track.known = track.next,
        }
        Self::release(track, now)
    }

    fn release(track: &mut Track, now: Instant) -> Vec<ByteString> {
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

    fn frame(seq: u64) -> ByteString {
        ByteString::from(format!("m{seq}"))
    }

    #[test]
    fn in_order_messages_go_straight_out_and_repeats_are_dropped() {
        let (mut seq, c, now) = (
            Sequencer::default(),
            ConversationId::generate(),
            Instant::now(),
        );
        seq.start_at(c, Seq::new(3));
        assert_eq!(seq.offer(c, Seq::new(4), frame(4), now), vec![frame(4)]);
        assert!(seq.offer(c, Seq::new(4), frame(4), now).is_empty());
        assert!(seq.offer(c, Seq::new(2), frame(2), now).is_empty());
        assert_eq!(seq.position(c), Some((Seq::new(3), Seq::new(4))));
    }

    #[test]
    fn an_early_message_waits_for_the_ones_before_it() {
        let (mut seq, c, now) = (
            Sequencer::default(),
            ConversationId::generate(),
            Instant::now(),
        );
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
        let (mut seq, c, t0) = (
            Sequencer::default(),
            ConversationId::generate(),
            Instant::now(),
        );
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
                before: Seq::new(8)
            }]
        );
        // Storage fills 6, which goes out at once; 7 it cannot find: give up on it.
        assert_eq!(
            seq.offer(c, Seq::new(6), frame(6), t0 + patience),
            vec![frame(6)]
        );
        assert_eq!(seq.skip_gap(c, t0 + patience), vec![frame(8)]);
    }

    #[test]
    fn a_lost_last_message_is_noticed_from_the_conversations_newest_seq() {
        let (mut seq, c, t0) = (
            Sequencer::default(),
            ConversationId::generate(),
            Instant::now(),
        );
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
                before: Seq::new(6)
            }]
        );
        assert_eq!(seq.offer(c, Seq::new(4), frame(4), t0), vec![frame(4)]);
        assert_eq!(seq.offer(c, Seq::new(5), frame(5), t0), vec![frame(5)]);
        assert!(seq.next_deadline(patience).is_none(), "filled");
    }

    #[test]
    fn a_conversation_first_seen_live_starts_at_that_message() {
        let (mut seq, c, now) = (
            Sequencer::default(),
            ConversationId::generate(),
            Instant::now(),
        );
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
