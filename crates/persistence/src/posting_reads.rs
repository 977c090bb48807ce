//! What posting a message reads (the conversation and its members), for every message sent at
//! the same moment, in one query on Postgres.
//!
//! Each send reads its conversation's members before it stores anything. On Postgres each such
//! read is a network round trip, and under load the round trips, not the reads, are what the
//! database spends its time on. So reads asked for while one is under way wait for it and go
//! out together in the next, one query for all their conversations. Nothing is cached: every
//! answer is read after it was asked for.

use std::collections::HashMap;

use confab_app::ports::{StoreError, StoreResult};
use confab_domain::{Conversation, ConversationId, Member};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, JoinType, QueryFilter,
    QueryOrder, QuerySelect, RelationTrait,
};
use tokio::sync::{mpsc, oneshot};

use crate::convert;
use crate::entities::{conversation_members, conversations};
use crate::error::store_error;

/// A conversation with its members, if it exists.
pub(crate) type Posting = (Conversation, Vec<Member>);

type Pending = (
    ConversationId,
    oneshot::Sender<StoreResult<Option<Posting>>>,
);

/// The most reads answered by one query.
const BATCH: usize = 256;
/// Reads waiting for the reader; a full queue makes callers wait for room.
const QUEUE: usize = 4096;

/// The reader's queue. Cloning shares it.
#[derive(Debug, Clone)]
pub(crate) struct PostingReads {
    queue: mpsc::Sender<Pending>,
}

impl PostingReads {
    /// Starts the reader on `db`, on the current Tokio runtime.
    pub(crate) fn start(db: DatabaseConnection) -> Self {
        let (queue, incoming) = mpsc::channel(QUEUE);
        tokio::spawn(read_batches(db, incoming));
        Self { queue }
    }

    /// The conversation `id` with its members, read together with whatever else is being
    /// read now.
    pub(crate) async fn find_with_members(
        &self,
        id: ConversationId,
    ) -> StoreResult<Option<Posting>> {
        let stopped = || StoreError::Backend("the conversation reader has stopped".into());
        let (answer, found) = oneshot::channel();
        self.queue.send((id, answer)).await.map_err(|_| stopped())?;
        found.await.map_err(|_| stopped())?
    }
}

async fn read_batches(db: DatabaseConnection, mut incoming: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(BATCH);
    while incoming.recv_many(&mut batch, BATCH).await > 0 {
        let mut ids: Vec<ConversationId> = batch.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable_by_key(ConversationId::as_uuid);
        ids.dedup();
        match load(&db, &ids).await {
            Ok(mut found) => {
                for (id, answer) in batch.drain(..) {
                    // Two asks for one conversation share its answer.
                    let _ = answer.send(Ok(found.get(&id).cloned()));
                }
                found.clear();
            }
            Err(error) => {
                let reason = error.to_string();
                for (_, answer) in batch.drain(..) {
                    let _ = answer.send(Err(StoreError::Backend(reason.clone().into())));
                }
            }
        }
    }
}

/// Each of these conversations that exists, with its members (oldest first), in one query.
pub(crate) async fn load(
    db: &impl ConnectionTrait,
    ids: &[ConversationId],
) -> StoreResult<HashMap<ConversationId, Posting>> {
    let rows = conversation_members::Entity::find()
        .select_also(conversations::Entity)
        .join(
            JoinType::InnerJoin,
            conversation_members::Relation::Conversation.def(),
        )
        .filter(
            conversation_members::Column::ConversationId
                .is_in(ids.iter().map(ConversationId::as_uuid)),
        )
        .order_by_asc(conversation_members::Column::ConversationId)
        .order_by_asc(conversation_members::Column::JoinedAt)
        .order_by_asc(conversation_members::Column::UserId)
        .all(db)
        .await
        .map_err(store_error)?;
    let mut found: HashMap<ConversationId, Posting> = HashMap::with_capacity(ids.len());
    for (member, row) in rows {
        let id = ConversationId::from_uuid(member.conversation_id);
        let member = convert::member(member)?;
        match found.get_mut(&id) {
            Some((_, members)) => members.push(member),
            None => {
                if let Some(row) = row {
                    found.insert(id, (convert::conversation(row)?, vec![member]));
                }
            }
        }
    }
    Ok(found)
}
