use async_trait::async_trait;
use confab_domain::UserId;

/// Tells a shared bus which users this instance has sockets for, so that it subscribes to
/// what it can deliver and nothing else. Calls are paired: every `arrive` is followed by one
/// `leave` for the same user; implementations count.
#[async_trait]
pub trait Interest: Send + Sync {
    /// A socket of `user` opened here. Returns once events for them will reach this instance.
    async fn arrive(&self, user: UserId);
    /// A socket of `user` here closed.
    async fn leave(&self, user: UserId);
}

/// A single instance needs no subscriptions: every event is delivered in-process.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoInterest;

#[async_trait]
impl Interest for NoInterest {
    async fn arrive(&self, _user: UserId) {}
    async fn leave(&self, _user: UserId) {}
}
