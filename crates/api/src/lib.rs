//! # confab-api
//!
//! The wire contract of Confab: every JSON body of the REST API and every WebSocket frame, as
//! serde types with OpenAPI schemas. The server serializes them, and clients (the black-box
//! tests, the load tool, other Rust clients) deserialize the very same types, so the contract
//! cannot drift between them.
//!
//! It also holds the one table that turns an [`confab_app::AppError`] into an error code and
//! HTTP status, used by REST and WebSocket alike.
#![deny(missing_docs)]

mod asyncapi;
mod auth;
mod conversations;
mod error;
mod messages;
mod schema;
pub mod ws;

pub use asyncapi::asyncapi;
pub use auth::{LoginRequest, Session, SignupRequest, User};
pub use conversations::{
    Conversation, ConversationUpdate, CreateGroupRequest, MarkReadRequest, Member, ReadState,
};
pub use error::{ErrorBody, ErrorCode, ErrorDetail, Health};
pub use messages::{EditMessageRequest, HistoryQuery, Message, MessagePage, SendMessageRequest};
