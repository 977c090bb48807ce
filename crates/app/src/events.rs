use std::fmt;

use confab_domain::{Conversation, ConversationId, Message, Role, Seq, Timestamp, UserId};
use uuid::Uuid;

/// Identifies one connected socket (one device), so that an event can skip the socket it came
/// from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SessionId(Uuid);

impl SessionId {
    /// A fresh session id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// The UUID inside.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One member's personal view of a conversation's new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberActivity {
    /// The member.
    pub user_id: UserId,
    /// Their role.
    pub role: Role,
    /// Their unread count now.
    pub unread_count: u64,
}

/// Something that happened and was committed, for delivery to the sockets of the users it
/// concerns. Published only after the change is durable. Serializable, so that a bus can carry
/// it to other instances.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A new message was stored.
    MessageCreated {
        /// The message as stored.
        message: Message,
        /// Every member of the conversation, the sender included (their other devices need it).
        recipients: Vec<UserId>,
        /// The socket that sent it, which gets an `ack` instead of a copy.
        origin: Option<SessionId>,
    },
    /// A message was edited.
    MessageUpdated {
        /// The message in its new state.
        message: Message,
        /// Every member.
        recipients: Vec<UserId>,
    },
    /// A message was deleted: it keeps its id and seq, and loses its body.
    MessageDeleted {
        /// The message in its deleted state.
        message: Message,
        /// Every member.
        recipients: Vec<UserId>,
    },
    /// A member's read or delivery cursor moved forward.
    Receipt {
        /// The conversation.
        conversation_id: ConversationId,
        /// Whose cursors.
        user_id: UserId,
        /// Their read cursor now.
        read_seq: Seq,
        /// Their delivery cursor now.
        delivered_seq: Seq,
        /// Every member, the reader's other devices included.
        recipients: Vec<UserId>,
    },
    /// A member started or stopped typing. Never stored.
    Typing {
        /// The conversation.
        conversation_id: ConversationId,
        /// Who is typing.
        user_id: UserId,
        /// Started (true) or stopped (false).
        typing: bool,
        /// The other members: never the typist.
        recipients: Vec<UserId>,
    },
    /// A user came online or went offline.
    Presence {
        /// The user.
        user_id: UserId,
        /// Online now?
        online: bool,
        /// When they were last seen (set when they go offline).
        last_seen_at: Option<Timestamp>,
        /// Users who share a conversation with them.
        recipients: Vec<UserId>,
    },
    /// A conversation changed in a way that moves it in sidebars: new activity, a read on
    /// another device. Each member gets their own unread count and role.
    ConversationUpdated {
        /// The conversation now.
        conversation: Conversation,
        /// Its newest message.
        last_message: Option<Message>,
        /// The members to tell, each with their own view.
        members: Vec<MemberActivity>,
    },
}

impl Event {
    /// Every user who should hear of the event.
    pub fn recipients(&self) -> Vec<UserId> {
        match self {
            Self::MessageCreated { recipients, .. }
            | Self::MessageUpdated { recipients, .. }
            | Self::MessageDeleted { recipients, .. }
            | Self::Receipt { recipients, .. }
            | Self::Typing { recipients, .. }
            | Self::Presence { recipients, .. } => recipients.clone(),
            Self::ConversationUpdated { members, .. } => {
                members.iter().map(|m| m.user_id).collect()
            }
        }
    }

