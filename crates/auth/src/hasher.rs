use argon2::Argon2;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use async_trait::async_trait;
use confab_app::AppError;
use confab_app::ports::PasswordHasher;
use confab_domain::Password;

/// Argon2id with the crate's recommended parameters; the salt is made per hash.
#[derive(Debug, Clone, Copy, Default)]
pub struct Argon2Hasher;

/// Hashing takes tens of milliseconds of CPU and 19 MiB of memory by design. It runs on a
/// pool of one thread per core, never on the threads that serve sockets. A fixed pool, not
/// tokio's blocking pool: the allocator keeps a freed 19 MiB block in each thread's arena, so
/// hashing on whichever blocking thread is free grew the server by that much per thread (seen
/// with the load tool: 20 signups, +370 MB). With a fixed pool the cost is paid once per core.
static HASHING: std::sync::LazyLock<Option<rayon::ThreadPool>> = std::sync::LazyLock::new(|| {
    rayon::ThreadPoolBuilder::new()
        .num_threads(std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get))
        .thread_name(|i| format!("argon2-{i}"))
        .build()
        .ok()
});

async fn off_the_async_threads<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    let Some(pool) = HASHING.as_ref() else {
        // No pool could be started (no threads left): the blocking pool still works.
        return tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AppError::Internal(Box::new(e)))?;
    };
    let (done, result) = tokio::sync::oneshot::channel();
    pool.spawn(move || {
        let _ = done.send(work());
    });
    result.await.map_err(|e| AppError::Internal(Box::new(e)))?
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<String, AppError> {
        let password = password.expose().to_owned();
        off_the_async_threads(move || {
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| AppError::Internal(e.to_string().into()))
        })
        .await
    }

    async fn verify(&self, password: &str, hash: &str) -> Result<bool, AppError> {
        let (password, hash) = (password.to_owned(), hash.to_owned());
        off_the_async_threads(move || {
            match Argon2::default().verify_password(password.as_bytes(), hash.as_str()) {
                Ok(()) => Ok(true),
                Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
                Err(e) => Err(AppError::Internal(e.to_string().into())),
            }
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let password = Password::parse("correct horse battery").unwrap();
        let hash = Argon2Hasher.hash(&password).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            Argon2Hasher
                .verify("correct horse battery", &hash)
                .await
                .unwrap()
        );
        assert!(
            !Argon2Hasher
                .verify("wrong horse battery", &hash)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn the_same_password_hashes_differently_each_time() {
        let password = Password::parse("correct horse battery").unwrap();
        assert_ne!(
            Argon2Hasher.hash(&password).await.unwrap(),
            Argon2Hasher.hash(&password).await.unwrap()
        );
    }

    #[tokio::test]
    async fn a_corrupt_stored_hash_is_an_internal_error_not_a_match() {
        assert!(matches!(
            Argon2Hasher.verify("anything", "not-a-hash").await,
            Err(AppError::Internal(_))
        ));
    }
}
