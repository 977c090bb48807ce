use confab_app::AppError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error code a client can receive, on REST and on the WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed request: not JSON, wrong shape, unknown frame type.
    BadRequest,
    /// Missing, malformed, expired or forged credentials.
    Unauthorized,
    /// Known caller, not allowed.
    Forbidden,
    /// No such thing, or not visible to the caller.
    NotFound,
    /// Clashes with existing state.
    Conflict,
    /// The body or frame is too large.
    PayloadTooLarge,
    /// The body is not of a supported content type.
    UnsupportedMediaType,
    /// Some fields are invalid; `details` names each.
    ValidationFailed,
    /// Too many requests.
    RateLimited,
    /// The server failed; nothing internal is revealed.
    Internal,
}

impl ErrorCode {
    /// The HTTP status that goes with the code.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::ValidationFailed => 422,
            Self::RateLimited => 429,
            Self::Internal => 500,
        }
    }
}

/// The body of every REST error: `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
    /// For `validation_failed`: an object naming each bad field, e.g. `{"username": "…"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ErrorBody {
    /// An error body with no details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code,
                message: message.into(),
                details: None,
            },
        }
    }

    /// The one mapping of use-case errors to what clients see. Internal causes are not
    /// revealed: the caller logs them.
    pub fn from_app_error(error: &AppError) -> Self {
        match error {
            AppError::NotFound(what) => Self::new(ErrorCode::NotFound, format!("{what} not found")),
            AppError::Forbidden(why) => Self::new(ErrorCode::Forbidden, why.clone()),
            AppError::Conflict(why) => Self::new(ErrorCode::Conflict, why.clone()),
            AppError::Unauthorized(why) => Self::new(ErrorCode::Unauthorized, why.clone()),
            AppError::RateLimited { retry_after } => Self::new(
                ErrorCode::RateLimited,
                format!("too many requests; retry in {} ms", retry_after.as_millis()),
            ),
            AppError::Validation(errors) => {
                let mut details = serde_json::Map::new();
                for error in errors.errors() {
                    // Several problems with one field read as one sentence.
                    let message = match details.get(error.field) {
                        Some(serde_json::Value::String(earlier)) => {
                            format!("{earlier}; {}", error.message)
                        }
                        _ => error.message.clone(),
                    };
                    details.insert(error.field.to_owned(), serde_json::Value::String(message));
                }
                Self {
                    error: ErrorDetail {
                        code: ErrorCode::ValidationFailed,
                        message: errors.to_string(),
                        details: Some(serde_json::Value::Object(details)),
                    },
                }
            }
            AppError::Internal(_) => Self::new(ErrorCode::Internal, "internal server error"),
        }
    }
}

/// The answer of `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`; `degraded` when Redis cannot be reached (the instance still serves); `unavailable`
    /// when the database cannot be reached.
    pub status: String,
}
