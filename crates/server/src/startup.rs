//! Wiring: adapters built from the configuration, handed to the services, mounted on the HTTP
//! server. Reading this file shows the whole system.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use async_trait::async_trait;
use confab_app::ports::{EventPublisher, PresenceStore, Probe, RateLimiter, SystemClock};
use confab_app::{Ports, Services};
use confab_auth::{Argon2Hasher, JwtIssuer};
use confab_http::HttpState;
use confab_persistence::{
    DatabaseConnection, SqlConversationRepository, SqlMessageRepository, SqlUserRepository,
};
use confab_realtime::{Hub, InProcessPresence, InProcessPublisher, InProcessRateLimiter};
use confab_redis::{
    RedisBus, RedisConnection, RedisPresence, RedisProbe, RedisRateLimiter, RedisRoutes,
    RedisSettings,
};

use crate::Config;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be reached or migrated.
    #[error("database: {0}")]
    Database(#[from] confab_persistence::DbErr),
    /// Redis was configured but could not be reached.
    #[error("redis: {0}")]
    Redis(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A configured server, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    hub: Arc<Hub>,
    /// How long a shutdown waits for the sockets to write their close frames.
    drain: std::time::Duration,
    /// Background work that lives as long as the server: stopped with it.
    tasks: Tasks,
}

/// Background tasks, aborted when dropped, so that a stopped server leaves nothing running.
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// What instances share, or keep to themselves when alone: fan-out, presence, rate limits.
struct SharedState {
    hub: Arc<Hub>,
    events: Arc<dyn EventPublisher>,
    presence: Arc<dyn PresenceStore>,
    limiter: Arc<dyn RateLimiter>,
    probe: Option<Arc<dyn Probe>>,
}

impl SharedState {
    fn in_process() -> Self {
        let hub = Arc::new(Hub::new());
        Self {
            events: Arc::new(InProcessPublisher::new(hub.clone())),
            hub,
            presence: Arc::new(InProcessPresence::new()),
            limiter: Arc::new(InProcessRateLimiter::new()),
            probe: None,
        }
    }

    async fn redis(
        settings: &RedisSettings,
        presence_ttl: std::time::Duration,
        tasks: &mut Vec<tokio::task::JoinHandle<()>>,
    ) -> Result<Self, StartupError> {
        let connection = RedisConnection::connect(settings)
            .await
            .map_err(|e| StartupError::Redis(e.to_string()))?;
        let routes = RedisRoutes::new(connection.clone(), presence_ttl);
        tasks.push(routes.keep_alive());
        let hub = Arc::new(Hub::with_interest(Arc::new(routes)));
        let bus = RedisBus::new(connection.clone(), hub.clone());
        tasks.push(
            bus.listen()
                .await
                .map_err(|e| StartupError::Redis(e.to_string()))?,
        );
        let presence = RedisPresence::new(connection.clone(), presence_ttl);
        tasks.push(presence.keep_alive());
        tracing::info!(
            instance_id = connection.instance_id(),
            "sharing fan-out, presence and rate limits through Redis"
        );
        Ok(Self {
            hub,
            events: Arc::new(bus),
            presence: Arc::new(presence),
            limiter: Arc::new(RedisRateLimiter::new(connection.clone())),
            probe: Some(Arc::new(RedisProbe::new(connection))),
        })
    }
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// `/readyz` asks the database for a round trip.
struct DatabaseProbe(DatabaseConnection);

#[async_trait]
impl Probe for DatabaseProbe {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> Result<(), String> {
        confab_persistence::ping(&self.0)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Application {
    /// Connects to the database, applies pending migrations, builds every adapter and service,
    /// and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let db = confab_persistence::connect(&config.database_url).await?;
        confab_persistence::migrate_up(&db).await?;

        let mut probes: Vec<Arc<dyn Probe>> = vec![Arc::new(DatabaseProbe(db.clone()))];
        let mut tasks = Vec::new();
        let shared = match &config.redis {
            None => SharedState::in_process(),
            Some(settings) => {
                let shared = SharedState::redis(settings, config.presence_ttl, &mut tasks).await?;
                probes.push(
                    shared
                        .probe
                        .clone()
                        .ok_or(StartupError::Redis("no probe".into()))?,
                );
                shared
            }
        };
        let hub = shared.hub;
        let services = Services::new(Ports {
            users: Arc::new(SqlUserRepository::new(db.clone())),
            conversations: Arc::new(SqlConversationRepository::new(db.clone())),
            messages: Arc::new(SqlMessageRepository::new(db.clone())),
            events: shared.events,
            presence: shared.presence,
            limiter: shared.limiter,
            send_limits: config.send_limits,
            connection_limits: config.connection_limits,
            hasher: Arc::new(Argon2Hasher),
            tokens: Arc::new(JwtIssuer::new(
                &config.jwt_secret,
                chrono::Duration::seconds(
                    i64::try_from(config.access_ttl.as_secs()).unwrap_or(i64::MAX),
                ),
            )),
            clock: Arc::new(SystemClock),
        });
        // Every instance sweeps: users whose sockets died with another instance go offline.
        let sweeper = services.presence.clone();
        let sweep_every = config.presence_ttl / 3;
        tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(sweep_every);
            loop {
                every.tick().await;
                if let Err(error) = sweeper.sweep().await {
                    tracing::warn!(%error, "could not sweep expired presence");
                }
            }
        }));
        let state = HttpState {
            services,
            hub: hub.clone(),
            socket: config.socket,
            probes,
        };

        let listener = TcpListener::bind(config.bind).map_err(|source| StartupError::Bind {
            addr: config.bind,
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: config.bind,
                source,
            })?
            .port();
        // Signals are ours (see `run_until_stopped`): sockets must be told to go before the
        // workers stop, or clients see a dropped connection instead of a close frame.
        let drain = config.socket.write_timeout;
        let server = confab_http::serve(listener, state).map_err(|source| StartupError::Bind {
            addr: config.bind,
            source,
        })?;
        tracing::info!(address = %config.bind, port, "confab is listening");
        Ok(Self {
            port,
            server,
            hub,
            drain,
            tasks: Tasks(tasks),
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is told to stop (SIGINT or SIGTERM). Then it drains: stops
    /// accepting, closes every socket with 1001 (going away) so clients reconnect at once, and
    /// finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let hub = self.hub;
        let drain = self.drain;
        let _tasks = self.tasks;
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!(sockets = hub.total_sockets(), "shutting down");
            hub.close_all();
            // A socket's connection left the HTTP server when it was upgraded, so stopping the
            // workers would not wait for it: wait here until every socket has said goodbye.
            let deadline = tokio::time::Instant::now() + drain;
            while hub.total_sockets() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            handle.stop(true).await;
        });
        self.server.await
    }
}

/// SIGINT (Ctrl-C) or, on Unix, SIGTERM (what systemd, Kubernetes and docker send).
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
