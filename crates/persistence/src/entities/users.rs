//! The `users` table.

use sea_orm::entity::prelude::*;

/// A row of `users`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// The user's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Lowercase handle, unique (`idx_users_username`).
    #[sea_orm(column_type = "Text")]
    pub username: String,
    /// Lowercase email, unique (`idx_users_email`).
    #[sea_orm(column_type = "Text")]
    pub email: String,
    /// The name shown in clients.
    #[sea_orm(column_type = "Text")]
    pub display_name: String,
    /// PHC string of the password hash.
    #[sea_orm(column_type = "Text")]
    pub password_hash: String,
    /// When the account was created.
    pub created_at: DateTimeUtc,
    /// When the user was last online (their last device left).
    pub last_seen_at: Option<DateTimeUtc>,
}

/// Relations are declared on the side that holds the foreign key.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
