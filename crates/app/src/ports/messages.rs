use async_trait::async_trait;
use confab_domain::{
    ClientMsgId, Conversation, ConversationId, Member, Message, MessageBody, MessageId,
    MessageKind, Seq, Timestamp, UserId,
};

use super::StoreResult;
use crate::{MessagePage, PageQuery};

/// A validated message to post to a conversation; storage checks that the sender may post
/// there and gives it its seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Its id.
    pub id: MessageId,
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The sender.
    pub sender_id: UserId,
    /// Text, image or system.
    pub kind: MessageKind,
    /// The text.
    pub body: MessageBody,
    /// The sender's idempotency key.
    pub client_msg_id: Option<ClientMsgId>,
    /// When it is sent; a mute is judged at this time.
    pub created_at: Timestamp,
}

/// The outcome of a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    /// Stored with the next seq.
    Created {
        /// The stored message.
        message: Message,
        /// Its conversation, read with the post (its `last_seq` and `updated_at` may be
        /// older than the message).
        conversation: Conversation,
        /// Every member, as they stand once the message is stored: the sender's cursors are at
        /// the message, and so are those of the senders of earlier messages stored with it;
        /// everyone else's are as they were read.
        members: Vec<Member>,
    },
    /// The sender already sent a message with this `client_msg_id`: here it is, unchanged.
    Existing(Message),
    /// The sender is not a member of the conversation, or there is no such conversation.
    /// Nothing was stored.
    NotMember,
    /// The sender is a member but muted at `created_at` (see `Member::may_post`). Nothing was
    /// stored.
    Muted,
}

/// Messages.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait MessageRepository: Send + Sync {
    /// In ONE transaction: checks that the sender is a member who may post
    /// (`Member::may_post` at `created_at`), takes the conversation's next seq (and moves its
    /// `updated_at`), stores the message with it, and raises the sender's cursors to it; and
    /// reads the conversation with its members for delivery. A repeat of the sender's
    /// `client_msg_id` stores nothing and returns the first message, if the sender may still
    /// post; otherwise it is refused like any other message.
    ///
    /// The check and the write are one step so that a message costs one trip to the store:
    /// reading the membership first, then writing, would take two.
    async fn post(&self, message: NewMessage) -> StoreResult<Posted>;
    /// The message `sender` sent with this `client_msg_id`.
    async fn find_by_client_msg_id(
        &self,
        sender: UserId,
        client_msg_id: &ClientMsgId,
    ) -> StoreResult<Option<Message>>;
    /// A page of a conversation's history, ascending by seq.
    async fn page(
        &self,
        conversation: ConversationId,
        query: PageQuery,
    ) -> StoreResult<MessagePage>;
    /// The message with this id.
    async fn find(&self, id: MessageId) -> StoreResult<Option<Message>>;
    /// Replaces a message's body and sets `edited_at`; returns the message now.
    async fn edit(&self, id: MessageId, body: MessageBody, at: Timestamp) -> StoreResult<Message>;
    /// Deletes a message: its body goes, its id and seq stay, `deleted_at` is set. Returns the
    /// message now.
    async fn delete(&self, id: MessageId, at: Timestamp) -> StoreResult<Message>;
    /// The seqs of the deleted messages of `conversation` above `above`, for unread arithmetic.
    async fn deleted_seqs(&self, conversation: ConversationId, above: Seq)
    -> StoreResult<Vec<Seq>>;
    /// The newest message of each of these conversations.
    async fn last_messages(&self, conversations: &[ConversationId]) -> StoreResult<Vec<Message>>;
}
