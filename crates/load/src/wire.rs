//! The hot path's frames, kept cheap so that the tool is never the bottleneck.
//!
//! Outgoing: a `message.send` is written straight into the one buffer the socket takes, from a
//! prefix made once per sender. Incoming: only what the measurement needs is read (the frame's
//! `type`; for `message.new` the conversation, seq and body; for `ack` whether it carries a
//! message), borrowing from the frame's text. Everything else is skipped without being built,
//! where the full [`ServerFrame`](confab_api::ws::ServerFrame) would allocate every key and
//! value (its `type` tag makes serde buffer the whole frame first) and parse every timestamp.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

/// What the body of a timed message starts with; the send time in µs since the run's epoch
/// follows.
const TIME_PREFIX: &str = "t:";

/// The start of every `message.send` a sender posts into `conversation`, up to the send time.
pub(crate) fn send_prefix(conversation: Uuid) -> String {
    format!(r#"{{"type":"message.send","conversation_id":"{conversation}","body":"{TIME_PREFIX}"#)
}

/// A `message.send` frame whose body carries `micros`, the send time.
pub(crate) fn message_send(prefix: &str, micros: u64) -> String {
    let mut text = String::with_capacity(prefix.len() + 22);
    text.push_str(prefix);
    // Writing into a String cannot fail.
    let _ = write!(text, "{micros}\"}}");
    text
}

/// What a frame from the server means to the measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// An `ack` carrying a stored message: a `message.send` was accepted.
    Accepted,
    /// A `message.new`, with its send time when the body carries one.
    Message {
        conversation: Uuid,
        seq: u64,
        sent_at: Option<u64>,
    },
    /// An `error`: parse the frame in full for its code and text.
    Error,
    /// Anything else.
    Other,
}

/// Reads what the measurement needs from a server frame's text.
pub(crate) fn classify(text: &str) -> serde_json::Result<Incoming> {
    let frame: Frame<'_> = serde_json::from_str(text)?;
    Ok(match (&*frame.kind, frame.message) {
        ("message.new", Some(MessageField::Message(message))) => Incoming::Message {
            conversation: message.conversation_id,
            seq: message.seq,
            sent_at: message
                .body
                .as_deref()
                .and_then(|body| body.strip_prefix(TIME_PREFIX))
                .and_then(|micros| micros.parse().ok()),
        },
        ("ack", Some(MessageField::Message(_))) => Incoming::Accepted,
        ("error", _) => Incoming::Error,
        _ => Incoming::Other,
    })
}

/// A server frame, only as far as the measurement reads it; other keys are skipped.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    message: Option<MessageField<'a>>,
}

/// `message` is a message object in `message.new` and `ack`, and a string in `error`.
enum MessageField<'a> {
    Message(Lean<'a>),
    Text,
}

/// A message, only as far as the measurement reads it.
#[derive(Deserialize)]
struct Lean<'a> {
    conversation_id: Uuid,
    seq: u64,
    #[serde(default, borrow)]
    body: Option<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for MessageField<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either<'a>(PhantomData<MessageField<'a>>);
        impl<'de: 'a, 'a> Visitor<'de> for Either<'a> {
            type Value = MessageField<'a>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a message object or a string")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Lean::deserialize(MapAccessDeserializer::new(map)).map(MessageField::Message)
            }

            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(MessageField::Text)
            }
        }
        deserializer.deserialize_any(Either(PhantomData))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use confab_api::ws::{AckResult, ClientEnvelope, ClientFrame, ServerFrame};

    use super::*;

    fn message_json(conversation: Uuid, seq: u64, body: &str) -> String {
        format!(
            r#"{{"id":"{}","conversation_id":"{conversation}","seq":{seq},"sender_id":"{}","kind":"text","body":{body},"attachments":[],"client_msg_id":null,"created_at":"2025-01-02T03:04:05.123456Z","edited_at":null,"deleted_at":null}}"#,
            Uuid::now_v7(),
            Uuid::now_v7(),
        )
    }

    #[test]
    fn message_send_is_a_valid_client_frame() {
        let conversation = Uuid::now_v7();
        let text = message_send(&send_prefix(conversation), 1_234_567);
        assert_eq!(
            ClientEnvelope::parse(&text).unwrap().frame,
            ClientFrame::MessageSend {
                conversation_id: conversation,
                body: Some("t:1234567".into()),
                client_msg_id: None,
            }
        );
    }

    #[test]
    fn reads_message_new_like_the_full_frame() {
        let conversation = Uuid::now_v7();
        let text = format!(
            r#"{{"type":"message.new","message":{}}}"#,
            message_json(conversation, 42, r#""t:987""#)
        );
        let ServerFrame::MessageNew { message } = serde_json::from_str(&text).unwrap() else {
            panic!("not a message.new");
        };
        assert_eq!((message.conversation_id, message.seq), (conversation, 42));
        assert_eq!(
            classify(&text).unwrap(),
            Incoming::Message {
                conversation,
                seq: 42,
                sent_at: Some(987)
            }
        );
        // Key order does not matter; an escaped or missing time is no time.
        let text = format!(
            r#"{{"message":{},"type":"message.new"}}"#,
            message_json(conversation, 7, r#""hi \"there\"""#)
        );
        assert!(matches!(
            classify(&text).unwrap(),
            Incoming::Message {
                seq: 7,
                sent_at: None,
                ..
            }
        ));
        let text = format!(
            r#"{{"type":"message.new","message":{}}}"#,
            message_json(conversation, 8, "null")
        );
        assert!(matches!(
            classify(&text).unwrap(),
            Incoming::Message {
                seq: 8,
                sent_at: None,
                ..
            }
        ));
    }

    #[test]
    fn tells_acks_errors_and_others_apart() {
        let sent = format!(
            r#"{{"type":"ack","ref":"r","message":{}}}"#,
            message_json(Uuid::now_v7(), 1, r#""t:1""#)
        );
        assert!(matches!(
            serde_json::from_str(&sent).unwrap(),
            ServerFrame::Ack {
                result: AckResult::Sent { .. },
                ..
            }
        ));
        assert_eq!(classify(&sent).unwrap(), Incoming::Accepted);

        let read = format!(
            r#"{{"type":"ack","conversation_id":"{}","read_seq":1,"delivered_seq":1,"unread_count":0}}"#,
            Uuid::now_v7()
        );
        assert!(matches!(
            serde_json::from_str(&read).unwrap(),
            ServerFrame::Ack {
                result: AckResult::Read { .. },
                ..
            }
        ));
        assert_eq!(classify(&read).unwrap(), Incoming::Other);

        let error =
            r#"{"type":"error","code":"rate_limited","message":"slow down","retry_after_ms":5}"#;
        assert!(matches!(
            serde_json::from_str(error).unwrap(),
            ServerFrame::Error { .. }
        ));
        assert_eq!(classify(error).unwrap(), Incoming::Error);

        let receipt = format!(
            r#"{{"type":"receipt","conversation_id":"{}","user_id":"{}","read_seq":3,"delivered_seq":4}}"#,
            Uuid::now_v7(),
            Uuid::now_v7()
        );
        assert!(matches!(
            serde_json::from_str(&receipt).unwrap(),
            ServerFrame::Receipt { .. }
        ));
        assert_eq!(classify(&receipt).unwrap(), Incoming::Other);
        assert!(classify("not json").is_err());
    }
}
