use async_trait::async_trait;

/// A dependency whose reachability decides whether this instance is ready for traffic
/// (`/readyz`): the database, later the Redis bus.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait Probe: Send + Sync {
    /// A short name for reports (`database`, `redis`).
    fn name(&self) -> &'static str;
    /// Whether the instance is unusable without it (the database) or only degraded (a bus).
    fn critical(&self) -> bool {
        true
    }
    /// `Ok` when reachable; otherwise why not, in words fit for an operator.
    async fn check(&self) -> Result<(), String>;
}
