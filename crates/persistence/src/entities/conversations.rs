//! The `conversations` table.

use sea_orm::entity::prelude::*;

/// A row of `conversations`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversations")]
pub struct Model {
    /// The conversation's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `direct`, `group` or `room`.
    #[sea_orm(column_type = "Text")]
    pub kind: String,
    /// Name of a group or room.
    #[sea_orm(column_type = "Text", nullable)]
    pub name: Option<String>,
    /// Topic line.
    #[sea_orm(column_type = "Text", nullable)]
    pub topic: Option<String>,
    /// `DirectPair::key()` of a direct conversation, unique; `None` for groups and rooms.
    #[sea_orm(column_type = "Text", nullable)]
    pub direct_key: Option<String>,
    /// When it was created.
    pub created_at: DateTimeUtc,
    /// Last activity; conversation lists sort by it.
    pub updated_at: DateTimeUtc,
    /// Seq of the newest message, 0 while empty.
    pub last_seq: i64,
    /// Highest seq of a deleted message, 0 if none.
    pub last_deleted_seq: i64,
}

/// Relations are declared on the side that holds the foreign key.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
