//! # confab-redis
//!
//! Redis adapters (fred) that let any number of `confab` instances behave as one server:
//!
//! - [`RedisBus`]: fan-out between instances over pub/sub, one channel per user. An instance
//!   subscribes only to the users it has sockets for ([`RedisSubscriptions`], counted), each
//!   event is serialized once and tagged with its origin, which ignores its own echo.
//! - [`RedisPresence`]: who is online, as per-connection entries with a deadline that each
//!   instance keeps pushing forward; an instance that dies stops doing so, and its users go
//!   offline for everyone when their deadlines pass.
//! - [`RedisRateLimiter`]: counters shared by all instances, counted atomically by a script.
//! - [`RedisProbe`]: `/readyz`'s view of Redis.

mod bus;
mod connection;
mod limiter;
mod presence;
mod probe;

pub use bus::{RedisBus, RedisSubscriptions};
pub use connection::{RedisConnection, RedisError, RedisSettings};
pub use limiter::RedisRateLimiter;
pub use presence::RedisPresence;
pub use probe::RedisProbe;
