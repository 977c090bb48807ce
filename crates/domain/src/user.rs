use crate::{DisplayName, Email, Timestamp, UserId, Username};

/// A user account as the rest of the system sees it. The password hash never leaves storage
/// through this type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The account's id.
    pub id: UserId,
    /// Unique, lowercase handle.
    pub username: Username,
    /// The name shown in clients.
    pub display_name: DisplayName,
    /// The account's email, unique; shown only to its owner.
    pub email: Email,
    /// When the account was created.
    pub created_at: Timestamp,
}
