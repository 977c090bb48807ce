use chrono::Duration;
use confab_app::AppError;
use confab_app::ports::{AccessToken, TokenError, TokenIssuer};
use confab_domain::UserId;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The shortest HS256 secret accepted, in bytes: shorter keys can be brute-forced.
pub const MIN_SECRET_LEN: usize = 32;

/// What an access token says.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id.
    sub: String,
    iat: i64,
    exp: i64,
}

/// Issues and verifies HS256 JWT access tokens.
pub struct JwtIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for JwtIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtIssuer")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl JwtIssuer {
    /// An issuer signing with `secret`, whose tokens live for `ttl`. The caller checks the
    /// secret's length against [`MIN_SECRET_LEN`] when it reads configuration.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Instances of one deployment share a secret but not a perfect clock.
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }
}

impl TokenIssuer for JwtIssuer {
    fn issue(&self, user: UserId) -> Result<AccessToken, AppError> {
        let now = chrono::Utc::now();
        let claims = Claims {
            sub: user.to_string(),
            iat: now.timestamp(),
            exp: (now + self.ttl).timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::Internal(Box::new(e)))?;
        Ok(AccessToken {
            token,
            expires_in: u64::try_from(self.ttl.num_seconds()).unwrap_or(0),
        })
    }

    fn verify(&self, token: &str) -> Result<UserId, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        data.claims.sub.parse().map_err(|_| TokenError::Invalid)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_fresh_token_names_its_user() {
        let issuer = JwtIssuer::new(SECRET, Duration::minutes(15));
        let user = UserId::generate();
        let token = issuer.issue(user).unwrap();
        assert_eq!(token.expires_in, 900);
        assert_eq!(issuer.verify(&token.token), Ok(user));
    }

    #[test]
    fn an_expired_token_is_refused_as_expired() {
        let issuer = JwtIssuer::new(SECRET, Duration::minutes(-5));
        let token = issuer.issue(UserId::generate()).unwrap();
        assert_eq!(issuer.verify(&token.token), Err(TokenError::Expired));
    }

    #[test]
    fn a_token_signed_with_another_secret_or_garbage_is_invalid() {
        let ours = JwtIssuer::new(SECRET, Duration::minutes(15));
        let theirs = JwtIssuer::new(b"another-secret-another-secret-xx", Duration::minutes(15));
        let forged = theirs.issue(UserId::generate()).unwrap();
        assert_eq!(ours.verify(&forged.token), Err(TokenError::Invalid));
        assert_eq!(ours.verify("not.a.jwt"), Err(TokenError::Invalid));
        assert_eq!(ours.verify(""), Err(TokenError::Invalid));
    }
}
