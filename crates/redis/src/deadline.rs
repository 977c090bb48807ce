//! Time as the deadline scripts see it. Presence and routes are entries with a deadline, in
//! milliseconds since the epoch on the clock of the instance that wrote them; each key lives
//! ten TTLs past its last renewal, only so that Redis forgets what nobody renews any more.

use std::time::Duration;

/// Now, in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `ttl` in milliseconds.
pub(crate) fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

/// How long a key is kept after its last renewal: ten TTLs.
pub(crate) fn keep_ms(ttl: Duration) -> i64 {
    ttl_ms(ttl).saturating_mul(10)
}
