//! # confab-server
//!
//! The `confab` binary as a library: typed configuration, the wiring of adapters to services,
//! and the running server. `main` parses the command line and calls into here; the black-box
//! tests start [`Application`] on port 0 with a fresh database the same way.

pub mod config;
mod secret;
pub mod startup;
pub mod telemetry;

pub use config::{Cli, Command, Config, ConfigError, LogFormat, MigrateAction, Settings};
pub use startup::{Application, StartupError};

/// Installs ring as the process's TLS crypto provider. sqlx and fred use ring; a second
/// provider linked in by any dependency would make the first TLS handshake panic, so the choice
/// is made explicitly, once, before anything connects.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
