//! The one place where database errors become [`StoreError`]s.

use std::fmt;

use confab_app::ports::StoreError;
use sea_orm::{DatabaseTransaction, DbErr, SqlErr};

/// The unique indexes that a client can run into, by name in the migration. Others (primary
/// keys, `(conversation_id, seq)`) only break through a bug, so they stay backend failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UniqueIndex {
    Username,
    Email,
    DirectKey,
    ClientMsgId,
}

impl UniqueIndex {
    const ALL: [Self; 4] = [
        Self::Username,
        Self::Email,
        Self::DirectKey,
        Self::ClientMsgId,
    ];

    /// Postgres names the violated index in its message.
    fn name(self) -> &'static str {
        match self {
            Self::Username => "idx_users_username",
            Self::Email => "idx_users_email",
            Self::DirectKey => "idx_conversations_direct_key",
            Self::ClientMsgId => "idx_messages_sender_client_msg_id",
        }
    }

    /// SQLite names the columns instead: `UNIQUE constraint failed: users.username`.
    fn sqlite_columns(self) -> &'static str {
        match self {
            Self::Username => "users.username",
            Self::Email => "users.email",
            Self::DirectKey => "conversations.direct_key",
            Self::ClientMsgId => "messages.sender_id, messages.client_msg_id",
        }
    }

    fn conflict_message(self) -> &'static str {
        match self {
            Self::Username => "username is taken",
            Self::Email => "email is already registered",
            Self::DirectKey => "a direct conversation between these users already exists",
            Self::ClientMsgId => "client_msg_id was already used by this sender",
        }
    }

    /// The index `err` violated, if it is a unique violation of one of these.
    pub(crate) fn violated_by(err: &DbErr) -> Option<Self> {
        let Some(SqlErr::UniqueConstraintViolation(message)) = err.sql_err() else {
            return None;
        };
        let sqlite_columns = message.strip_prefix("UNIQUE constraint failed: ");
        Self::ALL.into_iter().find(|index| {
            sqlite_columns == Some(index.sqlite_columns())
                || message.contains(&format!("\"{}\"", index.name()))
        })
    }
}

/// Translates a database error: a known unique violation becomes `Conflict` with a message for
/// the client, everything else `Backend`.
pub(crate) fn store_error(err: DbErr) -> StoreError {
    match UniqueIndex::violated_by(&err) {
        Some(index) => StoreError::Conflict(index.conflict_message().to_owned()),
        None => StoreError::Backend(Box::new(err)),
    }
}

/// A stored value that the domain rejects: the database was written by something other than
/// these repositories, or by an older version with other rules.
#[derive(Debug, thiserror::Error)]
#[error("stored {column} is invalid: {reason}")]
pub(crate) struct CorruptValue {
    column: &'static str,
    reason: String,
}

/// A `Backend` error for a stored value in `column` that does not parse.
pub(crate) fn corrupt(column: &'static str, reason: impl fmt::Display) -> StoreError {
    StoreError::Backend(Box::new(CorruptValue {
        column,
        reason: reason.to_string(),
    }))
}

/// A `Backend` error for a row that should exist and does not.
pub(crate) fn missing(what: impl Into<String>) -> StoreError {
    StoreError::Backend(Box::new(DbErr::RecordNotFound(what.into())))
}

/// Rolls `txn` back after `cause` made it fail. The cause is what the caller reports, so a
/// failing rollback is only logged; the database discards the transaction either way once
/// the connection drops it.
pub(crate) async fn roll_back(txn: DatabaseTransaction, cause: &(dyn fmt::Display + Sync)) {
    if let Err(rollback) = txn.rollback().await {
        tracing::warn!(error = %rollback, cause = %cause, "rolling back a failed transaction failed");
    }
}
