//! The `messages` table.

use sea_orm::entity::prelude::*;

/// A row of `messages`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    /// The message's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Its conversation.
    pub conversation_id: Uuid,
    /// Its position in the conversation; unique with `conversation_id`.
    pub seq: i64,
    /// Who sent it.
    pub sender_id: Uuid,
    /// `text`, `image` or `system`.
    #[sea_orm(column_type = "Text")]
    pub kind: String,
    /// The text; `None` once deleted.
    #[sea_orm(column_type = "Text", nullable)]
    pub body: Option<String>,
    /// The sender's idempotency key; unique with `sender_id`.
    #[sea_orm(column_type = "Text", nullable)]
    pub client_msg_id: Option<String>,
    /// When it was stored.
    pub created_at: DateTimeUtc,
    /// When it was last edited.
    pub edited_at: Option<DateTimeUtc>,
    /// When it was deleted.
    pub deleted_at: Option<DateTimeUtc>,
}

/// The tables this one points at.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The conversation it was posted in.
    #[sea_orm(
        belongs_to = "super::conversations::Entity",
        from = "Column::ConversationId",
        to = "super::conversations::Column::Id"
    )]
    Conversation,
    /// Its sender.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::SenderId",
        to = "super::users::Column::Id"
    )]
    Sender,
}

impl ActiveModelBehavior for ActiveModel {}
