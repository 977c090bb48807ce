//! Logging: `tracing` to stdout, as text or JSON, filtered by `CONFAB_LOG`.

use tracing_subscriber::EnvFilter;

use crate::{ConfigError, LogFormat};

/// Starts logging. sqlx logs every statement at INFO, and tracing-actix-web repeats every 4xx
/// answer at WARN (our own request line already has the status): both are held back unless
/// the filter names them.
pub fn init(filter: &str, format: LogFormat) -> Result<(), ConfigError> {
    let mut directives = filter.to_owned();
    for (target, level) in [("sqlx", "warn"), ("tracing_actix_web", "error")] {
        if !filter.contains(target) {
            directives.push_str(&format!(",{target}={level}"));
        }
    }
    let filter = EnvFilter::try_new(&directives).map_err(|e| ConfigError::Invalid {
        name: "CONFAB_LOG",
        why: e.to_string(),
    })?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already initialised (by an earlier call in the same process, as in tests) is fine.
    let _ = result;
    Ok(())
}
