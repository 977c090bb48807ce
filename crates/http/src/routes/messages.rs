use actix_web::{HttpResponse, delete, get, patch, post, web};
use confab_api::{
    EditMessageRequest, ErrorBody, HistoryQuery, Message, MessagePage, SendMessageRequest,
};
use confab_app::{PageQuery, SendInput};
use confab_domain::{ConversationId, MessageId, Seq};
use uuid::Uuid;

use crate::{ApiError, Caller, HttpState};

/// A page of history, ascending by seq: the newest page by default, older with `before`,
/// newer with `after`.
#[utoipa::path(
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), HistoryQuery),
    responses(
        (status = 200, description = "A page of messages", body = MessagePage),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such conversation, or not a member", body = ErrorBody),
        (status = 422, description = "`limit` out of 1–200", body = ErrorBody),
    )
)]
#[get("/conversations/{id}/messages")]
pub(crate) async fn history(
    state: web::Data<HttpState>,
    caller: Caller,
    id: web::Path<Uuid>,
    query: web::Query<HistoryQuery>,
) -> Result<web::Json<MessagePage>, ApiError> {
    let query = PageQuery {
        before: query.before.map(Seq::new),
        after: query.after.map(Seq::new),
        limit: query.limit.unwrap_or(PageQuery::DEFAULT_LIMIT),
    };
    let page = state
        .services
        .messages
        .history(caller.0, ConversationId::from_uuid(*id), query)
        .await?;
    Ok(web::Json(MessagePage::from(&page)))
}

/// Post a message. It is stored with the next seq, then delivered to every member's sockets.
/// Repeating a `client_msg_id` answers 200 with the first message and posts nothing.
#[utoipa::path(
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    request_body = SendMessageRequest,
    responses(
        (status = 201, description = "Stored", body = Message),
        (status = 200, description = "A repeat of an earlier `client_msg_id`: the first message", body = Message),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Muted", body = ErrorBody),
        (status = 404, description = "No such conversation, or not a member", body = ErrorBody),
        (status = 409, description = "`client_msg_id` already used in another conversation", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Empty or too long body, bad `client_msg_id`", body = ErrorBody),
    )
)]
#[post("/conversations/{id}/messages")]
pub(crate) async fn send(
    state: web::Data<HttpState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: web::Json<SendMessageRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let input = SendInput {
        conversation_id: ConversationId::from_uuid(*id),
        body: body.body,
        client_msg_id: body.client_msg_id,
    };
    let sent = state.services.messages.send(caller.0, input, None).await?;
    let mut response = if sent.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(Message::from(&sent.message)))
}

/// Replace the text of one of your messages. Every member's sockets get `message.updated`.
#[utoipa::path(
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), ("message_id" = Uuid, Path, description = "Message id")),
    request_body = EditMessageRequest,
    responses(
        (status = 200, description = "The message, edited", body = Message),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not the author", body = ErrorBody),
        (status = 404, description = "No such message in a conversation of yours", body = ErrorBody),
        (status = 409, description = "The message is deleted", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Empty or too long body", body = ErrorBody),
    )
)]
#[patch("/conversations/{id}/messages/{message_id}")]
pub(crate) async fn edit(
    state: web::Data<HttpState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Json<EditMessageRequest>,
) -> Result<web::Json<Message>, ApiError> {
    let (conversation, message) = path.into_inner();
    let edited = state
        .services
        .messages
        .edit(
            caller.0,
            MessageId::from_uuid(message),
            &body.body,
            Some(ConversationId::from_uuid(conversation)),
        )
        .await?;
    Ok(web::Json(Message::from(&edited)))
}

/// Delete one of your messages: it keeps its id and seq, loses its body, and stops counting
/// as unread. Every member's sockets get `message.deleted`. Deleting it again changes nothing.
#[utoipa::path(
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), ("message_id" = Uuid, Path, description = "Message id")),
    responses(
        (status = 200, description = "The message, deleted", body = Message),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not the author", body = ErrorBody),
        (status = 404, description = "No such message in a conversation of yours", body = ErrorBody),
    )
)]
#[delete("/conversations/{id}/messages/{message_id}")]
pub(crate) async fn remove(
    state: web::Data<HttpState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<web::Json<Message>, ApiError> {
    let (conversation, message) = path.into_inner();
    let deleted = state
        .services
        .messages
        .delete(
            caller.0,
            MessageId::from_uuid(message),
            Some(ConversationId::from_uuid(conversation)),
        )
        .await?;
    Ok(web::Json(Message::from(&deleted)))
}
