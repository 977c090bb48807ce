use async_trait::async_trait;
use confab_domain::{DisplayName, Email, Timestamp, User, UserId, Username};

use super::StoreResult;

/// A validated account to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Its id.
    pub id: UserId,
    /// Its username.
    pub username: Username,
    /// Its display name.
    pub display_name: DisplayName,
    /// Its email.
    pub email: Email,
    /// The PHC hash of its password.
    pub password_hash: String,
    /// Creation time.
    pub created_at: Timestamp,
}

/// An account with its password hash, for login only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCredentials {
    /// The account.
    pub user: User,
    /// Its password hash.
    pub password_hash: String,
}

/// User accounts.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new account; `Conflict` if the username or email is taken.
    async fn create(&self, user: NewUser) -> StoreResult<User>;
    /// The account with this id.
    async fn find_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    /// The accounts with these ids (missing ones are left out).
    async fn find_many(&self, ids: &[UserId]) -> StoreResult<Vec<User>>;
    /// The account with this username.
    async fn find_by_username(&self, username: &Username) -> StoreResult<Option<User>>;
    /// The accounts with these usernames, in one read (unknown ones are left out).
    async fn find_by_usernames(&self, usernames: &[Username]) -> StoreResult<Vec<User>>;
    /// The account with this email.
    async fn find_by_email(&self, email: &Email) -> StoreResult<Option<User>>;
    /// Records when `user` was last online.
    async fn set_last_seen(&self, user: UserId, at: Timestamp) -> StoreResult<()>;
    /// The account whose username or email is `login` (already lowercased), with its hash.
    async fn find_credentials(&self, login: &str) -> StoreResult<Option<UserCredentials>>;
}
