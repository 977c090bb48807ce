use std::time::Duration;

use async_trait::async_trait;
use confab_app::ports::Probe;
use fred::prelude::ClientLike;

use crate::RedisConnection;

/// Whether Redis answers. Not critical: without it an instance still stores, acknowledges and
/// delivers locally, so `/readyz` reports it degraded rather than down.
#[derive(Debug, Clone)]
pub struct RedisProbe {
    connection: RedisConnection,
}

impl RedisProbe {
    /// A probe of `connection`.
    pub fn new(connection: RedisConnection) -> Self {
        Self { connection }
    }
}

#[async_trait]
impl Probe for RedisProbe {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn critical(&self) -> bool {
        false
    }

    async fn check(&self) -> Result<(), String> {
        let ping = self.connection.client.ping::<String>(None);
        match tokio::time::timeout(Duration::from_secs(2), ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("no answer within 2 s".into()),
        }
    }
}
