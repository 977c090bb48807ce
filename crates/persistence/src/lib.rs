//! # confab-persistence
//!
//! Confab's storage adapter: the repository ports of `confab-app` implemented with sea-orm, on
//! SQLite (the embedded default) and Postgres alike.
//!
//! ```no_run
//! # async fn run() -> Result<(), confab_persistence::DbErr> {
//! use confab_persistence::{connect, migrate_up, SqlMessageRepository};
//!
//! let db = connect("sqlite://data/confab.db").await?;
//! migrate_up(&db).await?;
//! let messages = SqlMessageRepository::new(db.clone());
//! # let _ = messages; Ok(()) }
//! ```
//!
//! With the `testing` feature, [`testing::TestDatabase`] gives each test its own fresh,
//! migrated database: a SQLite file by default, or a uniquely named Postgres database when
//! `CONFAB_TEST_DATABASE_URL` is set.

mod conversations;
mod convert;
mod database;
pub mod entities;
mod error;
mod group_commit;
mod linger;
mod messages;
mod posting;
mod users;

// Test support: a database that cannot be set up should fail the test loudly, so unwrap and
// expect are the right tools there.
#[cfg(feature = "testing")]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub mod testing;

pub use conversations::SqlConversationRepository;
pub use database::{MigrationState, connect, migrate_down, migrate_up, migration_status, ping};
pub use messages::SqlMessageRepository;
pub use sea_orm::{DatabaseConnection, DbErr};
pub use users::SqlUserRepository;
