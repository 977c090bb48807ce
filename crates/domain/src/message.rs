use std::fmt;
use std::str::FromStr;

use crate::{ClientMsgId, ConversationId, MessageId, Seq, Timestamp, UserId, ValidationError};

/// What a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum MessageKind {
    /// Text written by a member.
    Text,
    /// An image, with an optional caption.
    Image,
    /// A notice written by the server (member joined, name changed, …).
    System,
}

impl MessageKind {
    /// The name used in the API and in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::System => "system",
        }
    }
}

impl FromStr for MessageKind {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "image" => Ok(Self::Image),
            "system" => Ok(Self::System),
            _ => Err(ValidationError::new(
                "kind",
                "must be text, image or system",
            )),
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored message. A deleted one keeps its id and seq (so sequences stay gap-free) and loses
/// its body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Message {
    /// The message's id.
    pub id: MessageId,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// Its position in the conversation.
    pub seq: Seq,
    /// Who sent it.
    pub sender_id: UserId,
    /// Text, image or system notice.
    pub kind: MessageKind,
    /// The text; `None` once deleted.
    pub body: Option<String>,
    /// The sender's idempotency key, if they gave one.
    pub client_msg_id: Option<ClientMsgId>,
    /// When it was stored.
    pub created_at: Timestamp,
    /// When it was last edited.
    pub edited_at: Option<Timestamp>,
    /// When it was deleted.
    pub deleted_at: Option<Timestamp>,
}

impl Message {
    /// Whether `user` may edit this message: only its author, and not once it is deleted.
    pub fn may_edit(&self, user: UserId) -> bool {
        self.sender_id == user && self.deleted_at.is_none() && self.kind != MessageKind::System
    }

    /// Whether `user` may delete this message: its author (moderators come with moderation).
    pub fn may_delete(&self, user: UserId) -> bool {
        self.sender_id == user && self.kind != MessageKind::System
    }

    /// Whether the message counts towards `reader`'s unread count, given their read cursor:
    /// messages from others above the cursor that are not deleted.
    ///
    /// ```
    /// # use confab_domain::*;
    /// # let now = chrono::Utc::now();
    /// # let (ann, bob) = (UserId::generate(), UserId::generate());
    /// let message = Message { id: MessageId::generate(), conversation_id: ConversationId::generate(),
    ///     seq: Seq::new(5), sender_id: ann, kind: MessageKind::Text, body: Some("hi".into()),
    ///     client_msg_id: None, created_at: now, edited_at: None, deleted_at: None };
    /// assert!(message.is_unread_for(bob, Seq::new(4)));
    /// assert!(!message.is_unread_for(bob, Seq::new(5)));
    /// assert!(!message.is_unread_for(ann, Seq::new(0)));
    /// ```
    pub fn is_unread_for(&self, reader: UserId, read_seq: Seq) -> bool {
        self.seq > read_seq && self.sender_id != reader && self.deleted_at.is_none()
    }

    /// The number of messages in `messages` that are unread for `reader`.
    pub fn unread_count<'a>(
        messages: impl IntoIterator<Item = &'a Message>,
        reader: UserId,
        read_seq: Seq,
    ) -> u64 {
        messages
            .into_iter()
            .filter(|m| m.is_unread_for(reader, read_seq))
            .count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message(seq: u64, sender: UserId, deleted: bool) -> Message {
        let now = chrono::Utc::now();
        Message {
            id: MessageId::generate(),
            conversation_id: ConversationId::generate(),
            seq: Seq::new(seq),
            sender_id: sender,
            kind: MessageKind::Text,
            body: (!deleted).then(|| "hello".to_owned()),
            client_msg_id: None,
            created_at: now,
            edited_at: None,
            deleted_at: deleted.then_some(now),
        }
    }

    proptest! {
        /// The O(1) arithmetic of `Member::unread_count` agrees with counting messages, as long
        /// as sending raises the sender's cursor (which the message path guarantees).
        #[test]
        fn member_unread_arithmetic_agrees_with_counting(
            log in proptest::collection::vec((any::<bool>(), any::<bool>(), any::<bool>()), 0..60),
        ) {
            use crate::{DeletedSeqs, Member, Role};
            let (me, other) = (UserId::generate(), UserId::generate());
            let mut read = 0u64;
            let mut messages = Vec::new();
            for (i, &(mine, deleted, read_now)) in log.iter().enumerate() {
                let seq = i as u64 + 1;
                messages.push(message(seq, if mine { me } else { other }, deleted));
                if mine || read_now {
                    read = seq;
                }
            }
            let last = Seq::new(messages.len() as u64);
            let deleted = DeletedSeqs::new(messages.iter().filter(|m| m.deleted_at.is_some()).map(|m| m.seq).collect());
            let member = Member {
                conversation_id: ConversationId::generate(), user_id: me, role: Role::Member,
                joined_at: chrono::Utc::now(), read_seq: Seq::new(read), delivered_seq: Seq::new(read), muted_until: None,
            };
            prop_assert_eq!(member.unread_count(last, &deleted), Message::unread_count(&messages, me, Seq::new(read)));
        }

        #[test]
        fn unread_count_counts_others_undeleted_messages_above_the_cursor(
            log in proptest::collection::vec((any::<bool>(), any::<bool>()), 0..60),
            read in 0u64..70,
        ) {
            let (me, other) = (UserId::generate(), UserId::generate());
            let messages: Vec<Message> = log.iter().enumerate()
                .map(|(i, &(mine, deleted))| message(i as u64 + 1, if mine { me } else { other }, deleted))
                .collect();
            let expected = log.iter().enumerate()
                .filter(|&(i, &(mine, deleted))| i as u64 + 1 > read && !mine && !deleted)
                .count() as u64;
            prop_assert_eq!(Message::unread_count(&messages, me, Seq::new(read)), expected);
        }

        #[test]
        fn cursors_never_move_back_nor_past_the_end(current in 0u64..100, reported in 0u64..200, last in 0u64..100) {
            prop_assume!(current <= last);
            let next = Seq::new(current).advance_to(Seq::new(reported), Seq::new(last));
            prop_assert!(next >= Seq::new(current));
            prop_assert!(next <= Seq::new(last));
        }
    }
}
