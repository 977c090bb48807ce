use std::collections::HashMap;

use async_trait::async_trait;
use confab_domain::{Conversation, ConversationId, DirectPair, Member, Seq, UserId};

use super::StoreResult;

/// Conversations, their members and the members' cursors.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ConversationRepository: Send + Sync {
    /// The direct conversation of `pair`, creating it (with both as members) from
    /// `conversation` if there is none. Returns it and whether it was created. Safe under
    /// concurrent calls: a pair never gets two conversations.
    async fn open_direct(
        &self,
        pair: DirectPair,
        conversation: Conversation,
    ) -> StoreResult<(Conversation, bool)>;
    /// Stores a new conversation with its first members, atomically.
    async fn create(&self, conversation: Conversation, members: Vec<Member>) -> StoreResult<()>;
    /// The conversation with this id.
    async fn find(&self, id: ConversationId) -> StoreResult<Option<Conversation>>;
    /// The conversations `user` is a member of, most recent activity first.
    async fn list_for_user(&self, user: UserId) -> StoreResult<Vec<Conversation>>;
    /// `user`'s membership in `conversation`, if they are a member.
    async fn member(
        &self,
        conversation: ConversationId,
        user: UserId,
    ) -> StoreResult<Option<Member>>;
    /// Every member of each of these conversations.
    async fn members(&self, conversations: &[ConversationId]) -> StoreResult<Vec<Member>>;
    /// The ids of every member of `conversation`.
    async fn member_ids(&self, conversation: ConversationId) -> StoreResult<Vec<UserId>>;
    /// Raises `user`'s read cursor to `seq` (never lowers it); returns the cursor now.
    async fn raise_read_seq(
        &self,
        conversation: ConversationId,
        user: UserId,
        seq: Seq,
    ) -> StoreResult<Seq>;
    /// Raises `user`'s delivery cursor to `seq` (never lowers it); returns the cursor now.
    async fn raise_delivered_seq(
        &self,
        conversation: ConversationId,
        user: UserId,
        seq: Seq,
    ) -> StoreResult<Seq>;
    /// Everyone who shares at least one conversation with `user`, without `user`.
    async fn contacts(&self, user: UserId) -> StoreResult<Vec<UserId>>;
    /// `user`'s unread count in each of these conversations: messages from others above their
    /// read cursor that are not deleted. Conversations with none may be left out.
    async fn unread_counts(
        &self,
        user: UserId,
        conversations: &[ConversationId],
    ) -> StoreResult<HashMap<ConversationId, u64>>;
}
