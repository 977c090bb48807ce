//! One service per capability.

mod activity;
pub(crate) mod auth;
pub(crate) mod conversations;
mod kinds;
pub(crate) mod messages;
pub(crate) mod presence;
