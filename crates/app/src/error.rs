use std::time::Duration;

use confab_domain::{ValidationError, ValidationErrors};

use crate::ports::StoreError;

/// Why a use case did not happen. The edges map each variant to one status and one error code
/// (the table in API.md), in one place.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The thing does not exist, or the caller may not know that it does.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller is known but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// The request clashes with existing state (a taken username, say).
    #[error("{0}")]
    Conflict(String),
    /// Some fields of the request are invalid; each is named.
    #[error("validation failed: {0}")]
    Validation(ValidationErrors),
    /// Too many requests; try again after the given time.
    #[error("rate limited")]
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// Missing or bad credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Something broke inside; the caller gets a generic answer, the log gets the cause.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<ValidationError> for AppError {
    fn from(error: ValidationError) -> Self {
        Self::Validation(error.into())
    }
}

impl From<ValidationErrors> for AppError {
    fn from(errors: ValidationErrors) -> Self {
        Self::Validation(errors)
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(what) => Self::Conflict(what),
            StoreError::Backend(source) => Self::Internal(source),
        }
    }
}
