use confab_domain::{Conversation, Member, Message, Role, Seq, User};

/// A conversation as one member sees it: with their unread count, the newest message and the
/// member list.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationView {
    /// The conversation.
    pub conversation: Conversation,
    /// The newest message, if any.
    pub last_message: Option<Message>,
    /// Messages from others above the viewer's read cursor, not deleted.
    pub unread_count: u64,
    /// Every member with their account.
    pub members: Vec<MemberView>,
    /// The viewer's role.
    pub my_role: Role,
}

/// A member with their account.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberView {
    /// The account.
    pub user: User,
    /// The membership and its cursors.
    pub member: Member,
}

/// Where a page of history starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageQuery {
    /// Only messages with a seq below this one.
    pub before: Option<Seq>,
    /// Only messages with a seq above this one; the page then starts right after it.
    pub after: Option<Seq>,
    /// How many messages at most.
    pub limit: u32,
}

impl PageQuery {
    /// The page size when the client gives none.
    pub const DEFAULT_LIMIT: u32 = 50;
    /// The largest page a client may ask for.
    pub const MAX_LIMIT: u32 = 200;
}

/// A page of history, ascending by seq.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagePage {
    /// The messages, oldest first.
    pub messages: Vec<Message>,
    /// Whether more messages lie beyond this page in the direction it was read.
    pub has_more: bool,
}

/// A member's cursors after they reported reading or receiving messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    /// Their read cursor now.
    pub read_seq: Seq,
    /// Their delivery cursor now (never below the read cursor).
    pub delivered_seq: Seq,
    /// Their unread count now.
    pub unread_count: u64,
}

/// What a reconnecting device missed in one conversation: the messages above its user's
/// delivery cursor, newest first up to a bound, in ascending order.
#[derive(Debug, Clone, PartialEq)]
pub struct Backlog {
    /// The conversation.
    pub conversation_id: confab_domain::ConversationId,
    /// Its newest seq when the backlog was read.
    pub last_seq: Seq,
    /// The missed messages, ascending by seq (at most the bound).
    pub messages: Vec<Message>,
    /// When the backlog was larger than the bound: the seqs strictly between these two were
    /// not sent; the client pages them over REST (`after`/`before`).
    pub skipped: Option<(Seq, Seq)>,
}
