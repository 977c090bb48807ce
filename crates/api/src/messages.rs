use chrono::{DateTime, Utc};
use confab_domain::MessageKind;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A message as clients see it. A deleted message keeps `id` and `seq`, with `body: null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    /// Id.
    pub id: Uuid,
    /// Its conversation.
    pub conversation_id: Uuid,
    /// Position in the conversation: 1, 2, 3 … without gaps.
    pub seq: u64,
    /// Who sent it.
    pub sender_id: Uuid,
    /// `text`, `image` or `system`.
    #[schema(schema_with = crate::schema::message_kind)]
    pub kind: MessageKind,
    /// The text; `null` once deleted.
    pub body: Option<String>,
    /// Attachments (none until media messages exist).
    pub attachments: Vec<serde_json::Value>,
    /// The sender's idempotency key.
    pub client_msg_id: Option<String>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// When it was last edited.
    pub edited_at: Option<DateTime<Utc>>,
    /// When it was deleted.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<&confab_domain::Message> for Message {
    fn from(message: &confab_domain::Message) -> Self {
        Self {
            id: message.id.as_uuid(),
            conversation_id: message.conversation_id.as_uuid(),
            seq: message.seq.value(),
            sender_id: message.sender_id.as_uuid(),
            kind: message.kind,
            body: message.body.clone(),
            attachments: Vec::new(),
            client_msg_id: message
                .client_msg_id
                .as_ref()
                .map(|id| id.as_str().to_owned()),
            created_at: message.created_at,
            edited_at: message.edited_at,
            deleted_at: message.deleted_at,
        }
    }
}

/// `POST /api/v1/conversations/{id}/messages`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct SendMessageRequest {
    /// 1–4000 characters after trimming.
    pub body: Option<String>,
    /// Your own id for this message (1–64 characters): resending it returns the first message
    /// instead of posting twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
}

/// `PATCH /api/v1/conversations/{id}/messages/{message_id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EditMessageRequest {
    /// The new text, 1–4000 characters after trimming.
    pub body: String,
}

/// Query of `GET /api/v1/conversations/{id}/messages`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only messages with a lower seq (page backwards).
    pub before: Option<u64>,
    /// Only messages with a higher seq (page forwards from here).
    pub after: Option<u64>,
    /// Page size, 1–200; default 50.
    pub limit: Option<u32>,
}

/// A page of history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MessagePage {
    /// Ascending by seq.
    pub messages: Vec<Message>,
    /// More messages lie beyond this page in the direction it was read.
    pub has_more: bool,
}

impl From<&confab_app::MessagePage> for MessagePage {
    fn from(page: &confab_app::MessagePage) -> Self {
        Self {
            messages: page.messages.iter().map(Message::from).collect(),
            has_more: page.has_more,
        }
    }
}
