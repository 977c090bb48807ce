//! Which messages one socket has received: a bitset of seqs per conversation. Seqs are small,
//! dense integers (1, 2, 3 … per conversation), so one bit each is all it takes.

use uuid::Uuid;

/// The highest seq tracked; far beyond any run, it only keeps a bad seq from exhausting
/// memory (2^32 seqs are 512 MiB of bits).
const MAX_SEQ: u64 = 1 << 32;

/// The seqs received, per conversation. A socket hears from one conversation or a few, so
/// they are looked up in a short list.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    conversations: Vec<(Uuid, Vec<u64>)>,
}

impl Seen {
    /// Records `seq` in `conversation`: `Some(true)` the first time, `Some(false)` for a
    /// duplicate, `None` for a seq too large to track.
    pub(crate) fn insert(&mut self, conversation: Uuid, seq: u64) -> Option<bool> {
        if seq > MAX_SEQ {
            return None;
        }
        let index = match self
            .conversations
            .iter()
            .position(|(id, _)| *id == conversation)
        {
            Some(index) => index,
            None => {
                self.conversations.push((conversation, Vec::new()));
                self.conversations.len() - 1
            }
        };
        let bits = &mut self.conversations.get_mut(index)?.1;
        let word = usize::try_from(seq / 64).ok()?;
        if word >= bits.len() {
            // `resize` grows the capacity geometrically: amortised O(1) as seqs climb.
            bits.resize(word + 1, 0);
        }
        let word = bits.get_mut(word)?;
        let mask = 1u64 << (seq % 64);
        let first = *word & mask == 0;
        *word |= mask;
        Some(first)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_seq_once_per_conversation() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut seen = Seen::default();
        for seq in [1, 2, 63, 64, 65, 1000] {
            assert_eq!(seen.insert(a, seq), Some(true), "{seq}");
        }
        for seq in [1, 63, 64, 1000] {
            assert_eq!(seen.insert(a, seq), Some(false), "{seq}");
        }
        assert_eq!(seen.insert(b, 1), Some(true));
        assert_eq!(seen.insert(b, 1), Some(false));
        assert_eq!(seen.insert(a, 3), Some(true));
        assert_eq!(seen.insert(a, MAX_SEQ + 1), None);
    }
}
