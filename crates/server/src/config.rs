//! Configuration: every setting is a flag and a `CONFAB_*` environment variable, checked at
//! start so that a bad value stops the server with a clear message instead of failing later.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use confab_app::ports::RateLimit;
use confab_app::{ConnectionLimits, SendLimits};
use confab_realtime::SocketConfig;
use confab_redis::RedisSettings;

/// `confab`: a real-time chat server.
#[derive(Debug, Parser)]
#[command(
    name = "confab",
    version,
    about = "Confab: a real-time chat server (REST + WebSocket)"
)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub settings: Settings,
    /// What to do; `serve` when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Apply pending migrations and serve HTTP and WebSocket clients.
    Serve,
    /// Manage the database schema.
    Migrate {
        /// up, down or status.
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Write the API specifications (openapi.json, asyncapi.json) generated from the code.
    Openapi {
        /// Directory to write them to.
        #[arg(long, default_value = "openapi")]
        out_dir: PathBuf,
    },
}

/// Schema operations.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the most recent migration.
    Down,
    /// List migrations and whether each is applied.
    Status,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Raw settings, from flags or the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Address to listen on.
    #[arg(
        long,
        env = "CONFAB_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: String,
    /// Directory for the SQLite file and the generated development secret.
    #[arg(long, env = "CONFAB_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; SQLite in the data directory when absent.
    #[arg(
        long,
        env = "CONFAB_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<String>,
    /// Secret that signs access tokens, at least 32 bytes; generated and kept in the data
    /// directory when absent (fine for one instance, not for several).
    #[arg(long, env = "CONFAB_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,
    /// Lifetime of access tokens, in seconds.
    #[arg(
        long,
        env = "CONFAB_ACCESS_TTL_SECS",
        default_value_t = 900,
        global = true
    )]
    pub access_ttl_secs: u64,
    /// Interval of WebSocket heartbeats, in seconds; a socket silent for two is closed.
    #[arg(
        long,
        env = "CONFAB_HEARTBEAT_SECS",
        default_value_t = 25,
        global = true
    )]
    pub heartbeat_secs: u64,
    /// Messages a user may send per minute in direct conversations, all together.
    #[arg(
        long,
        env = "CONFAB_RATE_DIRECT_PER_MIN",
        default_value_t = 20,
        global = true
    )]
    pub rate_direct_per_min: u32,
    /// Messages a user may send per minute in groups and rooms, all together.
    #[arg(
        long,
        env = "CONFAB_RATE_GROUP_PER_MIN",
        default_value_t = 30,
        global = true
    )]
    pub rate_group_per_min: u32,
    /// Sockets one user may hold at once (all devices, all instances).
    #[arg(
        long,
        env = "CONFAB_MAX_SOCKETS_PER_USER",
        default_value_t = 10,
        global = true
    )]
    pub max_sockets_per_user: usize,
    /// WebSocket connection attempts per client address per minute.
    #[arg(
        long,
        env = "CONFAB_RATE_CONNECT_PER_MIN",
        default_value_t = 60,
        global = true
    )]
    pub rate_connect_per_min: u32,
    /// Redis, for running several instances as one: `redis://…`. In-process when absent.
    #[arg(long, env = "CONFAB_REDIS_URL", hide_env_values = true, global = true)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel.
    #[arg(
        long,
        env = "CONFAB_REDIS_PREFIX",
        default_value = "confab",
        global = true
    )]
    pub redis_prefix: String,
    /// This instance's id (tags its events and Redis connections); generated when absent.
    #[arg(long, env = "CONFAB_INSTANCE_ID", global = true)]
    pub instance_id: Option<String>,
    /// With Redis: how long after its instance dies a user's socket stops counting as online.
    #[arg(
        long,
        env = "CONFAB_PRESENCE_TTL_SECS",
        default_value_t = 30,
        global = true
    )]
    pub presence_ttl_secs: u64,
    /// Log filter, e.g. `info` or `confab=debug,actix_web=info`.
    #[arg(long, env = "CONFAB_LOG", default_value = "info", global = true)]
    pub log: String,
    /// Log format.
    #[arg(
        long,
        env = "CONFAB_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
}

