//! [`MessageRepository`] on sea-orm.

use async_trait::async_trait;
use confab_app::ports::{Appended, MessageRepository, NewMessage, StoreResult};
use confab_app::{MessagePage, PageQuery};
use confab_domain::{
    ClientMsgId, ConversationId, Message, MessageBody, MessageId, Seq, Timestamp, UserId,
};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    IdenStatic, JoinType, QueryFilter, QueryOrder, QuerySelect, QueryTrait, RelationTrait,
    TransactionTrait,
};

use crate::convert;
use crate::entities::{conversation_members, conversations, messages};
use crate::error::{UniqueIndex, roll_back, store_error};

/// Messages, in the `messages` table.
#[derive(Debug, Clone)]
pub struct SqlMessageRepository {
    db: DatabaseConnection,
}

impl SqlMessageRepository {
    /// Applies `changes` to a message that is not deleted (a concurrent delete wins over an
    /// edit, and a second delete changes nothing), then reads it back as it now is.
    async fn change_live<const N: usize>(
        &self,
        id: MessageId,
        changes: [(messages::Column, sea_orm::sea_query::SimpleExpr); N],
    ) -> StoreResult<Message> {
        let mut update = messages::Entity::update_many()
            .filter(messages::Column::Id.eq(id.as_uuid()))
            .filter(messages::Column::DeletedAt.is_null());
        for (column, value) in changes {
            update = update.col_expr(column, value);
        }
        update.exec(&self.db).await.map_err(store_error)?;
        self.find(id)
            .await?
            .ok_or_else(|| crate::error::missing(format!("message {id}")))
    }

    /// The repository over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

/// The body of [`MessageRepository::append`]'s transaction; returns the message's seq.
async fn append_in(txn: &DatabaseTransaction, message: &NewMessage) -> Result<i64, DbErr> {
    // The UPDATE comes first: on SQLite it takes the write lock at once, so concurrent
    // senders queue on the busy timeout instead of failing to upgrade a read lock; on
    // Postgres its row lock orders senders to one conversation. Either way the next seq is
    // read and taken in one statement, so seqs have neither gaps nor duplicates.
    let mut bump = conversations::Entity::update_many()
        .col_expr(
            conversations::Column::LastSeq,
            Expr::col(conversations::Column::LastSeq).add(1),
        )
        .col_expr(
            conversations::Column::UpdatedAt,
            Expr::value(message.created_at),
        )
        .filter(conversations::Column::Id.eq(message.conversation_id.as_uuid()))
        .into_query();
    // Built by hand rather than with `exec_with_returning`, which sea-orm refuses on SQLite
    // unless the `sqlite-use-returning-for-3_35` feature is on.
    bump.returning_col(conversations::Column::LastSeq);
    let row = txn.query_one(&bump).await?.ok_or_else(|| {
        DbErr::RecordNotFound(format!("conversation {}", message.conversation_id))
    })?;
    let seq: i64 = row.try_get("", conversations::Column::LastSeq.as_str())?;

    messages::Entity::insert(convert::new_message_row(message, seq))
        .exec_without_returning(txn)
        .await?;

    conversation_members::Entity::update_many()
        .col_expr(conversation_members::Column::ReadSeq, Expr::value(seq))
        // Sending is receiving: the delivery cursor is never below the read cursor. No
        // member's cursor is above the newest seq, which this message now is.
        .col_expr(conversation_members::Column::DeliveredSeq, Expr::value(seq))
        .filter(conversation_members::Column::ConversationId.eq(message.conversation_id.as_uuid()))
        .filter(conversation_members::Column::UserId.eq(message.sender_id.as_uuid()))
        .filter(conversation_members::Column::ReadSeq.lt(seq))
        .exec(txn)
        .await?;
    Ok(seq)
}

#[async_trait]
impl MessageRepository for SqlMessageRepository {
    async fn append(&self, message: NewMessage) -> StoreResult<Appended> {
        let txn = self.db.begin().await.map_err(store_error)?;
        let err = match append_in(&txn, &message).await {
            Ok(seq) => {
                txn.commit().await.map_err(store_error)?;
                let seq = convert::seq_from_db("conversations.last_seq", seq)?;
                return Ok(Appended::Created(convert::appended_message(message, seq)));
            }
            Err(err) => err,
        };
        roll_back(txn, &err).await;
        // A resend: the rollback undid the seq we took, and the first message stands.
        if UniqueIndex::violated_by(&err) == Some(UniqueIndex::ClientMsgId)
            && let Some(client_msg_id) = &message.client_msg_id
            && let Some(first) = self
                .find_by_client_msg_id(message.sender_id, client_msg_id)
                .await?
        {
            return Ok(Appended::Existing(first));
        }
        Err(store_error(err))
    }

