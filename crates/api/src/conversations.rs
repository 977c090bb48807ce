use chrono::{DateTime, Utc};
use confab_domain::{ConversationKind, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{Message, User};

/// A conversation as one member sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Conversation {
    /// Id.
    pub id: Uuid,
    /// `direct`, `group` or `room`.
    #[schema(schema_with = crate::schema::conversation_kind)]
    pub kind: ConversationKind,
    /// Name of a group or room; `null` for direct conversations.
    pub name: Option<String>,
    /// Topic line.
    pub topic: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last activity; lists are sorted by it, newest first.
    pub updated_at: DateTime<Utc>,
    /// Seq of the newest message, 0 when empty.
    pub last_seq: u64,
    /// The newest message.
    pub last_message: Option<Message>,
    /// Messages from others the caller has not read (deleted ones excluded).
    pub unread_count: u64,
    /// Every member.
    pub members: Vec<Member>,
    /// The caller's role.
    #[schema(schema_with = crate::schema::role)]
    pub my_role: Role,
}

/// A member and their cursors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Member {
    /// The account.
    pub user: User,
    /// `owner`, `admin`, `moderator` or `member`.
    #[schema(schema_with = crate::schema::role)]
    pub role: Role,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
    /// Highest seq they have read.
    pub read_seq: u64,
    /// Highest seq delivered to one of their devices.
    pub delivered_seq: u64,
    /// Muted until then, if muted.
    pub muted_until: Option<DateTime<Utc>>,
}

impl Conversation {
    /// The view of `viewer`: their own entry in `members` carries their email.
    pub fn from_view(view: &confab_app::ConversationView) -> Self {
        let conversation = &view.conversation;
        Self {
            id: conversation.id.as_uuid(),
            kind: conversation.kind,
            name: conversation.name.clone(),
            topic: conversation.topic.clone(),
            created_at: conversation.created_at,
            updated_at: conversation.updated_at,
            last_seq: conversation.last_seq.value(),
            last_message: view.last_message.as_ref().map(Message::from),
            unread_count: view.unread_count,
            members: view
                .members
                .iter()
                .map(|m| Member {
                    user: User::public(&m.user),
                    role: m.member.role,
                    joined_at: m.member.joined_at,
                    read_seq: m.member.read_seq.value(),
                    delivered_seq: m.member.delivered_seq.value(),
                    muted_until: m.member.muted_until,
                })
                .collect(),
            my_role: view.my_role,
        }
    }
}

/// `POST /api/v1/conversations/groups`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateGroupRequest {
    /// 1–100 characters.
    pub name: String,
    /// Usernames to add (at most 1 024; unknown ones are refused); the caller becomes owner.
    #[serde(default)]
    #[schema(max_items = 1024)]
    pub members: Vec<String>,
}

/// `POST /api/v1/conversations/{id}/read`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct MarkReadRequest {
    /// Everything up to this seq is read.
    pub seq: u64,
}

/// The caller's read state in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReadState {
    /// Their read cursor.
    pub read_seq: u64,
    /// Their delivery cursor (never below the read cursor).
    pub delivered_seq: u64,
    /// Their unread count.
    pub unread_count: u64,
}

impl From<confab_app::ReadState> for ReadState {
    fn from(state: confab_app::ReadState) -> Self {
        Self {
            read_seq: state.read_seq.value(),
            delivered_seq: state.delivered_seq.value(),
            unread_count: state.unread_count,
        }
    }
}

/// A conversation as `conversation.updated` carries it: the sidebar entry of the recipient,
/// with their own unread count. Without `members`, which would make every message cost
/// members² bytes in a group: fetch the conversation over REST when you need them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConversationUpdate {
    /// Id.
    pub id: Uuid,
    /// `direct`, `group` or `room`.
    #[schema(schema_with = crate::schema::conversation_kind)]
    pub kind: ConversationKind,
    /// Name of a group or room.
    pub name: Option<String>,
    /// Topic line.
    pub topic: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last activity.
    pub updated_at: DateTime<Utc>,
    /// Seq of the newest message.
    pub last_seq: u64,
    /// The newest message.
    pub last_message: Option<Message>,
    /// The recipient's unread count.
    pub unread_count: u64,
    /// The recipient's role.
    #[schema(schema_with = crate::schema::role)]
    pub my_role: Role,
}

impl ConversationUpdate {
    /// The update of `conversation` as `member` sees it.
    pub fn new(
        conversation: &confab_domain::Conversation,
        last_message: Option<&confab_domain::Message>,
        member: &confab_app::MemberActivity,
    ) -> Self {
        Self {
            id: conversation.id.as_uuid(),
            kind: conversation.kind,
            name: conversation.name.clone(),
            topic: conversation.topic.clone(),
            created_at: conversation.created_at,
            updated_at: conversation.updated_at,
            last_seq: conversation.last_seq.value(),
            last_message: last_message.map(Message::from),
            unread_count: member.unread_count,
            my_role: member.role,
        }
    }
}
