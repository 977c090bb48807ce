//! The AsyncAPI 3 document of the WebSocket, generated from the frame types themselves: the
//! schema of each message is the schema of a variant of [`ClientFrame`] or [`ServerFrame`],
//! the very enums that parse and serialize the frames, so the document cannot drift from the
//! protocol.

use serde_json::{Map, Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};

use crate::ws::{ClientFrame, ServerFrame};

/// Who sends a frame.
#[derive(Clone, Copy)]
enum Direction {
    Client,
    Server,
}

impl Direction {
    fn prefix(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
        }
    }
}

/// The AsyncAPI document, as JSON.
pub fn asyncapi(version: &str) -> Value {
    let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
    ClientFrame::schemas(&mut schemas);
    ServerFrame::schemas(&mut schemas);
    let mut components_schemas = Map::new();
    for (name, schema) in schemas {
        components_schemas.insert(name, to_json(&schema));
    }

    let mut messages = Map::new();
    let mut channel_messages = Map::new();
    let mut operations = Map::new();
    for (direction, schema) in [
        (Direction::Client, ClientFrame::schema()),
        (Direction::Server, ServerFrame::schema()),
    ] {
        let mut refs = Vec::new();
        for variant in variants(&to_json(&schema)) {
            let Some(frame_type) = frame_type(&variant) else {
                continue;
            };
            let key = format!("{}.{}", direction.prefix(), frame_type);
            let summary = variant.get("description").cloned().unwrap_or(Value::Null);
            messages.insert(
                key.clone(),
                json!({
                    "name": frame_type,
                    "title": frame_type,
                    "summary": summary,
                    "contentType": "application/json",
                    "payload": variant,
                }),
            );
            channel_messages.insert(
                key.clone(),
                json!({ "$ref": format!("#/components/messages/{key}") }),
            );
            refs.push(json!({ "$ref": format!("#/channels/socket/messages/{key}") }));
        }
        let (name, action, description) = match direction {
            Direction::Client => (
                "clientFrames",
                "receive",
                "Frames a client sends. Any may carry `ref`, which the answer (`ack`, `pong`, `sync.done` or `error`) repeats.",
            ),
            Direction::Server => (
                "serverFrames",
                "send",
                "Frames the server sends: answers, and events of the user's conversations.",
            ),
        };
        operations.insert(
            name.to_owned(),
            json!({
                "action": action,
                "channel": { "$ref": "#/channels/socket" },
                "summary": description,
                "messages": refs,
            }),
        );
    }

    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Confab WebSocket",
            "version": version,
            "description": "One WebSocket per device carries every conversation of its user. Every frame is a JSON text object with a `type`. On connect the server sends `hello`, the presence of online contacts, every message above the user's delivery cursor (bounded per conversation) as `message.new`, then `sync.done`. Per conversation, a socket receives messages in seq order, each once. Bad frames get an `error` frame and the socket stays open; a frame over 64 KiB closes it with 1009, a client silent for two heartbeat intervals with 1008, a client that does not drain its frames with 1008, a server shutting down with 1001.",
            "license": { "name": "MIT OR Apache-2.0" },
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:8080",
                "protocol": "ws",
                "pathname": "/api/v1/ws",
                "description": "A server started with `cargo run --release`.",
                "security": [
                    { "$ref": "#/components/securitySchemes/bearer" },
                    { "$ref": "#/components/securitySchemes/token" },
                ],
            },
        },
        "channels": {
            "socket": {
                "address": "/api/v1/ws",
                "title": "The device's socket",
                "description": "Upgrade with `GET /api/v1/ws`; a missing or bad token is refused with HTTP 401 before the upgrade.",
                "messages": channel_messages,
            },
        },
        "operations": operations,
        "components": {
            "schemas": components_schemas,
            "messages": messages,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The access token in `Authorization: Bearer …`.",
                },
                "token": {
                    "type": "httpApiKey",
                    "name": "token",
                    "in": "query",
                    "description": "The access token as `?token=…`, for browsers, which cannot set headers on a WebSocket. Never logged.",
                },
            },
        },
    })
}

fn to_json(schema: &RefOr<Schema>) -> Value {
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

/// The variants of a tagged enum's schema.
fn variants(schema: &Value) -> Vec<Value> {
    schema
        .get("oneOf")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The `type` a variant's schema pins down: `{"properties": {"type": {"enum": ["ping"]}}}`,
/// possibly inside an `allOf` (variants that flatten other types).
fn frame_type(variant: &Value) -> Option<String> {
    let direct = variant
        .pointer("/properties/type/enum/0")
        .and_then(Value::as_str);
    if let Some(found) = direct {
        return Some(found.to_owned());
    }
    variant
        .get("allOf")?
        .as_array()?
        .iter()
        .find_map(frame_type)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn documented(direction: &str) -> Vec<String> {
        let doc = asyncapi("test");
        let mut names: Vec<String> = doc["components"]["messages"]
            .as_object()
            .unwrap()
            .keys()
            .filter_map(|k| k.strip_prefix(&format!("{direction}.")).map(str::to_owned))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_client_frame_type_is_documented() {
        let mut types: Vec<String> = ClientFrame::TYPES.iter().map(|t| (*t).to_owned()).collect();
        types.sort();
        assert_eq!(documented("client"), types);
    }

    #[test]
    fn every_server_frame_type_is_documented() {
        let mut expected = vec![
            "hello",
            "pong",
            "ack",
            "error",
            "message.new",
            "message.updated",
            "message.deleted",
            "receipt",
            "typing",
            "presence",
            "conversation.updated",
            "sync.done",
        ];
        expected.sort_unstable();
        assert_eq!(documented("server"), expected);
    }

    #[test]
    fn payloads_refer_only_to_schemas_that_exist() {
        let doc = asyncapi("test");
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(schemas.contains_key(name), "dangling reference to {name}");
        }
    }
}
