//! # confab-realtime
//!
//! The WebSocket side of Confab: one socket per device, the [`Hub`] that knows which sockets
//! belong to which user on this instance, and [`InProcessPublisher`], the `EventPublisher` that
//! fans committed events out to them.
//!
//! Fan-out serializes each event once and hands the same bytes to every socket, each of which
//! has a bounded outbound queue: a client too slow to drain it is disconnected rather than
//! allowed to grow the server's memory.

mod deliver;
mod hub;
mod interest;
mod limits;
mod presence;
mod publisher;
mod sequencer;
mod session;

pub use deliver::deliver;
pub use hub::{Hub, LocalSocket, Outbound};
pub use interest::{Interest, NoInterest};
pub use limits::InProcessRateLimiter;
pub use presence::InProcessPresence;
pub use publisher::InProcessPublisher;
pub use session::{SocketConfig, SocketUpgrade, start_socket};
