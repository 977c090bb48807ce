use async_trait::async_trait;
use confab_domain::{Password, UserId};

use crate::AppError;

/// Turns passwords into slow salted hashes and checks them.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// The hash of `password`, in PHC string format, salt included.
    async fn hash(&self, password: &Password) -> Result<String, AppError>;
    /// Whether `password` matches `hash`.
    async fn verify(&self, password: &str, hash: &str) -> Result<bool, AppError>;
}

/// A signed, expiring token that proves who the bearer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The token to send as `Authorization: Bearer …`.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// Why a presented token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Its time is up.
    #[error("the access token has expired")]
    Expired,
    /// Not a token, or not one we signed.
    #[error("the access token is invalid")]
    Invalid,
}

/// Issues and checks access tokens.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait TokenIssuer: Send + Sync {
    /// A fresh access token for `user`.
    fn issue(&self, user: UserId) -> Result<AccessToken, AppError>;
    /// The user a token was issued to, if it is genuine and unexpired.
    fn verify(&self, token: &str) -> Result<UserId, TokenError>;
}
