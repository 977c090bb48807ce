//! WebSocket frames: every frame is a JSON object with a `type`. A client frame may carry a
//! `ref`, which the server's `ack`, `pong` or `error` for it repeats.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use utoipa::ToSchema;

use crate::{ConversationUpdate, ErrorBody, ErrorCode, Message};

/// Whether a member is typing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TypingState {
    /// Started (or still) typing; expires after a few seconds without another `start`.
    Start,
    /// Stopped typing.
    Stop,
}

/// Whether a user has a connected device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    /// At least one device connected.
    Online,
    /// No device connected.
    Offline,
}

/// Where a client stands in one conversation: it holds every message up to `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncCursor {
    /// The conversation.
    pub conversation_id: Uuid,
    /// The highest seq the client holds (0 for none).
    pub seq: u64,
}

/// Messages left out of a bounded backlog: those with `after_seq < seq < before_seq`. Page them
/// with `GET /api/v1/conversations/{id}/messages?after=…&before=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SkippedRange {
    /// The conversation.
    pub conversation_id: Uuid,
    /// The range starts above this seq.
    pub after_seq: u64,
    /// The range ends below this seq.
    pub before_seq: u64,
}

/// A frame from client to server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
    /// Everything up to `seq` has been read (which implies received); answered with
    /// `ack {conversation_id, read_seq, delivered_seq, unread_count}`; members hear `receipt`.
    #[serde(rename = "message.read")]
    MessageRead {
        /// The conversation.
        conversation_id: Uuid,
        /// The highest seq read.
        seq: u64,
    },
    /// This device holds every message up to `seq`; answered like `message.read`; members
    /// hear `receipt` (the sender's "delivered" tick).
    #[serde(rename = "delivered")]
    Delivered {
        /// The conversation.
        conversation_id: Uuid,
        /// The highest seq held.
        seq: u64,
    },
    /// Replace the text of one's own message; answered with `ack {message}`; members hear
    /// `message.updated`.
    #[serde(rename = "message.edit")]
    MessageEdit {
        /// The message.
        message_id: Uuid,
        /// The new text.
        body: String,
    },
    /// Delete one's own message (it keeps its seq, loses its body); answered with
    /// `ack {message}`; members hear `message.deleted`.
    #[serde(rename = "message.delete")]
    MessageDelete {
        /// The message.
        message_id: Uuid,
    },
    /// Started or stopped typing; the other members hear `typing`. Answered only on error.
    #[serde(rename = "typing")]
    Typing {
        /// The conversation.
        conversation_id: Uuid,
        /// `start` or `stop`.
        state: TypingState,
    },
    /// Every message above each cursor, in seq order, each once (what this socket already
    /// sent is skipped), as `message.new` frames; then `sync.done`.
    #[serde(rename = "sync")]
    Sync {
        /// Where the client stands in each conversation it wants to catch up on.
        cursors: Vec<SyncCursor>,
    },
}

impl ClientFrame {
    /// Every `type` a client may send.
    pub const TYPES: &'static [&'static str] = &[
        "ping",
        "message.send",
        "message.read",
        "delivered",
        "message.edit",
        "message.delete",
        "typing",
        "sync",
    ];
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
        // A well-formed frame, by far the common case, is read straight into its type: two
        // passes over the text, and no tree of values built and thrown away. Anything else
        // takes the slow path, which works out what exactly is wrong. Only an object qualifies:
        // serde would also read an array as a tagged frame, e.g. `["ping"]`.
        if text.trim_start().starts_with('{')
            && let Ok(frame) = serde_json::from_str::<ClientFrame>(text)
            && let Ok(Ref { reference }) = serde_json::from_str::<Ref>(text)
        {
            return Ok(Self {
                reference: reference.and_then(ref_text),
                frame,
            });
        }
        Self::diagnose(text)
    }

    /// The slow path of [`ClientEnvelope::parse`]: reads the frame as a JSON value first, so
    /// that malformed JSON, a missing or unknown `type` and a bad field are told apart.
    fn diagnose(text: &str) -> Result<Self, FrameError> {
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
        let reference = object.get("ref").cloned().and_then(ref_text);
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

/// A frame's `ref` alone; every other field is skipped.
#[derive(Deserialize)]
struct Ref {
    #[serde(rename = "ref", default)]
    reference: Option<serde_json::Value>,
}

/// A `ref` as the answer repeats it: a string as it is, any other value as its JSON text, and
/// `null` as none.
fn ref_text(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(text) => Some(text),
        other => Some(other.to_string()),
    }
}

