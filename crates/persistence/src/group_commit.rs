//! Group commit of appends: messages sent at the same moment, to any conversations, are stored
//! together, with one commit.
//!
//! Each message takes its conversation's next seq, so two senders in one conversation queue
//! on that conversation's row until the first commits. Alone, every message would hold the
//! row for a whole commit (a WAL flush); here the messages that arrive while a batch is being
//! written go out together in the next, and a busy conversation takes many seqs per commit.
//! Seqs stay gap-free and in arrival order within each conversation.
//!
//! One writer stores the batches, one at a time: on Postgres as one statement, on SQLite as one
//! transaction (SQLite has one writer at a time anyway, and senders no longer contend for its
//! lock and sleep in its busy handler). Batches lock conversation rows in id order, so that
//! two instances' writers never deadlock each other.
//!
//! Several writers per instance were tried and measured: their batches queue on each other's
//! conversation rows, and a batch that waits on a row lock costs Postgres far more than one that
//! does not (pgbench replaying three writers' batches of 5 over shared conversations: 1.3 ms of
//! CPU per batch, against 0.8 ms when each conversation has one writer). One writer gathers
//! what arrives while it writes, so its batches grow with the load instead: in `direct-max`,
//! 10.7 messages a batch against 8.3 with three writers, the same throughput, and 17 % less
//! Postgres CPU.
//!
//! Each message is checked in the same statement: the sender must be a member who is not
//! muted, the SQL copy of `Member::may_post`. A refused message stores nothing and does not
//! hold back the others. The statement also returns the members of the batch's conversations,
//! which the senders need for delivery, so a message costs one trip to the database.
//!
//! On Postgres the writer keeps one connection of its own rather than taking one from the pool
//! for each batch: sqlx pings a pooled connection as it leaves the pool and again as it
//! returns, so a batch took three round trips instead of one. With its own connection the
//! writer stored 15–38 % more messages a second at `direct-max`, with less Postgres CPU per
//! message (BENCHMARKS.md, seventh round). A connection found dead is replaced and the batch
//! sent again, once; one left unused for a few seconds goes back to the pool, which tests it.
//! A lost batch may have committed before its answer could come back: sent again, it then
//! fails on its taken message ids, and the repository answers each message from what was
//! stored.
//!
//! If a batch fails (a resent `client_msg_id`, a deadlock with another instance), each of its
//! messages is retried alone, so one bad message never fails the others.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use confab_app::ports::{NewMessage, Posted, StoreError, StoreResult};
use confab_domain::ConversationId;
use sea_orm::sqlx::{self, Postgres, pool::PoolConnection};
use sea_orm::{DatabaseConnection, DbBackend, DbErr, FromQueryResult, QueryResult, RuntimeErr};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::entities::{conversation_members, conversations};
use crate::error::store_error;
use crate::linger::linger;
use crate::messages::post_in_transaction;
use crate::posting::{self, Posting};

/// The most messages written by one batch.
const BATCH: usize = 256;

/// Posts waiting for the writer. Senders wait for their own answer, so this only bounds
/// memory under a burst; a full queue makes senders wait for room.
const QUEUE: usize = 4096;

/// A message on its way, and where its outcome goes.
type Pending = (NewMessage, oneshot::Sender<StoreResult<Posted>>);

/// The outcome of each message of a batch that was committed, in order; or why nothing of it
/// was, which is the only case in which its messages may be tried again.
pub(crate) type Batch = Result<Vec<StoreResult<Posted>>, StoreError>;

