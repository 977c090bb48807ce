//! Turning committed events into frames for this instance's sockets.

use bytestring::ByteString;
use confab_api::ConversationUpdate;
use confab_api::ws::{PresenceStatus, ServerFrame, TypingState};
use confab_app::Event;

use crate::{Hub, Outbound};

/// Serializes a frame; a frame that cannot be serialized is a bug, logged and not delivered.
pub(crate) fn encode(frame: &ServerFrame) -> Option<ByteString> {
    match serde_json::to_string(frame) {
        Ok(text) => Some(ByteString::from(text)),
        Err(error) => {
            tracing::error!(%error, "could not serialize a frame; it is not delivered");
            None
        }
    }
}

/// Delivers `event` to the sockets of its recipients on this instance. Each frame is
/// serialized once and shared by every socket that gets it; only `conversation.updated`,
/// whose unread count differs per member, is serialized per member.
pub fn deliver(hub: &Hub, event: &Event) {
    deliver_to(hub, event, None);
}

/// Like [`deliver`], but to `only` this user's sockets when given: a bus that carries an event
/// on one channel per recipient delivers, for each channel, to that recipient alone.
pub fn deliver_to(hub: &Hub, event: &Event, only: Option<confab_domain::UserId>) {
    let send_with = |recipients: &[confab_domain::UserId], frame: ServerFrame, position, newest| {
        let targets: Vec<confab_domain::UserId> = match only {
            Some(user) if recipients.contains(&user) => vec![user],
            Some(_) => return,
            None => recipients.to_vec(),
        };
        if targets.is_empty() || !targets.iter().any(|user| hub.socket_count(*user) > 0) {
            return;
        }
        if let Some(text) = encode(&frame) {
            hub.fan_out(
                &targets,
                event.origin(),
                &Outbound {
                    text,
                    position,
                    newest,
                },
            );
        }
    };
    let send = |recipients: &[confab_domain::UserId], frame: ServerFrame, position| {
        send_with(recipients, frame, position, None);
    };
    match event {
        Event::MessageCreated {
            message,
            recipients,
            ..
        } => send(
            recipients,
            ServerFrame::MessageNew {
                message: message.into(),
            },
            Some((message.conversation_id, message.seq)),
        ),
        Event::MessageUpdated {
            message,
            recipients,
        } => {
            send(
                recipients,
                ServerFrame::MessageUpdated {
                    message: message.into(),
                },
                None,
            );
        }
        Event::MessageDeleted {
            message,
            recipients,
        } => {
            send(
                recipients,
                ServerFrame::MessageDeleted {
                    message: message.into(),
                },
                None,
            );
        }
        Event::Receipt {
            conversation_id,
            user_id,
            read_seq,
            delivered_seq,
            recipients,
        } => send(
            recipients,
            ServerFrame::Receipt {
                conversation_id: conversation_id.as_uuid(),
                user_id: user_id.as_uuid(),
                read_seq: read_seq.value(),
                delivered_seq: delivered_seq.value(),
            },
            None,
        ),
        Event::Typing {
            conversation_id,
            user_id,
            typing,
            recipients,
        } => send(
            recipients,
            ServerFrame::Typing {
                conversation_id: conversation_id.as_uuid(),
                user_id: user_id.as_uuid(),
                state: if *typing {
                    TypingState::Start
                } else {
                    TypingState::Stop
                },
            },
            None,
        ),
        Event::Presence {
            user_id,
            online,
            last_seen_at,
            recipients,
        } => send(
            recipients,
            ServerFrame::Presence {
                user_id: user_id.as_uuid(),
                status: if *online {
                    PresenceStatus::Online
                } else {
                    PresenceStatus::Offline
                },
                last_seen_at: *last_seen_at,
            },
            None,
        ),
        Event::ConversationUpdated {
            conversation,
            last_message,
            members,
        } => {
            for member in members {
                let update = ConversationUpdate::new(conversation, last_message.as_ref(), member);
                send(
                    &[member.user_id],
                    ServerFrame::ConversationUpdated {
                        conversation: update,
                    },
                    None,
                );
            }
        }
    }
}
