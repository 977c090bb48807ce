use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /api/v1/auth/signup`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignupRequest {
    /// 3–32 characters of `a-z`, `0-9`, `_`; case-insensitive.
    pub username: String,
    /// An email address, unique.
    pub email: String,
    /// 8–256 characters.
    pub password: String,
    /// Shown name, 1–64 characters; the username when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// `POST /api/v1/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Username or email.
    pub login: String,
    /// Password.
    pub password: String,
}

/// A user account as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// Id.
    pub id: Uuid,
    /// Lowercase handle.
    pub username: String,
    /// Shown name.
    pub display_name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Present only when the user is the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl User {
    /// The account as anyone may see it.
    pub fn public(user: &confab_domain::User) -> Self {
        Self {
            id: user.id.as_uuid(),
            username: user.username.as_str().to_owned(),
            display_name: user.display_name.as_str().to_owned(),
            created_at: user.created_at,
            email: None,
        }
    }

    /// The account as its owner sees it, with the email.
    pub fn own(user: &confab_domain::User) -> Self {
        Self {
            email: Some(user.email.as_str().to_owned()),
            ..Self::public(user)
        }
    }
}

/// A signed-in session: `POST /auth/signup` and `/auth/login` answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Session {
    /// The caller.
    pub user: User,
    /// Send as `Authorization: Bearer <access_token>`, or `?token=` on the WebSocket.
    pub access_token: String,
    /// Reserved for refresh-token rotation; `null` until the server issues refresh tokens.
    pub refresh_token: Option<String>,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

impl From<&confab_app::Session> for Session {
    fn from(session: &confab_app::Session) -> Self {
        Self {
            user: User::own(&session.user),
            access_token: session.access.token.clone(),
            refresh_token: None,
            token_type: "Bearer".to_owned(),
            expires_in: session.access.expires_in,
        }
    }
}
