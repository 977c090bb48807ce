//! # confab-redis
//!
//! Redis adapters (fred) that let any number of `confab` instances behave as one server:
//!
//! - [`RedisBus`]: fan-out between instances over pub/sub, one channel per instance. Each
//!   user's routes ([`RedisRoutes`]) name the instances that hold their sockets, with
//!   deadlines like presence's; each event goes once to each other instance that holds
//!   sockets of its recipients, addressed to those recipients only.
//! - [`RedisPresence`]: who is online, as per-connection entries with a deadline that each
//!   instance keeps pushing forward; an instance that dies stops doing so, and its users go
//!   offline for everyone when their deadlines pass.
//! - [`RedisRateLimiter`]: counters shared by all instances, counted atomically by a script;
//!   a sender well under their limit is answered from this instance's picture of the count
//!   and counted in the background.
//! - [`RedisProbe`]: `/readyz`'s view of Redis.

mod allowance;
mod bus;
mod connection;
mod deadline;
mod limiter;
mod presence;
mod probe;
mod routes;

pub use bus::RedisBus;
pub use connection::{RedisConnection, RedisError, RedisSettings};
pub use limiter::RedisRateLimiter;
pub use presence::RedisPresence;
pub use probe::RedisProbe;
pub use routes::RedisRoutes;