/// Stores a batch: the rows come as one JSON array. Only the messages whose sender is a member
/// who may post at the message's time go on (`allowed`). Conversation rows are locked in id
/// order first, so that two instances' batches never wait on each other in a cycle. Each
/// conversation moves forward by its count of messages; each message takes the seq of its
/// place in the batch; each sender's cursors move to their newest message.
///
/// The result is one row per stored message (`part` = 'stored': its id and seq) and one per
/// member of each conversation named in the batch (`part` = 'member': the member as `A_`
/// columns and its conversation as `B_` columns), as they stood before the statement.
const POST_BATCH: &str = r#"
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(
        ord bigint, id uuid, conversation_id uuid, sender_id uuid, kind text, body text,
        client_msg_id text, created_at timestamptz)
), allowed AS (
    SELECT input.* FROM input
    JOIN conversation_members m
        ON m.conversation_id = input.conversation_id AND m.user_id = input.sender_id
    WHERE m.muted_until IS NULL OR m.muted_until <= input.created_at
), locked AS (
    SELECT c.id FROM conversations c
    WHERE c.id IN (SELECT conversation_id FROM allowed)
    ORDER BY c.id
    FOR UPDATE
), counts AS (
    SELECT conversation_id, count(*) AS n, max(created_at) AS at
    FROM allowed JOIN locked ON locked.id = allowed.conversation_id
    GROUP BY conversation_id
), bump AS (
    UPDATE conversations c
    SET last_seq = c.last_seq + counts.n, updated_at = GREATEST(c.updated_at, counts.at)
    FROM counts WHERE c.id = counts.conversation_id
    RETURNING c.id, c.last_seq AS last, counts.n
), numbered AS (
    SELECT allowed.*,
        bump.last - bump.n + row_number() OVER (PARTITION BY allowed.conversation_id ORDER BY allowed.ord) AS seq
    FROM allowed JOIN bump ON bump.id = allowed.conversation_id
), stored AS (
    INSERT INTO messages (id, conversation_id, seq, sender_id, kind, body, client_msg_id, created_at)
    SELECT id, conversation_id, seq, sender_id, kind, body, client_msg_id, created_at FROM numbered
    RETURNING id, conversation_id, sender_id, seq
), cursors AS (
    UPDATE conversation_members m SET read_seq = s.seq, delivered_seq = GREATEST(m.delivered_seq, s.seq)
    FROM (SELECT conversation_id, sender_id, max(seq) AS seq FROM stored GROUP BY conversation_id, sender_id) s
    WHERE m.conversation_id = s.conversation_id AND m.user_id = s.sender_id AND m.read_seq < s.seq
)
SELECT 'member' AS part, NULL::uuid AS message_id, NULL::bigint AS seq,
    m.conversation_id AS "A_conversation_id", m.user_id AS "A_user_id", m.role AS "A_role",
    m.joined_at AS "A_joined_at", m.read_seq AS "A_read_seq",
    m.delivered_seq AS "A_delivered_seq", m.muted_until AS "A_muted_until",
    c.id AS "B_id", c.kind AS "B_kind", c.name AS "B_name", c.topic AS "B_topic",
    c.direct_key AS "B_direct_key", c.created_at AS "B_created_at",
    c.updated_at AS "B_updated_at", c.last_seq AS "B_last_seq",
    c.last_deleted_seq AS "B_last_deleted_seq"
FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id
WHERE m.conversation_id IN (SELECT conversation_id FROM input)
UNION ALL
SELECT 'stored', id, seq, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM stored
ORDER BY "A_conversation_id", "A_joined_at", "A_user_id""#;

/// The writer's queue. Cloning shares it.
#[derive(Debug, Clone)]
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Pending>,
}

impl GroupCommit {
    /// Starts the writer on `db`, on the current Tokio runtime.
    pub(crate) fn start(db: DatabaseConnection) -> Self {
        let (queue, incoming) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(db, incoming));
        Self { queue }
    }

    /// Posts `message` alongside whatever else is being sent now.
    pub(crate) async fn post(&self, message: NewMessage) -> StoreResult<Posted> {
        let stopped = || StoreError::Backend("the message writer has stopped".into());
        let (answer, posted) = oneshot::channel();
        self.queue
            .send((message, answer))
            .await
            .map_err(|_| stopped())?;
        posted.await.map_err(|_| stopped())?
    }
}

