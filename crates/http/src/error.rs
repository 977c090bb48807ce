use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use confab_api::{ErrorBody, ErrorCode};
use confab_app::AppError;

/// Every failed request, answered as `{"error": {code, message, details}}` with the status
/// that goes with the code (one table, `ErrorCode::http_status`).
#[derive(Debug, thiserror::Error)]
#[error("{}", .body.error.message)]
pub struct ApiError {
    body: ErrorBody,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            body: ErrorBody::new(code, message),
            retry_after_secs: None,
        }
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match &error {
            AppError::Internal(cause) => {
                let mut chain = cause.to_string();
                let mut source = cause.source();
                while let Some(inner) = source {
                    chain.push_str(": ");
                    chain.push_str(&inner.to_string());
                    source = inner.source();
                }
                tracing::error!(error = %chain, "request failed");
            }
            AppError::Validation(errors) => tracing::debug!(%errors, "invalid request"),
            _ => {}
        }
        let retry_after_secs = match &error {
            AppError::RateLimited { retry_after } => Some(retry_after.as_secs_f64().ceil() as u64),
            _ => None,
        };
        Self {
            body: ErrorBody::from_app_error(&error),
            retry_after_secs,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.body.error.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        response.json(&self.body)
    }
}

/// JSON bodies: size limit and the error answers of a body that cannot be read.
pub(crate) fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(crate::MAX_JSON_BODY)
        .error_handler(|error, _req| json_error(&error).into())
}

fn json_error(error: &JsonPayloadError) -> ApiError {
    match error {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than {limit} bytes"),
        ),
        JsonPayloadError::ContentType => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as application/json",
        ),
        JsonPayloadError::Deserialize(e) if e.is_syntax() || e.is_eof() => ApiError::new(
            ErrorCode::BadRequest,
            format!("the body is not valid JSON: {e}"),
        ),
        JsonPayloadError::Deserialize(e) => ApiError::new(
            ErrorCode::BadRequest,
            format!("the body does not have the expected shape: {e}"),
        ),
        other => ApiError::new(
            ErrorCode::BadRequest,
            format!("the body could not be read: {other}"),
        ),
    }
}

/// A path that does not parse (an id that is not a UUID) names nothing that exists.
pub(crate) fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|_: PathError, _req| ApiError::new(ErrorCode::NotFound, "not found").into())
}

pub(crate) fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error: QueryPayloadError, _req| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("invalid query string: {error}"),
        )
        .into()
    })
}

pub(crate) async fn unknown_route(req: HttpRequest) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
    )
}

impl actix_web::Responder for ApiError {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        self.error_response()
    }
}
