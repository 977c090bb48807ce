//! [`MessageRepository`] on sea-orm.

use async_trait::async_trait;
use confab_app::ports::{MessageRepository, NewMessage, Posted, StoreError, StoreResult};
use confab_app::{MessagePage, PageQuery};
use confab_domain::{
    ClientMsgId, ConversationId, Message, MessageBody, MessageId, Seq, Timestamp, UserId,
};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    IdenStatic, JoinType, QueryFilter, QueryOrder, QuerySelect, QueryTrait, RelationTrait,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::convert;
use crate::entities::{conversation_members, conversations, messages};
use crate::error::{roll_back, store_error};
use crate::group_commit::{Batch, GroupCommit, Writer, unreachable};
use crate::posting;

/// Messages, in the `messages` table.
#[derive(Debug, Clone)]
pub struct SqlMessageRepository {
    db: DatabaseConnection,
    /// The writer that stores concurrent posts together (absent outside a Tokio runtime).
    group_commit: Option<GroupCommit>,
}

impl SqlMessageRepository {
    /// Applies `changes` to a message that is not deleted (a concurrent delete wins over an
    /// edit, and a second delete changes nothing), then reads it back as it now is.
    async fn change_live<const N: usize>(
        db: &impl ConnectionTrait,
        id: MessageId,
        changes: [(messages::Column, sea_orm::sea_query::SimpleExpr); N],
    ) -> Result<messages::Model, DbErr> {
        let mut update = messages::Entity::update_many()
            .filter(messages::Column::Id.eq(id.as_uuid()))
            .filter(messages::Column::DeletedAt.is_null());
        for (column, value) in changes {
            update = update.col_expr(column, value);
        }
        update.exec(db).await?;
        messages::Entity::find_by_id(id.as_uuid())
            .one(db)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(format!("message {id}")))
    }

    /// The repository over `db`. Called within a Tokio runtime, it starts the writer that
    /// stores concurrent posts together, with one commit (see `group_commit.rs`); outside
    /// one, each post is its own transaction.
    pub fn new(db: DatabaseConnection) -> Self {
        let group_commit = tokio::runtime::Handle::try_current()
            .is_ok()
            .then(|| GroupCommit::start(db.clone()));
        Self { db, group_commit }
    }
}

