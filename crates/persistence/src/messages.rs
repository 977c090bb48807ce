//! [`MessageRepository`] on sea-orm.

use async_trait::async_trait;
use confab_app::ports::{Appended, MessageRepository, NewMessage, StoreResult};
use confab_app::{MessagePage, PageQuery};
use confab_domain::{
    ClientMsgId, ConversationId, Message, MessageBody, MessageId, Seq, Timestamp, UserId,
};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, IdenStatic, JoinType, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    RelationTrait, Statement, TransactionTrait,
};

use crate::convert;
use crate::entities::{conversation_members, conversations, messages};
use crate::error::{UniqueIndex, roll_back, store_error};
use crate::group_commit::GroupCommit;

/// Messages, in the `messages` table.
#[derive(Debug, Clone)]
pub struct SqlMessageRepository {
    db: DatabaseConnection,
    /// The writer that stores concurrent appends together (absent outside a Tokio runtime).
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
    /// stores concurrent appends together, with one commit (see `group_commit.rs`); outside
    /// one, each append is its own transaction.
    pub fn new(db: DatabaseConnection) -> Self {
        let group_commit = tokio::runtime::Handle::try_current()
            .is_ok()
            .then(|| GroupCommit::start(db.clone()));
        Self { db, group_commit }
    }
}

/// The body of the append transaction (SQLite); returns the message's seq.
pub(crate) async fn append_in(
    txn: &DatabaseTransaction,
    message: &NewMessage,
) -> Result<i64, DbErr> {
    // The UPDATE comes first: it takes SQLite's write lock at once, so a concurrent writer
    // queues on the busy timeout instead of failing to upgrade a read lock. The next seq is
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

/// Postgres takes the whole append as one statement: the seq is taken, the message stored and
/// the sender's cursors raised by data-modifying CTEs, so a message costs one round trip and
/// one commit, like a bare insert. A single statement is atomic on its own: if the insert
/// fails (a resent `client_msg_id`), the seq it took is given back with it.
const APPEND_POSTGRES: &str = r#"
WITH bump AS (
    UPDATE conversations SET last_seq = last_seq + 1, updated_at = $5
    WHERE id = $2
    RETURNING last_seq
), stored AS (
    INSERT INTO messages (id, conversation_id, seq, sender_id, kind, body, client_msg_id, created_at)
    SELECT $1, $2, last_seq, $3, $4, $6, $7, $5 FROM bump
    RETURNING seq
), cursors AS (
    UPDATE conversation_members SET read_seq = stored.seq, delivered_seq = stored.seq
    FROM stored
    WHERE conversation_id = $2 AND user_id = $3 AND read_seq < stored.seq
)
SELECT seq FROM stored"#;

/// One message on its own, in one commit: a single statement on Postgres, a transaction
/// elsewhere.
pub(crate) async fn append_alone(
    db: &DatabaseConnection,
    message: &NewMessage,
) -> Result<i64, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => append_postgres(db, message).await,
        _ => append_in_transaction(db, message).await,
    }
}

async fn append_postgres(db: &DatabaseConnection, message: &NewMessage) -> Result<i64, DbErr> {
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        APPEND_POSTGRES,
        [
            message.id.as_uuid().into(),
            message.conversation_id.as_uuid().into(),
            message.sender_id.as_uuid().into(),
            message.kind.as_str().into(),
            message.created_at.into(),
            message.body.as_str().into(),
            message
                .client_msg_id
                .as_ref()
                .map(|id| id.as_str().to_owned())
                .into(),
        ],
    );
    let row = db.query_one_raw(statement).await?.ok_or_else(|| {
        DbErr::RecordNotFound(format!("conversation {}", message.conversation_id))
    })?;
    row.try_get("", "seq")
}

/// Elsewhere (SQLite), the same three steps in a transaction.
async fn append_in_transaction(
    db: &DatabaseConnection,
    message: &NewMessage,
) -> Result<i64, DbErr> {
    let txn = db.begin().await?;
    match append_in(&txn, message).await {
        Ok(seq) => {
            txn.commit().await?;
            Ok(seq)
        }
        Err(err) => {
            roll_back(txn, &err).await;
            Err(err)
        }
    }
}

#[async_trait]
impl MessageRepository for SqlMessageRepository {
    async fn append(&self, message: NewMessage) -> StoreResult<Appended> {
        let appended = match &self.group_commit {
            Some(group_commit) => group_commit.append(message.clone()).await,
            None => append_alone(&self.db, &message).await,
        };
        let err = match appended {
            Ok(seq) => {
                let seq = convert::seq_from_db("conversations.last_seq", seq)?;
                return Ok(Appended::Created(convert::appended_message(message, seq)));
            }
            Err(err) => err,
        };
        // A resend: the failed append gave back the seq it took, and the first message stands.
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
