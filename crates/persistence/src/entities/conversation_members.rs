//! The `conversation_members` table.

use sea_orm::entity::prelude::*;

/// A row of `conversation_members`: one user's membership in one conversation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversation_members")]
pub struct Model {
    /// The conversation.
    #[sea_orm(primary_key, auto_increment = false)]
    pub conversation_id: Uuid,
    /// The member.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// `owner`, `admin`, `moderator` or `member`.
    #[sea_orm(column_type = "Text")]
    pub role: String,
    /// When they joined.
    pub joined_at: DateTimeUtc,
    /// Highest seq read.
    pub read_seq: i64,
    /// Highest seq delivered to one of their devices.
    pub delivered_seq: i64,
    /// Muted until then, if muted.
    pub muted_until: Option<DateTimeUtc>,
}

/// The tables this one points at.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The conversation of the membership.
    #[sea_orm(
        belongs_to = "super::conversations::Entity",
        from = "Column::ConversationId",
        to = "super::conversations::Column::Id"
    )]
    Conversation,
    /// The member's account.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        to = "super::users::Column::Id"
    )]
    User,
}

impl ActiveModelBehavior for ActiveModel {}
