use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use confab_api::ErrorCode;
use confab_domain::UserId;

use crate::{ApiError, HttpState};

/// The authenticated user of a request, from `Authorization: Bearer <token>`. A missing,
/// malformed, expired or forged token answers 401 before the handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller(pub UserId);

/// The token of an `Authorization: Bearer …` header, if there is one.
pub(crate) fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub(crate) fn authenticate(req: &HttpRequest, token: Option<&str>) -> Result<UserId, ApiError> {
    let state = req
        .app_data::<web::Data<HttpState>>()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "internal server error"))?;
    let token =
        token.ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "missing bearer token"))?;
    Ok(state.services.auth.authenticate(token)?)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req, bearer_token(req)).map(Caller))
    }
}
