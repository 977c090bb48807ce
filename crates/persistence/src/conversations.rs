//! [`ConversationRepository`] on sea-orm.

use std::collections::HashMap;

use async_trait::async_trait;
use confab_app::ports::{ConversationRepository, StoreResult};
use confab_domain::{Conversation, ConversationId, DirectPair, Member, Role, Seq, UserId};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, JoinType, QueryFilter, QueryOrder,
    QuerySelect, RelationDef, RelationTrait, TransactionTrait,
};
use uuid::Uuid;

use sea_orm::{IdenStatic, QueryTrait};

use crate::convert;
use crate::entities::{conversation_members, conversations, messages};
use crate::error::{UniqueIndex, missing, roll_back, store_error};

/// Conversations and their members, in the `conversations` and `conversation_members` tables.
#[derive(Debug, Clone)]
pub struct SqlConversationRepository {
    db: DatabaseConnection,
}

impl SqlConversationRepository {
    /// Raises one of a member's cursors to `seq`, never lowering it, and reads it back.
    async fn raise_cursor(
        &self,
        conversation: ConversationId,
        user: UserId,
        cursor: conversation_members::Column,
        seq: Seq,
    ) -> StoreResult<Seq> {
        let seq = convert::seq_to_db(seq)?;
        // The `cursor < seq` guard makes the raise atomic: a concurrent, higher raise from
        // another device is never overwritten by a lower one.
        conversation_members::Entity::update_many()
            .col_expr(cursor, Expr::value(seq))
            .filter(conversation_members::Column::ConversationId.eq(conversation.as_uuid()))
            .filter(conversation_members::Column::UserId.eq(user.as_uuid()))
            .filter(cursor.lt(seq))
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        let current: Option<i64> =
            conversation_members::Entity::find_by_id((conversation.as_uuid(), user.as_uuid()))
                .select_only()
                .column(cursor)
                .into_tuple()
                .one(&self.db)
                .await
                .map_err(store_error)?;
        let current = current.ok_or_else(|| {
            missing(format!(
                "membership of user {user} in conversation {conversation}"
            ))
        })?;
        convert::seq_from_db(cursor.as_str(), current)
    }

    /// The repository over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    async fn find_direct(&self, key: &str) -> StoreResult<Option<Conversation>> {
        let row = conversations::Entity::find()
            .filter(conversations::Column::DirectKey.eq(key))
            .one(&self.db)
            .await
            .map_err(store_error)?;
        row.map(convert::conversation).transpose()
    }

    /// Inserts `conversation` and `members` in one transaction, so that nobody ever sees a
    /// conversation without its members. A failed statement comes back as the raw `DbErr`
    /// (inside `Ok`) so that the caller can tell which unique index it hit.
    async fn insert_with_members(
        &self,
        conversation: &Conversation,
        direct_key: Option<String>,
        members: &[Member],
    ) -> StoreResult<Result<(), DbErr>> {
        let conversation_row = convert::conversation_row(conversation, direct_key)?;
        let member_rows = members
            .iter()
            .map(convert::member_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let txn = self.db.begin().await.map_err(store_error)?;
        let inserted = async {
            conversations::Entity::insert(conversation_row)
                .exec_without_returning(&txn)
                .await?;
            if !member_rows.is_empty() {
                conversation_members::Entity::insert_many(member_rows)
                    .exec_without_returning(&txn)
                    .await?;
            }
            Ok(())
        }
        .await;
        match inserted {
            Ok(()) => Ok(txn.commit().await),
            Err(err) => {
                roll_back(txn, &err).await;
                Ok(Err(err))
            }
        }
    }
}

/// Joins `messages` to the reading user's membership of the message's conversation.
fn membership_of(user: Uuid) -> RelationDef {
    messages::Entity::belongs_to(conversation_members::Entity)
        .from(messages::Column::ConversationId)
        .to(conversation_members::Column::ConversationId)
        .on_condition(move |_messages, members| {
            Expr::col((members, conversation_members::Column::UserId))
                .eq(user)
                .into()
        })
        .into()
}

#[async_trait]
impl ConversationRepository for SqlConversationRepository {
    async fn open_direct(
        &self,
        pair: DirectPair,
        conversation: Conversation,
    ) -> StoreResult<(Conversation, bool)> {
        let key = pair.key();
        if let Some(existing) = self.find_direct(&key).await? {
            return Ok((existing, false));
        }
        let members = pair.users().map(|user_id| Member {
            conversation_id: conversation.id,
            user_id,
            role: Role::Member,
            joined_at: conversation.created_at,
            read_seq: Seq::ZERO,
            delivered_seq: Seq::ZERO,
            muted_until: None,
        });
        match self
            .insert_with_members(&conversation, Some(key.clone()), &members)
            .await?
        {
            Ok(()) => Ok((conversation, true)),
            // Someone opened the same pair between our lookup and our insert: theirs stands.
            Err(err) if UniqueIndex::violated_by(&err) == Some(UniqueIndex::DirectKey) => {
                let existing = self.find_direct(&key).await?;
                existing
                    .map(|existing| (existing, false))
                    .ok_or_else(|| store_error(err))
            }
            Err(err) => Err(store_error(err)),
        }
    }

