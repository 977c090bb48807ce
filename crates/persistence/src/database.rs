//! Opening the database, migrating it, and checking that it answers.

use std::fmt;
use std::time::Duration;

use confab_migration::{MigrationStatus, Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::SqliteJournalMode;
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

/// How long a SQLite writer waits for another writer's lock before giving up. Appends hold
/// the lock for a few milliseconds, so this only runs out when something is badly wrong.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// sea-orm gives SQLite a single connection unless told otherwise, which would queue every
/// read behind every write. With WAL, readers do not block the writer, so a few connections
/// let reads proceed while writers take turns on the lock.
const SQLITE_MAX_CONNECTIONS: u32 = 8;

/// Opens a pool on `url`: `sqlite://path/to/file.db` or `postgres://user@host/db`.
///
/// For SQLite the file is created if missing, the journal is WAL (readers do not block the
/// writer), a writer waits up to 5 s for the lock instead of failing at once, and foreign keys
/// are enforced. An in-memory SQLite database (`sqlite::memory:`) keeps a single connection,
/// since each connection would otherwise see its own empty database.
///
/// Statement logging is off: sqlx would log every query at INFO.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    options.sqlx_logging(false);
    if url.starts_with("sqlite:") {
        if !is_sqlite_in_memory(url) {
            options.max_connections(SQLITE_MAX_CONNECTIONS);
        }
        options.map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
        });
    }
    Database::connect(options).await
}

fn is_sqlite_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// Applies every pending migration.
pub async fn migrate_up(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Rolls back the most recently applied migration, one step only: undoing the whole schema
/// drops every table, which should take deliberate repetition rather than one slip.
pub async fn migrate_down(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::down(db, Some(1)).await
}

/// Every known migration, oldest first, and whether it is applied. Reading the status never
/// creates the migrations table, so it is safe on a database that was never migrated.
pub async fn migration_status(db: &DatabaseConnection) -> Result<Vec<MigrationState>, DbErr> {
    Ok(Migrator::get_migration_with_status_read_only(db)
        .await?
        .iter()
        .map(|migration| MigrationState {
            name: migration.name().to_owned(),
            applied: migration.status() == MigrationStatus::Applied,
        })
        .collect())
}

/// Whether the database answers, for readiness checks.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.ping().await
}

/// One migration and whether it has been applied. Displays as `applied  <name>` or
/// `pending  <name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's name, from its file name (`m20261122_000001_chat_core`).
    pub name: String,
    /// Whether it has been applied to this database.
    pub applied: bool,
}

impl fmt::Display for MigrationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = if self.applied { "applied" } else { "pending" };
        write!(f, "{status:<8} {}", self.name)
    }
}
