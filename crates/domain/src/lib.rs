//! # confab-domain
//!
//! The chat model of Confab and the rules it obeys, with no I/O, no async and no framework:
//! users, conversations, members and roles, messages with their per-conversation `seq`, and the
//! validated value types every input passes through before it is trusted.
//!
//! Other teams embed this crate to share Confab's rules (what a valid username is, who may post,
//! how unread counts are computed) without taking any of its infrastructure.
//!
//! ```
//! use confab_domain::{Username, MessageBody};
//!
//! let name = Username::parse("Alice_42").unwrap();
//! assert_eq!(name.as_str(), "alice_42");
//! assert!(MessageBody::parse("   ").is_err());
//! ```
#![deny(missing_docs)]

mod conversation;
mod deleted_seqs;
mod error;
mod ids;
mod message;
mod seq;
mod user;
mod values;

pub use conversation::{Conversation, ConversationKind, DirectPair, Member, Role};
pub use deleted_seqs::DeletedSeqs;
pub use error::{ValidationError, ValidationErrors};
pub use ids::{ConversationId, MessageId, UserId};
pub use message::{Message, MessageKind};
pub use seq::Seq;
pub use user::User;
pub use values::{ClientMsgId, DisplayName, Email, GroupName, MessageBody, Password, Username};

/// Instants in Confab are UTC timestamps.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
