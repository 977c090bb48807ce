use async_trait::async_trait;
use confab_domain::{
    ClientMsgId, ConversationId, Message, MessageBody, MessageId, MessageKind, Seq, Timestamp,
    UserId,
};

use super::StoreResult;
use crate::{MessagePage, PageQuery};

/// A validated message to append to a conversation; storage gives it its seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Its id.
    pub id: MessageId,
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The sender, already checked to be a member allowed to post.
    pub sender_id: UserId,
    /// Text, image or system.
    pub kind: MessageKind,
    /// The text.
    pub body: MessageBody,
    /// The sender's idempotency key.
    pub client_msg_id: Option<ClientMsgId>,
    /// When it is sent.
    pub created_at: Timestamp,
}

/// The outcome of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored with the next seq.
    Created(Message),
    /// The sender already sent a message with this `client_msg_id`: here it is, unchanged.
    Existing(Message),
}

/// Messages.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait MessageRepository: Send + Sync {
    /// In ONE transaction: takes the conversation's next seq (and moves its `updated_at`),
    /// stores the message with it, and raises the sender's read cursor to it. A repeat of the
    /// sender's `client_msg_id` stores nothing and returns the first message.
    async fn append(&self, message: NewMessage) -> StoreResult<Appended>;
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