    async fn create(&self, conversation: Conversation, members: Vec<Member>) -> StoreResult<()> {
        self.insert_with_members(&conversation, None, &members)
            .await?
            .map_err(store_error)
    }

    async fn find(&self, id: ConversationId) -> StoreResult<Option<Conversation>> {
        let row = conversations::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(store_error)?;
        row.map(convert::conversation).transpose()
    }

    async fn list_for_user(&self, user: UserId) -> StoreResult<Vec<Conversation>> {
        let rows = conversations::Entity::find()
            .join_rev(
                JoinType::InnerJoin,
                conversation_members::Relation::Conversation.def(),
            )
            .filter(conversation_members::Column::UserId.eq(user.as_uuid()))
            // The id breaks ties so that the order is stable between calls.
            .order_by_desc(conversations::Column::UpdatedAt)
            .order_by_desc(conversations::Column::Id)
            .all(&self.db)
            .await
            .map_err(store_error)?;
        convert::all(rows, convert::conversation)
    }

    async fn member(
        &self,
        conversation: ConversationId,
        user: UserId,
    ) -> StoreResult<Option<Member>> {
        let row =
            conversation_members::Entity::find_by_id((conversation.as_uuid(), user.as_uuid()))
                .one(&self.db)
                .await
                .map_err(store_error)?;
        row.map(convert::member).transpose()
    }

    async fn members(&self, conversations: &[ConversationId]) -> StoreResult<Vec<Member>> {
        if conversations.is_empty() {
            return Ok(Vec::new());
        }
        let rows = conversation_members::Entity::find()
            .filter(
                conversation_members::Column::ConversationId
                    .is_in(conversations.iter().map(ConversationId::as_uuid)),
            )
            .order_by_asc(conversation_members::Column::ConversationId)
            .order_by_asc(conversation_members::Column::JoinedAt)
            .order_by_asc(conversation_members::Column::UserId)
            .all(&self.db)
            .await
            .map_err(store_error)?;
        convert::all(rows, convert::member)
    }

    async fn member_ids(&self, conversation: ConversationId) -> StoreResult<Vec<UserId>> {
        let ids: Vec<Uuid> = conversation_members::Entity::find()
            .select_only()
            .column(conversation_members::Column::UserId)
            .filter(conversation_members::Column::ConversationId.eq(conversation.as_uuid()))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(store_error)?;
        Ok(ids.into_iter().map(UserId::from_uuid).collect())
    }

    async fn raise_read_seq(
        &self,
        conversation: ConversationId,
        user: UserId,
        seq: Seq,
    ) -> StoreResult<Seq> {
        self.raise_cursor(
            conversation,
            user,
            conversation_members::Column::ReadSeq,
            seq,
        )
        .await
    }

    async fn raise_delivered_seq(
        &self,
        conversation: ConversationId,
        user: UserId,
        seq: Seq,
    ) -> StoreResult<Seq> {
        self.raise_cursor(
            conversation,
            user,
            conversation_members::Column::DeliveredSeq,
            seq,
        )
        .await
    }

    async fn contacts(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        let mine = conversation_members::Entity::find()
            .select_only()
            .column(conversation_members::Column::ConversationId)
            .filter(conversation_members::Column::UserId.eq(user.as_uuid()))
            .into_query();
        let ids: Vec<Uuid> = conversation_members::Entity::find()
            .select_only()
            .column(conversation_members::Column::UserId)
            .distinct()
            .filter(conversation_members::Column::ConversationId.in_subquery(mine))
            .filter(conversation_members::Column::UserId.ne(user.as_uuid()))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(store_error)?;
        Ok(ids.into_iter().map(UserId::from_uuid).collect())
    }

    async fn unread_counts(
        &self,
        user: UserId,
        conversations: &[ConversationId],
    ) -> StoreResult<HashMap<ConversationId, u64>> {
        if conversations.is_empty() {
            return Ok(HashMap::new());
        }
        let user = user.as_uuid();
        let counts: Vec<(Uuid, i64)> = messages::Entity::find()
            .select_only()
            .column(messages::Column::ConversationId)
            .column_as(messages::Column::Id.count(), "unread")
            .join(JoinType::InnerJoin, membership_of(user))
            .filter(
                messages::Column::ConversationId
                    .is_in(conversations.iter().map(ConversationId::as_uuid)),
            )
            .filter(
                Expr::col((messages::Entity, messages::Column::Seq)).gt(Expr::col((
                    conversation_members::Entity,
                    conversation_members::Column::ReadSeq,
                ))),
            )
            .filter(messages::Column::SenderId.ne(user))
            .filter(messages::Column::DeletedAt.is_null())
            .group_by(messages::Column::ConversationId)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(store_error)?;
        counts
            .into_iter()
            .map(|(conversation, count)| {
                let count = u64::try_from(count)
                    .map_err(|err| crate::error::corrupt("unread count", err))?;
                Ok((ConversationId::from_uuid(conversation), count))
            })
            .collect()
    }
}
