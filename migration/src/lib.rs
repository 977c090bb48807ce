//! # confab-migration
//!
//! Confab's database schema as sea-orm migrations. The same migrations run on SQLite (the
//! embedded default) and on Postgres, so every statement here sticks to what both support.
//!
//! ```no_run
//! # async fn run(db: &sea_orm_migration::sea_orm::DatabaseConnection) -> Result<(), sea_orm_migration::DbErr> {
//! use confab_migration::{Migrator, MigratorTrait};
//! Migrator::up(db, None).await?;
//! # Ok(()) }
//! ```

pub use sea_orm_migration::MigrationStatus;
pub use sea_orm_migration::prelude::{DbErr, MigrationTrait, MigratorTrait};

mod m20261122_000001_chat_core;
mod m20261122_000002_presence;
mod m20261122_000003_message_path;

/// Every Confab migration, oldest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_chat_core::Migration),
            Box::new(m20261122_000002_presence::Migration),
            Box::new(m20261122_000003_message_path::Migration),
        ]
    }
}
