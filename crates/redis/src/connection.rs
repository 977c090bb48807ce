use std::sync::Arc;
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::interfaces::ClientInterface;
use fred::prelude::{Builder, Client, ClientLike, Config, ReconnectPolicy};

pub use fred::error::Error as RedisError;

/// Where Redis is and how this instance appears in it.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://…` or `rediss://…`.
    pub url: String,
    /// Prefix of every key and channel, so several deployments (or test runs) can share one
    /// Redis.
    pub prefix: String,
    /// This instance's id: tags the events it publishes, names its connections.
    pub instance_id: String,
}

/// One instance's connections to Redis: one for commands and publishing, one for
/// subscriptions. Both reconnect forever with backoff; subscriptions are restored after each
/// reconnect.
#[derive(Clone)]
pub struct RedisConnection {
    pub(crate) client: Client,
    pub(crate) subscriber: SubscriberClient,
    prefix: Arc<str>,
    instance_id: Arc<str>,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection")
            .field("prefix", &self.prefix)
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// Connects both clients. Fails when Redis cannot be reached now; once connected, losing
    /// Redis later only degrades the instance until it comes back.
    pub async fn connect(settings: &RedisSettings) -> Result<Self, RedisError> {
        let config = Config::from_url(&settings.url)?;
        let mut builder = Builder::from_config(config);
        builder
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .with_connection_config(|connection| {
                connection.connection_timeout = Duration::from_secs(5);
                connection.internal_command_timeout = Duration::from_secs(5);
                // Commands from many sockets share one connection: without TCP_NODELAY each
                // small write waits for the previous one's ACK.
                connection.tcp.nodelay = Some(true);
            })
            .with_performance_config(|performance| {
                performance.default_command_timeout = Duration::from_secs(5);
                // Room for bursts of pub/sub messages before a slow reader lags.
                performance.broadcast_channel_capacity = 8192;
            });
        let client = builder.build()?;
        let subscriber = builder.build_subscriber_client()?;
        client.init().await?;
        subscriber.init().await?;
        // Named, so that an operator can tell instances apart in `CLIENT LIST`.
        let name = format!("confab-{}", settings.instance_id);
        let _: () = client.client_setname(name.as_str()).await?;
        let _: () = subscriber.client_setname(format!("{name}-sub")).await?;
        let _resubscribe = subscriber.manage_subscriptions();
        Ok(Self {
            client,
            subscriber,
            prefix: Arc::from(settings.prefix.as_str()),
            instance_id: Arc::from(settings.instance_id.as_str()),
        })
    }

    /// The full name of a key or channel: `prefix:name`.
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    /// This instance's id.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }
}
