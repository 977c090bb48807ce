//! Turning committed events into frames for this instance's sockets.

use confab_api::ConversationUpdate;
use confab_api::ws::{PresenceStatus, ServerFrame, TypingState};
use confab_app::{Event, MemberActivity};
use confab_domain::Role;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::{Hub, Outbound};

/// Serializes a frame; a frame that cannot be serialized is a bug, logged and not delivered.
pub(crate) fn encode(frame: &ServerFrame) -> Option<Utf8Bytes> {
    match serde_json::to_string(frame) {
        Ok(text) => Some(Utf8Bytes::from(text)),
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
    let send_with = |recipients: &[confab_domain::UserId], frame: ServerFrame, position, newest| {
        if recipients.is_empty() || !recipients.iter().any(|user| hub.socket_count(*user) > 0) {
            return;
        }
        if let Some(text) = encode(&frame) {
            hub.fan_out(
                recipients,
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
            let newest = Some((conversation.id, conversation.last_seq));
            let mut templates = Templates::default();
            for member in members {
                if hub.socket_count(member.user_id) == 0 {
                    continue;
                }
                let text = templates.render(member, |probe| {
                    encode(&ServerFrame::ConversationUpdated {
                        conversation: ConversationUpdate::new(
                            conversation,
                            last_message.as_ref(),
                            probe,
                        ),
                    })
                });
                if let Some(text) = text {
                    hub.fan_out(
                        &[member.user_id],
                        event.origin(),
                        &Outbound {
                            text,
                            position: None,
                            newest,
                        },
                    );
                }
            }
        }
    }
}

/// `conversation.updated` differs between members only in `unread_count` and `my_role`. So it
/// is serialized once per role present, with a stand-in count, and each member's frame is that
/// text with their own count put in place of the stand-in: a group of a thousand costs one
/// serialization and a thousand small copies, not a thousand serializations.
#[derive(Default)]
struct Templates {
    by_role: Vec<(Role, Option<Template>)>,
}

/// A serialized frame cut where the unread count goes.
struct Template {
    before: String,
    after: String,
}

/// The stand-in count: no real count reaches it.
const STAND_IN: u64 = u64::MAX;

impl Templates {
    fn render(
        &mut self,
        member: &MemberActivity,
        encode: impl Fn(&MemberActivity) -> Option<Utf8Bytes>,
    ) -> Option<Utf8Bytes> {
        let index = match self
            .by_role
            .iter()
            .position(|(role, _)| *role == member.role)
        {
            Some(index) => index,
            None => {
                let probe = MemberActivity {
                    unread_count: STAND_IN,
                    ..*member
                };
                let template = encode(&probe).and_then(|text| Template::cut(&text));
                self.by_role.push((member.role, template));
                self.by_role.len() - 1
            }
        };
        match &self.by_role[index].1 {
            Some(template) => Some(template.with(member.unread_count)),
            // Not expected (the field is always there once), but correct either way.
            None => encode(member),
        }
    }
}

impl Template {
    /// Cuts `text` at its one top-level `"unread_count":<stand-in>`. Inside a JSON string
    /// every quote is escaped, so user text (a name, a message body) cannot contain
    /// `"unread_count":` with a bare quote; the match is the field itself.
    fn cut(text: &str) -> Option<Self> {
        let field = format!("\"unread_count\":{STAND_IN}");
        let mut matches = text.match_indices(&field);
        let (start, _) = matches.next()?;
        if matches.next().is_some() {
            return None;
        }
        let split = start + field.len() - STAND_IN.to_string().len();
        Some(Self {
            before: text[..split].to_owned(),
            after: text[start + field.len()..].to_owned(),
        })
    }

    fn with(&self, count: u64) -> Utf8Bytes {
        use std::fmt::Write;
        // 20 digits hold any u64.
        let mut text = String::with_capacity(self.before.len() + 20 + self.after.len());
        text.push_str(&self.before);
        let _ = write!(text, "{count}");
        text.push_str(&self.after);
        Utf8Bytes::from(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_domain::{Conversation, ConversationId, ConversationKind, Seq, UserId};

    fn activity(role: Role, unread_count: u64) -> MemberActivity {
        MemberActivity {
            user_id: UserId::generate(),
            role,
            unread_count,
        }
    }

    fn group(name: &str, last_seq: u64) -> Conversation {
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        Conversation {
            id: ConversationId::generate(),
            kind: ConversationKind::Group,
            name: Some(name.into()),
            topic: None,
            created_at: now,
            updated_at: now,
            last_seq: Seq::new(last_seq),
            last_deleted_seq: Seq::ZERO,
        }
    }

    #[test]
    fn a_spliced_update_is_byte_for_byte_what_serializing_it_gives() {
        // User text that mimics the field must not fool the cut.
        let conversation = group("\"unread_count\":18446744073709551615", 42);
        let encode = |member: &MemberActivity| {
            encode(&ServerFrame::ConversationUpdated {
                conversation: ConversationUpdate::new(&conversation, None, member),
            })
        };
        let mut templates = Templates::default();
        for member in [
            activity(Role::Member, 0),
            activity(Role::Member, 7),
            activity(Role::Owner, 1_000_000),
            activity(Role::Member, 42),
            activity(Role::Admin, 3),
        ] {
            assert_eq!(templates.render(&member, encode), encode(&member));
        }
        // One serialization per role, plus the references above.
        assert_eq!(templates.by_role.len(), 3);
        assert!(templates.by_role.iter().all(|(_, t)| t.is_some()));
    }

    #[test]
    fn each_member_gets_their_own_count_and_the_conversations_newest_seq() {
        let conversation = group("team", 9);
        let (owner, member, offline) = (
            activity(Role::Owner, 0),
            activity(Role::Member, 4),
            activity(Role::Member, 9),
        );
        let hub = Hub::new();
        let mut owners = hub.attach(owner.user_id, 4);
        let mut members = hub.attach(member.user_id, 4);
        deliver(
            &hub,
            &Event::ConversationUpdated {
                conversation: conversation.clone(),
                last_message: None,
                members: vec![owner, member, offline],
            },
        );
        for (socket, expected) in [(&mut owners, owner), (&mut members, member)] {
            let frame = socket
                .queue
                .try_recv()
                .unwrap_or_else(|_| panic!("a frame"));
            // The socket learns the newest seq, to notice a last message it never got.
            assert_eq!(frame.newest, Some((conversation.id, Seq::new(9))));
            let json: serde_json::Value = serde_json::from_str(&frame.text).unwrap_or_default();
            assert_eq!(json["type"], "conversation.updated");
            assert_eq!(json["conversation"]["unread_count"], expected.unread_count);
            assert_eq!(
                json["conversation"]["my_role"],
                serde_json::json!(expected.role)
            );
            assert!(socket.queue.try_recv().is_err());
        }
    }
}