/// A setting that cannot work, said so that an operator can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value is malformed or out of range.
    #[error("invalid {name}: {why}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The data directory or the secret in it could not be used.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Validated configuration of a running server.
#[derive(Clone)]
pub struct Config {
    /// Where to listen.
    pub bind: SocketAddr,
    /// The database to use.
    pub database_url: String,
    /// Secret for access tokens.
    pub jwt_secret: Vec<u8>,
    /// Lifetime of access tokens.
    pub access_ttl: Duration,
    /// Limits of each socket.
    pub socket: SocketConfig,
    /// How fast each user may send.
    pub send_limits: SendLimits,
    /// Who may open sockets.
    pub connection_limits: ConnectionLimits,
    /// Redis, when instances share users; in-process fan-out, presence and limits otherwise.
    pub redis: Option<RedisSettings>,
    /// With Redis: how long a dead instance's sockets keep counting as online.
    pub presence_ttl: Duration,
}

impl Config {
    /// A single-instance configuration with every other setting at its default: what
    /// `confab serve` runs with when only these are given.
    pub fn single(bind: SocketAddr, database_url: String, jwt_secret: Vec<u8>) -> Self {
        Self {
            bind,
            database_url,
            jwt_secret,
            access_ttl: Duration::from_secs(900),
            socket: SocketConfig::default(),
            send_limits: SendLimits::default(),
            connection_limits: ConnectionLimits::default(),
            redis: None,
            presence_ttl: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret and the database URL (which may hold a password) are never printed.
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("access_ttl", &self.access_ttl)
            .field("socket", &self.socket)
            .field("send_limits", &self.send_limits)
            .field("redis", &self.redis.is_some())
            .field("presence_ttl", &self.presence_ttl)
            .finish_non_exhaustive()
    }
}

fn invalid(name: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        why: why.into(),
    }
}

