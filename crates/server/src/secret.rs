//! The development signing secret: generated once and kept in the data directory, so that
//! tokens survive a restart of a server started with no configuration at all.

use std::path::Path;

use crate::ConfigError;

const FILE_NAME: &str = "jwt_secret";

pub(crate) fn load_or_generate(data_dir: &Path) -> Result<Vec<u8>, ConfigError> {
    let path = data_dir.join(FILE_NAME);
    let io = |source| ConfigError::DataDir {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let secret = hex::decode(text.trim()).map_err(|e| ConfigError::Invalid {
                name: "jwt_secret file",
                why: format!(
                    "{} is not hex: {e}; delete it to generate a new one",
                    path.display()
                ),
            })?;
            if secret.len() < confab_auth::MIN_SECRET_LEN {
                return Err(ConfigError::Invalid {
                    name: "jwt_secret file",
                    why: format!(
                        "{} holds too short a secret; delete it to generate a new one",
                        path.display()
                    ),
                });
            }
            tracing::warn!(path = %path.display(), "using the generated JWT secret in the data directory; set CONFAB_JWT_SECRET in production");
            Ok(secret)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(io)?;
            let mut secret = vec![0u8; 64];
            getrandom::fill(&mut secret).map_err(|e| io(std::io::Error::other(e.to_string())))?;
            write_private(&path, hex::encode(&secret).as_bytes()).map_err(io)?;
            tracing::warn!(path = %path.display(), "no CONFAB_JWT_SECRET set: generated one and saved it in the data directory; set CONFAB_JWT_SECRET in production");
            Ok(secret)
        }
        Err(error) => Err(io(error)),
    }
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_generated_once_then_reused() {
        let dir = std::env::temp_dir().join(format!("confab-secret-{}", uuid_like()));
        let first = load_or_generate(&dir).unwrap();
        let second = load_or_generate(&dir).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(first, second);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_corrupt_secret_file_stops_start_up_with_a_clear_message() {
        let dir = std::env::temp_dir().join(format!("confab-secret-{}", uuid_like()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(FILE_NAME), "zz").unwrap();
        let error = load_or_generate(&dir).unwrap_err().to_string();
        assert!(error.contains("not hex"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn uuid_like() -> String {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).unwrap();
        hex::encode(bytes)
    }
}
