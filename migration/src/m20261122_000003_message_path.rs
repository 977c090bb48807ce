//! A cheaper message path:
//! - where deletions stand in each conversation, so that unread counts look deleted messages
//!   up only when there are some above a member's cursor;
//! - no index on `conversations.updated_at`. Every message moves its conversation's
//!   `updated_at`; with that column indexed, Postgres could never update the row in place
//!   (a HOT update), so each message added an entry to every index of `conversations` and left
//!   a dead row version behind, and a busy conversation's row got slower to find with every
//!   message. Conversation lists start from the member's rows (indexed by user) and sort that
//!   user's few conversations, which needs no global index on `updated_at`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::big_integer;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Conversations {
    Table,
    LastDeletedSeq,
    UpdatedAt,
}

/// Deleted messages are few; this index holds only them, so "the deleted seqs above a cursor"
/// reads a handful of index entries instead of every message above the cursor. Partial indexes
/// are written the same way on SQLite and Postgres.
const CREATE_DELETED_INDEX: &str = "CREATE INDEX idx_messages_deleted \
    ON messages (conversation_id, seq) WHERE deleted_at IS NOT NULL";

/// Conversations that already have deleted messages start from the highest deleted seq.
const BACKFILL: &str = "UPDATE conversations SET last_deleted_seq = COALESCE(\
    (SELECT MAX(seq) FROM messages \
     WHERE messages.conversation_id = conversations.id AND messages.deleted_at IS NOT NULL), 0)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Conversations::Table)
                    .add_column(big_integer(Conversations::LastDeletedSeq).default(0))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(BACKFILL).await?;
        db.execute_unprepared(CREATE_DELETED_INDEX).await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_conversations_updated_at")
                    .table(Conversations::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_updated_at")
                    .table(Conversations::Table)
                    .col(Conversations::UpdatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX idx_messages_deleted")
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Conversations::Table)
                    .drop_column(Conversations::LastDeletedSeq)
                    .to_owned(),
            )
            .await
    }
}
