use async_trait::async_trait;
use confab_domain::UserId;

use super::StoreResult;
use crate::SessionId;

/// Who is online: a user is online while any of their sockets, on any instance, is connected.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait PresenceStore: Send + Sync {
    /// Records a new socket of `user`; true when it is their first (they just came online).
    async fn connected(&self, user: UserId, session: SessionId) -> StoreResult<bool>;
    /// Forgets a socket of `user`; true when it was their last (they just went offline).
    async fn disconnected(&self, user: UserId, session: SessionId) -> StoreResult<bool>;
    /// How many sockets `user` has open now, on every instance.
    async fn sockets(&self, user: UserId) -> StoreResult<usize>;
    /// Those of `users` who are online now.
    async fn online(&self, users: &[UserId]) -> StoreResult<Vec<UserId>>;
    /// Users whose last socket vanished without saying goodbye (its instance died) since the
    /// last call; each is returned once, by one instance. A store that lives in one process
    /// has none: its sockets always say goodbye.
    async fn expired(&self) -> StoreResult<Vec<UserId>> {
        Ok(Vec::new())
    }
}