/// The writer: takes whatever has queued up, and what arrives while it lingers, and stores it.
async fn write_batches(db: DatabaseConnection, mut incoming: mpsc::Receiver<Pending>) {
    let mut writer = Writer::new(db);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        if incoming.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        linger(&mut incoming, &mut batch, BATCH).await;
        let (messages, answers): (Vec<NewMessage>, Vec<_>) = batch.drain(..).unzip();
        match writer.post_batch(&messages).await {
            Ok(outcomes) => {
                for (answer, outcome) in answers.into_iter().zip(outcomes) {
                    let _ = answer.send(outcome);
                }
            }
            Err(error) if messages.len() > 1 && !unreachable(&error) => {
                tracing::debug!(%error, size = messages.len(), "batch post failed; posting one by one");
                for (message, answer) in messages.iter().zip(answers) {
                    let _ = answer.send(writer.post_alone(message).await);
                }
            }
            Err(error) if messages.len() > 1 => {
                // Alone, each message would wait for the same unreachable database in turn.
                tracing::warn!(error = ?error, size = messages.len(), "the database could not be reached; the batch failed");
                for answer in answers {
                    let _ = answer.send(Err(StoreError::Backend(
                        "the database could not be reached".into(),
                    )));
                }
            }
            Err(error) => {
                if let Some(answer) = answers.into_iter().next() {
                    let _ = answer.send(Err(error));
                }
            }
        }
    }
}

/// Where batches are written: the database and, on Postgres, a connection of the writer's own.
pub(crate) struct Writer {
    db: DatabaseConnection,
    /// Kept from one batch to the next, so that a batch costs one round trip. A connection
    /// taken from the pool for each batch is pinged as it leaves the pool and again as it
    /// returns: three round trips, and three wake-ups of a Postgres backend, per batch.
    connection: Option<PoolConnection<Postgres>>,
    /// When the connection last answered.
    last_used: Instant,
}

/// How long the writer's connection may sit unused before it goes back to the pool, which
/// tests it before handing it out again. A connection that a firewall or NAT dropped without
/// a word would otherwise hang the next batch until TCP gives up, minutes later; under load
/// the writer never waits this long, and keeps its one round trip per batch.
const IDLE_RECHECK: Duration = Duration::from_secs(5);

impl Writer {
    /// A writer on `db`; it takes its connection when it first needs one.
    pub(crate) fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            connection: None,
            last_used: Instant::now(),
        }
    }

    /// One message on its own, in one commit.
    pub(crate) async fn post_alone(&mut self, message: &NewMessage) -> StoreResult<Posted> {
        self.post_batch(std::slice::from_ref(message))
            .await?
            .pop()
            .unwrap_or_else(|| Err(StoreError::Backend("a post had no outcome".into())))
    }

    /// Posts `messages`, all in one commit: on Postgres one statement, elsewhere one
    /// transaction.
    async fn post_batch(&mut self, messages: &[NewMessage]) -> Batch {
        match self.db.get_database_backend() {
            DbBackend::Postgres => self.post_postgres_batch(messages).await,
            _ => post_in_transaction(&self.db, messages).await,
        }
    }

    async fn post_postgres_batch(&mut self, messages: &[NewMessage]) -> Batch {
        let rows: Vec<serde_json::Value> = messages
            .iter()
            .enumerate()
            .map(|(ord, message)| {
                serde_json::json!({
                    "ord": ord,
                    "id": message.id.as_uuid(),
                    "conversation_id": message.conversation_id.as_uuid(),
                    "sender_id": message.sender_id.as_uuid(),
                    "kind": message.kind.as_str(),
                    "body": message.body.as_str(),
                    "client_msg_id": message.client_msg_id.as_ref().map(|id| id.as_str()),
                    "created_at": message.created_at,
                })
            })
            .collect();
        let rows = self
            .query(&serde_json::Value::Array(rows))
            .await
            .map_err(store_error)?;
        // The statement is committed: from here on, a failure is told to the messages and never
        // makes the batch be tried again.
        let (seqs, mut found) = match read_result(rows) {
            Ok(read) => read,
            Err(error) => {
                let reason = error.to_string();
                return Ok(messages
                    .iter()
                    .map(|_| Err(StoreError::Backend(reason.clone().into())))
                    .collect());
            }
        };
        Ok(messages
            .iter()
            .map(|message| {
                posting::outcome(
                    message.clone(),
                    seqs.get(&message.id.as_uuid()).copied(),
                    found.get_mut(&message.conversation_id),
                )
            })
            .collect())
    }

    /// Runs `POST_BATCH` on the writer's connection. A connection that Postgres or the
    /// network has dropped is replaced, and the batch sent once more on the new one. That
    /// never stores a message twice: if the lost batch had committed, its messages' ids are
    /// taken and the second send fails; the repository then answers each message from what
    /// was stored.
    async fn query(&mut self, batch: &serde_json::Value) -> Result<Vec<QueryResult>, DbErr> {
        if self.last_used.elapsed() > IDLE_RECHECK {
            self.connection = None;
        }
        let mut tries = 0;
        loop {
            tries += 1;
            let connection = match &mut self.connection {
                Some(connection) => connection,
                None => {
                    let pool = self.db.get_postgres_connection_pool();
                    let taken = pool
                        .acquire()
                        .await
                        .map_err(|error| DbErr::Conn(RuntimeErr::SqlxError(error.into())))?;
                    self.connection.insert(taken)
                }
            };
            match sqlx::query(POST_BATCH)
                .bind(batch)
                .fetch_all(&mut **connection)
                .await
            {
                Ok(rows) => {
                    self.last_used = Instant::now();
                    return Ok(rows.into_iter().map(QueryResult::from).collect());
                }
                Err(error) if connection_lost(&error) => {
                    // Back to the pool, which tests it and closes it.
                    self.connection = None;
                    if tries > 1 {
                        return Err(query_error(error));
                    }
                    tracing::info!(%error, "the message writer's connection was lost; taking another");
                }
                Err(error) => return Err(query_error(error)),
            }
        }
    }
}

