use std::fmt;

/// The position of a message in its conversation: 1, 2, 3 … with no gaps.
///
/// `Seq(0)` means "before the first message": a fresh member's read cursor, or the `last_seq`
/// of an empty conversation. Order, gap detection, unread counts and sync all rest on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Seq(u64);

impl Seq {
    /// Before the first message.
    pub const ZERO: Seq = Seq(0);

    /// The seq with this number.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The number.
    pub const fn value(self) -> u64 {
        self.0
    }

    /// The seq that follows this one.
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// Where a read or delivery cursor goes when a client reports `reported`: cursors only move
    /// forward, and never past the last message of the conversation.
    ///
    /// ```
    /// use confab_domain::Seq;
    /// let last = Seq::new(10);
    /// assert_eq!(Seq::new(4).advance_to(Seq::new(7), last), Seq::new(7));
    /// assert_eq!(Seq::new(4).advance_to(Seq::new(2), last), Seq::new(4));
    /// assert_eq!(Seq::new(4).advance_to(Seq::new(99), last), last);
    /// ```
    pub fn advance_to(self, reported: Seq, last: Seq) -> Seq {
        self.max(reported.min(last))
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
