//! sea-orm entities, one per table of `confab-migration`. They mirror the schema and nothing
//! more: the repositories turn them into domain types (see `convert`), so nothing outside this
//! crate needs them except tests that set up unusual rows.

pub mod conversation_members;
pub mod conversations;
pub mod messages;
pub mod users;