/// What an `ack` confirms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AckResult {
    /// `message.send`, `message.edit`, `message.delete`: the message as stored now.
    Sent {
        /// The message, with its seq.
        message: Message,
    },
    /// `message.read`, `delivered`: the caller's cursors now.
    Read {
        /// The conversation.
        conversation_id: Uuid,
        /// The read cursor now.
        read_seq: u64,
        /// The delivery cursor now.
        delivered_seq: u64,
        /// The unread count now.
        unread_count: u64,
    },
}

/// A frame from server to client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
    /// A message in one of the user's conversations: new, from the backlog, or from `sync`.
    /// Per conversation they arrive in seq order, each once per socket.
    #[serde(rename = "message.new")]
    MessageNew {
        /// The message.
        message: Message,
    },
    /// A message was edited.
    #[serde(rename = "message.updated")]
    MessageUpdated {
        /// The message now.
        message: Message,
    },
    /// A message was deleted: same id and seq, `body: null`, `deleted_at` set.
    #[serde(rename = "message.deleted")]
    MessageDeleted {
        /// The message now.
        message: Message,
    },
    /// A member's cursors moved: "delivered" and "read" ticks.
    #[serde(rename = "receipt")]
    Receipt {
        /// The conversation.
        conversation_id: Uuid,
        /// Whose cursors.
        user_id: Uuid,
        /// Their read cursor.
        read_seq: u64,
        /// Their delivery cursor.
        delivered_seq: u64,
    },
    /// Another member started or stopped typing. Never stored; a `start` expires by itself
    /// (the server sends `stop`) a few seconds after the typist's last `start`.
    #[serde(rename = "typing")]
    Typing {
        /// The conversation.
        conversation_id: Uuid,
        /// Who.
        user_id: Uuid,
        /// `start` or `stop`.
        state: TypingState,
    },
    /// A user who shares a conversation with you came online or went offline. On connect,
    /// one frame for each contact who is online.
    #[serde(rename = "presence")]
    Presence {
        /// Who.
        user_id: Uuid,
        /// `online` or `offline`.
        status: PresenceStatus,
        /// When they were last seen (when going offline).
        last_seen_at: Option<DateTime<Utc>>,
    },
    /// A conversation moved: new activity, a deletion, a read on another of your devices.
    /// Carries your own unread count, for sidebars and badges.
    #[serde(rename = "conversation.updated")]
    ConversationUpdated {
        /// The conversation as you see it now.
        conversation: ConversationUpdate,
    },
    /// The backlog after connect, or the answer to `sync`, is complete.
    #[serde(rename = "sync.done")]
    SyncDone {
        /// The `sync` frame's `ref` (none after the automatic backlog).
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        /// Ranges left out of a bounded backlog, to page over REST.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skipped: Vec<SkippedRange>,
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
        /// For `rate_limited`: milliseconds until the next attempt may succeed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

impl ServerFrame {
    /// The `error` frame for a failed use case, with the same code as REST would give.
    pub fn error(reference: Option<String>, error: &confab_app::AppError) -> Self {
        let body = ErrorBody::from_app_error(error);
        let retry_after_ms = match error {
            confab_app::AppError::RateLimited { retry_after } => {
                Some(u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX))
            }
            _ => None,
        };
        Self::Error {
            reference,
            code: body.error.code,
            message: body.error.message,
            details: body.error.details,
            retry_after_ms,
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
            retry_after_ms: None,
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
    fn a_ref_comes_back_as_text_whatever_its_json_type() {
        let cases = [
            (r#"{"type":"ping","ref":"r1"}"#, Some("r1")),
            (r#"{"ref":7,"type":"ping"}"#, Some("7")),
            (
                r#"{"type":"ping","ref":{"n":[1,"x"]}}"#,
                Some(r#"{"n":[1,"x"]}"#),
            ),
            (r#"{"type":"ping","ref":null}"#, None),
            (r#"{"type":"ping","extra":true}"#, None),
        ];
        for (text, reference) in cases {
            let envelope = ClientEnvelope::parse(text).unwrap();
            assert_eq!(envelope.reference.as_deref(), reference, "{text}");
            assert_eq!(envelope.frame, ClientFrame::Ping {}, "{text}");
        }
    }

    #[test]
    fn bad_frames_are_told_apart_and_keep_their_ref() {
        let cases = [
            ("not json", None, "not valid JSON"),
            ("[1,2]", None, "JSON object"),
            (r#"["ping"]"#, None, "JSON object"),
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
                delivered_seq: 3,
                unread_count: 0,
            },
        };
        let text = serde_json::to_string(&frame).unwrap();
        assert!(text.contains(r#""type":"ack""#) && text.contains(r#""ref":"r""#));
        assert_eq!(serde_json::from_str::<ServerFrame>(&text).unwrap(), frame);
    }
}
