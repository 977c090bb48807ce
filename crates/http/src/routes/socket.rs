use actix_web::{HttpRequest, HttpResponse, get, web};
use confab_api::ErrorBody;
use serde::Deserialize;

use crate::caller::{authenticate, bearer_token};
use crate::{ApiError, HttpState};

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Open the WebSocket of this device. The token comes in the `Authorization` header or, for
/// browsers, as `?token=`; a bad one is refused with 401 before the upgrade. The frames are
/// described in `asyncapi.json`.
#[utoipa::path(
    tag = "realtime",
    security(("bearer" = []), ()),
    params(("token" = Option<String>, Query, description = "Access token, for clients that cannot set headers")),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket handshake", body = ErrorBody),
        (status = 401, description = "Missing, malformed, expired or forged token", body = ErrorBody),
        (status = 429, description = "Too many sockets for this user, or too many attempts from this address", body = ErrorBody),
    )
)]
#[get("/ws")]
pub(crate) async fn connect(
    req: HttpRequest,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, actix_web::Error> {
    let query = web::Query::<TokenQuery>::from_query(req.query_string()).ok();
    let token = bearer_token(&req).or_else(|| query.as_ref().and_then(|q| q.token.as_deref()));
    let user = authenticate(&req, token)?;
    // Behind a proxy, the client's address comes from Forwarded / X-Forwarded-For.
    let address = req
        .connection_info()
        .realip_remote_addr()
        .map(str::to_owned);
    state
        .services
        .presence
        .admit(user, address.as_deref())
        .await
        .map_err(ApiError::from)?;
    let state = state.into_inner();
    // The 101 carries the socket; `crate::server` hands it the connection once it is written.
    confab_realtime::start_socket(
        &req,
        user,
        state.services.clone(),
        state.hub.clone(),
        state.socket,
    )
    .map_err(|error| {
        ApiError::new(
            confab_api::ErrorCode::BadRequest,
            format!("not a WebSocket handshake: {error}"),
        )
        .into()
    })
}
