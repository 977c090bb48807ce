//! # confab-auth
//!
//! Credential adapters for Confab's ports: [`Argon2Hasher`] (argon2id, run off the async
//! threads because it is deliberately slow) and [`JwtIssuer`] (HS256 access tokens with an
//! expiry).

mod hasher;
mod jwt;

pub use hasher::Argon2Hasher;
pub use jwt::{JwtIssuer, MIN_SECRET_LEN};