/// Appends a message whose sender may post (SQLite); returns its seq.
async fn append_in(txn: &DatabaseTransaction, message: &NewMessage) -> Result<i64, DbErr> {
    // The next seq is read and taken in one statement, so seqs have neither gaps nor
    // duplicates.
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

/// Posts `messages` on SQLite, in one transaction. It begins IMMEDIATE, taking SQLite's write
/// lock at once, so that reading each sender's membership before writing never has to upgrade
/// a read lock (which fails at once, rather than waiting, when another connection has written
/// meanwhile).
pub(crate) async fn post_in_transaction(db: &DatabaseConnection, messages: &[NewMessage]) -> Batch {
    let immediate = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    let txn = db
        .begin_with_options(immediate)
        .await
        .map_err(store_error)?;
    let mut outcomes = Vec::with_capacity(messages.len());
    for message in messages {
        match post_in(&txn, message).await {
            Ok(outcome) => outcomes.push(Ok(outcome)),
            Err(error) => {
                roll_back(txn, &error).await;
                return Err(error);
            }
        }
    }
    txn.commit().await.map_err(store_error)?;
    Ok(outcomes)
}

/// One message of a SQLite batch: the sender's membership is read and judged by the domain's
/// rule, and only then is the message appended.
async fn post_in(txn: &DatabaseTransaction, message: &NewMessage) -> StoreResult<Posted> {
    let id = message.conversation_id;
    let mut found = posting::load(txn, &[id]).await?.remove(&id);
    let may_post = found.as_ref().is_some_and(|(_, members)| {
        members
            .iter()
            .any(|m| m.user_id == message.sender_id && m.may_post(message.created_at))
    });
    let seq = if may_post {
        Some(append_in(txn, message).await.map_err(store_error)?)
    } else {
        None
    };
    posting::outcome(message.clone(), seq, found.as_mut())
}

/// `message` as stored, if it is: then by a batch whose answer was lost with its connection
/// and which was sent again. The members are read as they stand now, with the sender's cursors
/// at or past the message; in the moments since the lost answer, someone may have joined (and
/// gets the message as new) or left.
async fn posted_before(
    db: &DatabaseConnection,
    message: &NewMessage,
) -> StoreResult<Option<Posted>> {
    let stored = messages::Entity::find_by_id(message.id.as_uuid())
        .one(db)
        .await
        .map_err(store_error)?
        .filter(|row| {
            row.conversation_id == message.conversation_id.as_uuid()
                && row.sender_id == message.sender_id.as_uuid()
        });
    let Some(stored) = stored else {
        return Ok(None);
    };
    let id = message.conversation_id;
    let mut found = posting::load(db, &[id]).await?;
    posting::outcome(message.clone(), Some(stored.seq), found.get_mut(&id)).map(Some)
}

#[async_trait]
impl MessageRepository for SqlMessageRepository {
    async fn post(&self, message: NewMessage) -> StoreResult<Posted> {
        let posted = match &self.group_commit {
            Some(group_commit) => group_commit.post(message.clone()).await,
            None => Writer::new(self.db.clone()).post_alone(&message).await,
        };
        let Err(error) = posted else {
            return posted;
        };
        // This very message may be stored already: the Postgres writer sends a batch again
        // when its connection is lost, and the lost batch may have committed. The resend then
        // fails on a unique index (the message id's, or the `client_msg_id`'s), yet this send
        // created the message and must be answered, and published, as such. A failed read
        // here changes nothing: the post's own error stands. A database out of reach is not
        // asked again, so that a send in an outage does not wait for it twice.
        if !unreachable(&error)
            && let Ok(Some(stored)) = posted_before(&self.db, &message).await
        {
            return Ok(stored);
        }
        // A resend: the only unique rule of the messages table that reaches clients as a
        // conflict is the sender's `client_msg_id`. The failed post stored nothing, and the
        // first message stands.
        if let StoreError::Conflict(_) = &error
            && let Some(client_msg_id) = &message.client_msg_id
            && let Some(first) = self
                .find_by_client_msg_id(message.sender_id, client_msg_id)
                .await?
        {
            return Ok(Posted::Existing(first));
        }
        Err(error)
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
        let row = Self::change_live(
            &self.db,
            id,
            [
                (messages::Column::Body, Expr::value(body.as_str())),
                (messages::Column::EditedAt, Expr::value(at)),
            ],
        )
        .await
        .map_err(store_error)?;
        convert::message(row)
    }

    async fn delete(&self, id: MessageId, at: Timestamp) -> StoreResult<Message> {
        let txn = self.db.begin().await.map_err(store_error)?;
        let deleted = async {
            let row = Self::change_live(
                &txn,
                id,
                [
                    (messages::Column::Body, Expr::value(Option::<String>::None)),
                    (messages::Column::DeletedAt, Expr::value(at)),
                ],
            )
            .await?;
            // In the same transaction, so that no reader sees the deletion without the
            // watermark that tells unread counts to look for it.
            conversations::Entity::update_many()
                .col_expr(conversations::Column::LastDeletedSeq, Expr::value(row.seq))
                .filter(conversations::Column::Id.eq(row.conversation_id))
                .filter(conversations::Column::LastDeletedSeq.lt(row.seq))
                .exec(&txn)
                .await?;
            Ok(row)
        }
        .await;
        match deleted {
            Ok(row) => {
                txn.commit().await.map_err(store_error)?;
                convert::message(row)
            }
            Err(err) => {
                roll_back(txn, &err).await;
                Err(store_error(err))
            }
        }
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