    async fn find_by_client_msg_id(
        &self,
        sender: UserId,
        client_msg_id: &ClientMsgId,
    ) -> StoreResult<Option<Message>> {
        let row = messages::Entity::find()
            .filter(messages::Column::SenderId.eq(sender.as_uuid()))
            .filter(messages::Column::ClientMsgId.eq(client_msg_id.as_str()))
            .one(&self.db)
            .await
            .map_err(store_error)?;
        row.map(convert::message).transpose()
    }

    async fn page(
        &self,
        conversation: ConversationId,
        query: PageQuery,
    ) -> StoreResult<MessagePage> {
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        // One row more than asked tells whether there is more beyond the page.
        let fetch = u64::from(query.limit) + 1;
        let mut select = messages::Entity::find()
            .filter(messages::Column::ConversationId.eq(conversation.as_uuid()));
        if let Some(before) = query.before {
            select = select.filter(messages::Column::Seq.lt(convert::seq_bound(before)));
        }
        let reading_forward = query.after.is_some();
        select = match query.after {
            Some(after) => select
                .filter(messages::Column::Seq.gt(convert::seq_bound(after)))
                .order_by_asc(messages::Column::Seq),
            // Without `after`, the page is the newest messages (below `before`): take them
            // newest first, then turn them around.
            None => select.order_by_desc(messages::Column::Seq),
        };
        let mut rows = select
            .limit(fetch)
            .all(&self.db)
            .await
            .map_err(store_error)?;
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        if !reading_forward {
            rows.reverse();
        }
        Ok(MessagePage {
            messages: convert::all(rows, convert::message)?,
            has_more,
        })
    }

    async fn find(&self, id: MessageId) -> StoreResult<Option<Message>> {
        let row = messages::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(store_error)?;
        row.map(convert::message).transpose()
    }

    async fn edit(&self, id: MessageId, body: MessageBody, at: Timestamp) -> StoreResult<Message> {
        self.change_live(
            id,
            [
                (messages::Column::Body, Expr::value(body.as_str())),
                (messages::Column::EditedAt, Expr::value(at)),
            ],
        )
        .await
    }

    async fn delete(&self, id: MessageId, at: Timestamp) -> StoreResult<Message> {
        self.change_live(
            id,
            [
                (messages::Column::Body, Expr::value(Option::<String>::None)),
                (messages::Column::DeletedAt, Expr::value(at)),
            ],
        )
        .await
    }

    async fn deleted_seqs(
        &self,
        conversation: ConversationId,
        above: Seq,
    ) -> StoreResult<Vec<Seq>> {
        let seqs: Vec<i64> = messages::Entity::find()
            .select_only()
            .column(messages::Column::Seq)
            .filter(messages::Column::ConversationId.eq(conversation.as_uuid()))
            .filter(messages::Column::Seq.gt(convert::seq_bound(above)))
            .filter(messages::Column::DeletedAt.is_not_null())
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(store_error)?;
        seqs.into_iter()
            .map(|seq| convert::seq_from_db("messages.seq", seq))
            .collect()
    }

    async fn last_messages(&self, conversations: &[ConversationId]) -> StoreResult<Vec<Message>> {
        if conversations.is_empty() {
            return Ok(Vec::new());
        }
        let rows = messages::Entity::find()
            .join(JoinType::InnerJoin, messages::Relation::Conversation.def())
            .filter(
                messages::Column::ConversationId
                    .is_in(conversations.iter().map(ConversationId::as_uuid)),
            )
            .filter(
                Expr::col((messages::Entity, messages::Column::Seq))
                    .equals((conversations::Entity, conversations::Column::LastSeq)),
            )
            .all(&self.db)
            .await
            .map_err(store_error)?;
        convert::all(rows, convert::message)
    }
}
