use actix_web::{HttpResponse, get, post, web};
use confab_api::{Conversation, CreateGroupRequest, ErrorBody, MarkReadRequest, ReadState};
use confab_domain::ConversationId;
use uuid::Uuid;

use crate::{ApiError, Caller, HttpState};

/// The caller's conversations, most recent activity first, each with its unread count, last
/// message and members.
#[utoipa::path(
    tag = "conversations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's conversations", body = [Conversation]),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
#[get("/conversations")]
pub(crate) async fn list(
    state: web::Data<HttpState>,
    caller: Caller,
) -> Result<web::Json<Vec<Conversation>>, ApiError> {
    let views = state.services.conversations.list(caller.0).await?;
    Ok(web::Json(
        views.iter().map(Conversation::from_view).collect(),
    ))
}

/// The direct conversation with `username`: created (201) the first time, the same one (200)
/// afterwards, whichever of the two asks.
#[utoipa::path(
    tag = "conversations",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "The other user")),
    responses(
        (status = 201, description = "Created", body = Conversation),
        (status = 200, description = "Already existed", body = Conversation),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 422, description = "A direct conversation with oneself", body = ErrorBody),
    )
)]
#[post("/conversations/direct/{username}")]
pub(crate) async fn open_direct(
    state: web::Data<HttpState>,
    caller: Caller,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (view, created) = state
        .services
        .conversations
        .open_direct(caller.0, &username)
        .await?;
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(Conversation::from_view(&view)))
}

/// Create a group; the caller becomes its owner.
#[utoipa::path(
    tag = "conversations",
    security(("bearer" = [])),
    request_body = CreateGroupRequest,
    responses(
        (status = 201, description = "Created", body = Conversation),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 422, description = "Invalid name or unknown members, named in `details`", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
#[post("/conversations/groups")]
pub(crate) async fn create_group(
    state: web::Data<HttpState>,
    caller: Caller,
    body: web::Json<CreateGroupRequest>,
) -> Result<HttpResponse, ApiError> {
    let view = state
        .services
        .conversations
        .create_group(caller.0, &body.name, &body.members)
        .await?;
    Ok(HttpResponse::Created().json(Conversation::from_view(&view)))
}

/// One conversation of the caller's. Anyone else gets 404: its existence is not revealed.
#[utoipa::path(
    tag = "conversations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "The conversation", body = Conversation),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such conversation, or not a member", body = ErrorBody),
    )
)]
#[get("/conversations/{id}")]
pub(crate) async fn get(
    state: web::Data<HttpState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<Conversation>, ApiError> {
    let view = state
        .services
        .conversations
        .get(caller.0, ConversationId::from_uuid(*id))
        .await?;
    Ok(web::Json(Conversation::from_view(&view)))
}

/// Mark everything up to `seq` read. The cursor never moves back nor past the newest message.
#[utoipa::path(
    tag = "conversations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    request_body = MarkReadRequest,
    responses(
        (status = 200, description = "The read state now", body = ReadState),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such conversation, or not a member", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
#[post("/conversations/{id}/read")]
pub(crate) async fn mark_read(
    state: web::Data<HttpState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: web::Json<MarkReadRequest>,
) -> Result<web::Json<ReadState>, ApiError> {
    let read = state
        .services
        .conversations
        .mark_read(caller.0, ConversationId::from_uuid(*id), body.seq)
        .await?;
    Ok(web::Json(read.into()))
}