    /// The copies of this event for a bus that has one channel per recipient, each with the
    /// users whose channels carry it.
    ///
    /// An instance that hears an event on a user's channel delivers it to that user alone, so
    /// a copy need not list anyone else: carrying the whole list would put, for a group of n
    /// members, n copies of an n-long list on the bus for every message. So an event that reads
    /// the same for everyone comes back once, with its list of recipients emptied, and
    /// `ConversationUpdated` comes back once per member, with only that member's own view.
    /// The receiving side restores the recipient with [`Event::addressed_to`].
    pub fn into_channel_copies(self) -> Vec<(Vec<UserId>, Event)> {
        match self {
            Self::ConversationUpdated {
                conversation,
                last_message,
                members,
            } => members
                .into_iter()
                .map(|member| {
                    let user = member.user_id;
                    let copy = Self::ConversationUpdated {
                        conversation: conversation.clone(),
                        last_message: last_message.clone(),
                        members: vec![member],
                    };
                    (vec![user], copy)
                })
                .collect(),
            Self::MessageCreated {
                message,
                recipients,
                origin,
            } => vec![(
                recipients,
                Self::MessageCreated {
                    message,
                    recipients: Vec::new(),
                    origin,
                },
            )],
            Self::MessageUpdated {
                message,
                recipients,
            } => vec![(
                recipients,
                Self::MessageUpdated {
                    message,
                    recipients: Vec::new(),
                },
            )],
            Self::MessageDeleted {
                message,
                recipients,
            } => vec![(
                recipients,
                Self::MessageDeleted {
                    message,
                    recipients: Vec::new(),
                },
            )],
            Self::Receipt {
                conversation_id,
                user_id,
                read_seq,
                delivered_seq,
                recipients,
            } => vec![(
                recipients,
                Self::Receipt {
                    conversation_id,
                    user_id,
                    read_seq,
                    delivered_seq,
                    recipients: Vec::new(),
                },
            )],
            Self::Typing {
                conversation_id,
                user_id,
                typing,
                recipients,
            } => vec![(
                recipients,
                Self::Typing {
                    conversation_id,
                    user_id,
                    typing,
                    recipients: Vec::new(),
                },
            )],
            Self::Presence {
                user_id,
                online,
                last_seen_at,
                recipients,
            } => vec![(
                recipients,
                Self::Presence {
                    user_id,
                    online,
                    last_seen_at,
                    recipients: Vec::new(),
                },
            )],
        }
    }

    /// A copy heard on `user`'s channel (see [`Event::into_channel_copies`]), addressed to
    /// `user` alone. `ConversationUpdated` keeps only `user`'s own view.
    #[must_use]
    pub fn addressed_to(mut self, user: UserId) -> Self {
        match &mut self {
            Self::MessageCreated { recipients, .. }
            | Self::MessageUpdated { recipients, .. }
            | Self::MessageDeleted { recipients, .. }
            | Self::Receipt { recipients, .. }
            | Self::Typing { recipients, .. }
            | Self::Presence { recipients, .. } => *recipients = vec![user],
            Self::ConversationUpdated { members, .. } => members.retain(|m| m.user_id == user),
        }
        self
    }

    /// The socket the event came from, which does not get it back.
    pub fn origin(&self) -> Option<SessionId> {
        match self {
            Self::MessageCreated { origin, .. } => *origin,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use confab_domain::ConversationKind;

    fn activity(user_id: UserId, unread_count: u64) -> MemberActivity {
        MemberActivity {
            user_id,
            role: Role::Member,
            unread_count,
        }
    }

    #[test]
    fn an_event_for_everyone_goes_on_the_bus_once_without_its_list_and_comes_back_addressed() {
        let users = [UserId::generate(), UserId::generate(), UserId::generate()];
        let typing = Event::Typing {
            conversation_id: ConversationId::generate(),
            user_id: UserId::generate(),
            typing: true,
            recipients: users.to_vec(),
        };
        let copies = typing.clone().into_channel_copies();
        assert_eq!(copies.len(), 1);
        let (channels, copy) = &copies[0];
        assert_eq!(channels, &users.to_vec());
        assert!(
            copy.recipients().is_empty(),
            "the channel names the recipient"
        );
        let heard = copy.clone().addressed_to(users[1]);
        assert_eq!(heard.recipients(), vec![users[1]]);
        let Event::Typing { recipients, .. } = &typing else {
            unreachable!()
        };
        assert_eq!(recipients.len(), 3, "the original is untouched");
    }

    #[test]
    fn each_member_gets_a_copy_of_a_conversation_update_with_only_their_own_view() {
        let (ann, bob) = (UserId::generate(), UserId::generate());
        let update = Event::ConversationUpdated {
            conversation: Conversation {
                id: ConversationId::generate(),
                kind: ConversationKind::Group,
                name: Some("team".into()),
                topic: None,
                created_at: Utc::now(),
                updated_at: Utc::now(),
                last_seq: Seq::new(3),
                last_deleted_seq: Seq::ZERO,
            },
            last_message: None,
            members: vec![activity(ann, 0), activity(bob, 3)],
        };
        let copies = update.into_channel_copies();
        assert_eq!(copies.len(), 2);
        for (channels, copy) in copies {
            let [user] = channels[..] else {
                panic!("one channel per copy")
            };
            let Event::ConversationUpdated { members, .. } = copy.addressed_to(user) else {
                panic!("still a conversation update")
            };
            let expected = if user == ann { 0 } else { 3 };
            assert_eq!(members, vec![activity(user, expected)]);
        }
    }
}
