//! WebSocket frames: every frame is a JSON object with a `type`. A client frame may carry a
//! `ref`, which the server's `ack`, `pong` or `error` for it repeats.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{ErrorBody, ErrorCode, Message};

/// A frame from client to server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ClientFrame {
    /// Application-level liveness check; answered with `pong`.
    #[serde(rename = "ping")]
    Ping {},
    /// Post a message; answered with `ack {message}` once it is stored.
    #[serde(rename = "message.send")]
    MessageSend {
        /// Where to post.
        conversation_id: Uuid,
        /// The text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        /// Idempotency key: a resend returns the first message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
    /// Everything up to `seq` has been read; answered with `ack {conversation_id, read_seq,
    /// unread_count}`.
    #[serde(rename = "message.read")]
    MessageRead {
        /// The conversation.
        conversation_id: Uuid,
        /// The highest seq read.
        seq: u64,
    },
}

impl ClientFrame {
    /// Every `type` a client may send.
    pub const TYPES: &'static [&'static str] = &["ping", "message.send", "message.read"];
}

/// A client frame with its optional `ref`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientEnvelope {
    /// The client's reference, echoed in the answer.
    pub reference: Option<String>,
    /// The frame.
    pub frame: ClientFrame,
}

/// A client frame that could not be understood, with the `ref` it carried if it had one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// The client's reference, when the frame had a readable one.
    pub reference: Option<String>,
    /// What kind of error.
    pub code: ErrorCode,
    /// What is wrong.
    pub message: String,
}

impl ClientEnvelope {
    /// Parses a text frame, telling malformed JSON, a missing or unknown `type` and a missing
    /// or mistyped field apart, and keeping the `ref` whenever it can be read.
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        let bad = |reference: Option<String>, message: String| FrameError {
            reference,
            code: ErrorCode::BadRequest,
            message,
        };
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| bad(None, format!("frame is not valid JSON: {e}")))?;
        let Some(object) = value.as_object() else {
            return Err(bad(None, "frame must be a JSON object".into()));
        };
        let reference = match object.get("ref") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        match object.get("type").and_then(serde_json::Value::as_str) {
            None => return Err(bad(reference, "frame has no string `type`".into())),
            Some(kind) if !ClientFrame::TYPES.contains(&kind) => {
                return Err(bad(reference, format!("unknown frame type {kind:?}")));
            }
            Some(_) => {}
        }
        match serde_json::from_value::<ClientFrame>(value) {
            Ok(frame) => Ok(Self { reference, frame }),
            Err(e) => Err(bad(reference, format!("invalid frame: {e}"))),
        }
    }
}

/// What an `ack` confirms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AckResult {
    /// `message.send`: the stored message.
    Sent {
        /// The message as stored, with its seq.
        message: Message,
    },
    /// `message.read`: the read state now.
    Read {
        /// The conversation.
        conversation_id: Uuid,
        /// The read cursor now.
        read_seq: u64,
        /// The unread count now.
        unread_count: u64,
    },
}

/// A frame from server to client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ServerFrame {
    /// First frame on every connection.
    #[serde(rename = "hello")]
    Hello {
        /// The authenticated user.
        user_id: Uuid,
        /// This connection's id.
        session_id: Uuid,
        /// How often the server pings; stay silent for two intervals and you are cut off.
        heartbeat_interval_ms: u64,
        /// The server's clock.
        server_time: DateTime<Utc>,
    },
    /// Answer to `ping`.
    #[serde(rename = "pong")]
    Pong {
        /// The ping's `ref`.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// A client frame took effect.
    #[serde(rename = "ack")]
    Ack {
        /// The frame's `ref`.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        /// What it did.
        #[serde(flatten)]
        result: AckResult,
    },
    /// A new message in one of the user's conversations.
    #[serde(rename = "message.new")]
    MessageNew {
        /// The message.
        message: Message,
    },
    /// A client frame failed; the socket stays open.
    #[serde(rename = "error")]
    Error {
        /// The frame's `ref`.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        /// Same codes as REST.
        code: ErrorCode,
        /// What went wrong.
        message: String,
        /// For `validation_failed`: each bad field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        details: Option<serde_json::Value>,
    },
}

impl ServerFrame {
    /// The `error` frame for a failed use case, with the same code as REST would give.
    pub fn error(reference: Option<String>, body: ErrorBody) -> Self {
        Self::Error {
            reference,
            code: body.error.code,
            message: body.error.message,
            details: body.error.details,
        }
    }
}

impl From<FrameError> for ServerFrame {
    fn from(error: FrameError) -> Self {
        Self::Error {
            reference: error.reference,
            code: error.code,
            message: error.message,
            details: None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_frame_type_with_its_ref() {
        let id = Uuid::now_v7();
        let envelope = ClientEnvelope::parse(&format!(
            r#"{{"type":"message.send","ref":"r1","conversation_id":"{id}","body":"hi"}}"#
        ))
        .unwrap();
        assert_eq!(envelope.reference.as_deref(), Some("r1"));
        assert_eq!(
            envelope.frame,
            ClientFrame::MessageSend {
                conversation_id: id,
                body: Some("hi".into()),
                client_msg_id: None
            }
        );
        assert_eq!(
            ClientEnvelope::parse(r#"{"type":"ping"}"#).unwrap().frame,
            ClientFrame::Ping {}
        );
    }

    #[test]
    fn bad_frames_are_told_apart_and_keep_their_ref() {
        let cases = [
            ("not json", None, "not valid JSON"),
            ("[1,2]", None, "JSON object"),
            (r#"{"ref":"a"}"#, Some("a"), "no string `type`"),
            (
                r#"{"ref":"b","type":"launch.rocket"}"#,
                Some("b"),
                "unknown frame type",
            ),
            (
                r#"{"ref":"c","type":"message.read","seq":1}"#,
                Some("c"),
                "conversation_id",
            ),
            (
                r#"{"ref":7,"type":"message.read","conversation_id":"x","seq":1}"#,
                Some("7"),
                "invalid frame",
            ),
        ];
        for (text, reference, needle) in cases {
            let error = ClientEnvelope::parse(text).unwrap_err();
            assert_eq!(error.code, ErrorCode::BadRequest, "{text}");
            assert_eq!(error.reference.as_deref(), reference, "{text}");
            assert!(error.message.contains(needle), "{text}: {}", error.message);
        }
    }

    #[test]
    fn ack_frames_roundtrip_through_json() {
        let frame = ServerFrame::Ack {
            reference: Some("r".into()),
            result: AckResult::Read {
                conversation_id: Uuid::now_v7(),
                read_seq: 3,
                unread_count: 0,
            },
        };
        let text = serde_json::to_string(&frame).unwrap();
        assert!(text.contains(r#""type":"ack""#) && text.contains(r#""ref":"r""#));
        assert_eq!(serde_json::from_str::<ServerFrame>(&text).unwrap(), frame);
    }
}