/// What sea-orm makes of a failed query, so that one error mapping reads both.
fn query_error(error: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(error.into()))
}

/// Whether `error` means the connection is gone, rather than that the statement failed.
fn connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        // Class 08 is "connection exception"; 57P01–57P03 are the server shutting the session.
        sqlx::Error::Database(error) => error
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// Whether `error` says that the database could not be reached at all, rather than that
/// something in the batch failed. Posting the batch's messages one by one, or reading back
/// whether a message was stored, would then only wait for the same timeout again.
pub(crate) fn unreachable(error: &StoreError) -> bool {
    let StoreError::Backend(source) = error else {
        return false;
    };
    match source.downcast_ref::<DbErr>() {
        Some(DbErr::Conn(_) | DbErr::ConnectionAcquire(_)) => true,
        Some(
            DbErr::Query(RuntimeErr::SqlxError(error)) | DbErr::Exec(RuntimeErr::SqlxError(error)),
        ) => connection_lost(error),
        _ => false,
    }
}

/// The seq of each stored message, by id, and each conversation of the batch with its members.
fn read_result(
    rows: Vec<QueryResult>,
) -> StoreResult<(HashMap<Uuid, i64>, HashMap<ConversationId, Posting>)> {
    let mut seqs = HashMap::new();
    let mut found = HashMap::new();
    for row in rows {
        if row.try_get::<String>("", "part").map_err(store_error)? == "stored" {
            let id = row.try_get("", "message_id").map_err(store_error)?;
            seqs.insert(id, row.try_get("", "seq").map_err(store_error)?);
            continue;
        }
        let member =
            conversation_members::Model::from_query_result(&row, "A_").map_err(store_error)?;
        let conversation =
            conversations::Model::from_query_result(&row, "B_").map_err(store_error)?;
        posting::gather(&mut found, member, Some(conversation))?;
    }
    Ok((seqs, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_database_out_of_reach_fails_a_batch_without_posting_its_messages_one_by_one() {
        let io = || sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        let out_of_reach = [
            store_error(DbErr::Conn(RuntimeErr::Internal("refused".into()))),
            store_error(DbErr::Conn(RuntimeErr::SqlxError(io().into()))),
            store_error(DbErr::Query(RuntimeErr::SqlxError(io().into()))),
        ];
        for error in &out_of_reach {
            assert!(unreachable(error), "{error:?}");
        }
        let in_the_batch = [
            store_error(DbErr::Query(RuntimeErr::Internal(
                "deadlock detected".into(),
            ))),
            store_error(DbErr::Query(RuntimeErr::SqlxError(
                sqlx::Error::RowNotFound.into(),
            ))),
            StoreError::Conflict("client_msg_id was already used by this sender".into()),
        ];
        for error in &in_the_batch {
            assert!(!unreachable(error), "{error:?}");
        }
    }
}
