//! OpenAPI schemas for the domain's enums, which carry serde but (being framework-free) no
//! utoipa derive: each is a string with its allowed values, listed from the domain's own names.

use confab_domain::{ConversationKind, MessageKind, Role};
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};

fn string_enum(description: &str, values: &[&'static str]) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .description(Some(description))
        .enum_values(Some(values.iter().copied()))
}

pub(crate) fn message_kind() -> ObjectBuilder {
    let all = [MessageKind::Text, MessageKind::Image, MessageKind::System];
    string_enum("What a message carries.", &all.map(MessageKind::as_str))
}

pub(crate) fn conversation_kind() -> ObjectBuilder {
    let all = [
        ConversationKind::Direct,
        ConversationKind::Group,
        ConversationKind::Room,
    ];
    string_enum(
        "Direct chat, private group or public room.",
        &all.map(ConversationKind::as_str),
    )
}

pub(crate) fn role() -> ObjectBuilder {
    let all = [Role::Owner, Role::Admin, Role::Moderator, Role::Member];
    string_enum(
        "A member's standing, most powerful first.",
        &all.map(Role::as_str),
    )
}
