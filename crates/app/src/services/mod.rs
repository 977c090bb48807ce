//! One service per capability.

pub(crate) mod auth;
pub(crate) mod conversations;
pub(crate) mod messages;