impl Settings {
    /// The database URL: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> Result<String, ConfigError> {
        match &self.database_url {
            Some(url)
                if url.starts_with("sqlite:")
                    || url.starts_with("postgres://")
                    || url.starts_with("postgresql://") =>
            {
                Ok(url.clone())
            }
            Some(_) => Err(invalid(
                "CONFAB_DATABASE_URL",
                "must start with sqlite:, postgres:// or postgresql://",
            )),
            None => {
                std::fs::create_dir_all(&self.data_dir).map_err(|source| ConfigError::DataDir {
                    path: self.data_dir.clone(),
                    source,
                })?;
                Ok(format!(
                    "sqlite://{}?mode=rwc",
                    self.data_dir.join("confab.db").display()
                ))
            }
        }
    }

    /// Validates every setting a server needs.
    pub fn server_config(&self) -> Result<Config, ConfigError> {
        let bind = self.bind.parse::<SocketAddr>().map_err(|e| {
            invalid(
                "CONFAB_BIND",
                format!(
                    "{:?} is not an address like 127.0.0.1:8080 ({e})",
                    self.bind
                ),
            )
        })?;
        if !(60..=86_400).contains(&self.access_ttl_secs) {
            return Err(invalid(
                "CONFAB_ACCESS_TTL_SECS",
                "must be between 60 and 86400",
            ));
        }
        for (name, value) in [
            ("CONFAB_RATE_DIRECT_PER_MIN", self.rate_direct_per_min),
            ("CONFAB_RATE_GROUP_PER_MIN", self.rate_group_per_min),
            ("CONFAB_RATE_CONNECT_PER_MIN", self.rate_connect_per_min),
            (
                "CONFAB_MAX_SOCKETS_PER_USER",
                u32::try_from(self.max_sockets_per_user).unwrap_or(u32::MAX),
            ),
        ] {
            if value == 0 {
                return Err(invalid(name, "must be at least 1"));
            }
        }
        if !(3..=3_600).contains(&self.presence_ttl_secs) {
            return Err(invalid(
                "CONFAB_PRESENCE_TTL_SECS",
                "must be between 3 and 3600",
            ));
        }
        let redis = match &self.redis_url {
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                Some(RedisSettings {
                    url: url.clone(),
                    prefix: self.redis_prefix.clone(),
                    instance_id: self
                        .instance_id
                        .clone()
                        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string()),
                })
            }
            Some(_) => {
                return Err(invalid(
                    "CONFAB_REDIS_URL",
                    "must start with redis:// or rediss://",
                ));
            }
            None => None,
        };
        if self.redis_prefix.is_empty() || self.redis_prefix.contains(char::is_whitespace) {
            return Err(invalid("CONFAB_REDIS_PREFIX", "must be a non-empty word"));
        }
        if !(1..=3_600).contains(&self.heartbeat_secs) {
            return Err(invalid(
                "CONFAB_HEARTBEAT_SECS",
                "must be between 1 and 3600",
            ));
        }
        let jwt_secret = match &self.jwt_secret {
            Some(secret) if secret.len() < confab_auth::MIN_SECRET_LEN => {
                return Err(invalid(
                    "CONFAB_JWT_SECRET",
                    format!(
                        "must be at least {} bytes long",
                        confab_auth::MIN_SECRET_LEN
                    ),
                ));
            }
            Some(secret) => secret.as_bytes().to_vec(),
            None => crate::secret::load_or_generate(&self.data_dir)?,
        };
        Ok(Config {
            bind,
            database_url: self.database_url()?,
            jwt_secret,
            access_ttl: Duration::from_secs(self.access_ttl_secs),
            socket: SocketConfig {
                heartbeat: Duration::from_secs(self.heartbeat_secs),
                ..SocketConfig::default()
            },
            send_limits: SendLimits {
                direct: RateLimit::per_minute(self.rate_direct_per_min),
                group: RateLimit::per_minute(self.rate_group_per_min),
            },
            connection_limits: ConnectionLimits {
                sockets_per_user: self.max_sockets_per_user,
                attempts_per_address: RateLimit::per_minute(self.rate_connect_per_min),
            },
            redis,
            presence_ttl: Duration::from_secs(self.presence_ttl_secs),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Settings {
        let mut argv = vec!["confab"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().settings
    }

    #[test]
    fn bad_values_are_refused_with_the_variable_named() {
        let dir = std::env::temp_dir();
        let dir = dir.to_str().unwrap();
        let cases: [(&[&str], &str); 7] = [
            (&["--bind", "localhost"], "CONFAB_BIND"),
            (&["--access-ttl-secs", "5"], "CONFAB_ACCESS_TTL_SECS"),
            (&["--heartbeat-secs", "0"], "CONFAB_HEARTBEAT_SECS"),
            (&["--jwt-secret", "short"], "CONFAB_JWT_SECRET"),
            (&["--database-url", "mysql://x"], "CONFAB_DATABASE_URL"),
            (
                &["--rate-direct-per-min", "0"],
                "CONFAB_RATE_DIRECT_PER_MIN",
            ),
            (&["--redis-url", "http://localhost"], "CONFAB_REDIS_URL"),
        ];
        for (args, name) in cases {
            let mut all = vec!["--data-dir", dir];
            all.extend_from_slice(args);
            let error = settings(&all).server_config().unwrap_err().to_string();
            assert!(error.contains(name), "{args:?}: {error}");
        }
    }

    #[test]
    fn settings_given_after_the_subcommand_apply_too() {
        let cli = Cli::try_parse_from(["confab", "serve", "--bind", "0.0.0.0:9000"]).unwrap();
        assert_eq!(cli.settings.bind, "0.0.0.0:9000");
        assert!(matches!(cli.command, Some(Command::Serve)));
    }

    #[test]
    fn a_log_format_other_than_text_or_json_is_refused() {
        assert!(Cli::try_parse_from(["confab", "--log-format", "xml"]).is_err());
    }
}
