use std::fmt;
use std::str::FromStr;

use crate::{ConversationId, DeletedSeqs, Seq, Timestamp, UserId, ValidationError};

/// What kind of conversation this is, which decides who can be in it and how they join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum ConversationKind {
    /// Exactly two users; one per pair.
    Direct,
    /// A private group: members are added by its admins.
    Group,
    /// A public room that anyone may find and join.
    Room,
}

impl ConversationKind {
    /// The name used in the API and in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Group => "group",
            Self::Room => "room",
        }
    }
}

impl FromStr for ConversationKind {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "direct" => Ok(Self::Direct),
            "group" => Ok(Self::Group),
            "room" => Ok(Self::Room),
            _ => Err(ValidationError::new(
                "kind",
                "must be direct, group or room",
            )),
        }
    }
}

impl fmt::Display for ConversationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member's standing in a conversation, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Role {
    /// Created the conversation; can do everything.
    Owner,
    /// Manages members and moderators.
    Admin,
    /// Bans, mutes and deletes others' messages.
    Moderator,
    /// Reads and posts.
    Member,
}

impl Role {
    /// The name used in the API and in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Moderator => "moderator",
            Self::Member => "member",
        }
    }

    /// Higher is more powerful; used to compare roles.
    const fn rank(self) -> u8 {
        match self {
            Self::Owner => 3,
            Self::Admin => 2,
            Self::Moderator => 1,
            Self::Member => 0,
        }
    }

    /// Whether this role may moderate (ban, mute, delete others' messages).
    ///
    /// ```
    /// use confab_domain::Role;
    /// assert!(Role::Moderator.can_moderate());
    /// assert!(!Role::Member.can_moderate());
    /// ```
    pub const fn can_moderate(self) -> bool {
        self.rank() >= Role::Moderator.rank()
    }
}

impl FromStr for Role {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Self::Owner),
            "admin" => Ok(Self::Admin),
            "moderator" => Ok(Self::Moderator),
            "member" => Ok(Self::Member),
            _ => Err(ValidationError::new(
                "role",
                "must be owner, admin, moderator or member",
            )),
        }
    }
}

/// A conversation: its identity, its name, and where its message sequence stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Conversation {
    /// The conversation's id.
    pub id: ConversationId,
    /// Direct, group or room.
    pub kind: ConversationKind,
    /// The name of a group or room; `None` for a direct conversation.
    pub name: Option<String>,
    /// An optional topic line.
    pub topic: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// The last activity: creation or the newest message. Conversation lists sort by it.
    pub updated_at: Timestamp,
    /// The seq of the newest message (`Seq::ZERO` while empty).
    pub last_seq: Seq,
    /// The highest seq of a deleted message (`Seq::ZERO` if none was ever deleted). Unread
    /// counts leave deleted messages out; only a cursor below this needs the deleted seqs
    /// looked up, so most updates need no lookup at all.
    #[cfg_attr(feature = "serde", serde(default))]
    pub last_deleted_seq: Seq,
}

/// A user's membership in a conversation, with their read and delivery cursors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The member.
    pub user_id: UserId,
    /// Their standing.
    pub role: Role,
    /// When they joined.
    pub joined_at: Timestamp,
    /// The highest seq they have read: every message up to it counts as read.
    pub read_seq: Seq,
    /// The highest seq one of their devices has received.
    pub delivered_seq: Seq,
    /// Until when they may not post, if muted.
    pub muted_until: Option<Timestamp>,
}

impl Member {
    /// Whether the member may post at `now`: not while muted.
    ///
    /// ```
    /// # use confab_domain::*;
    /// # let now = chrono::Utc::now();
    /// # let mut member = Member { conversation_id: ConversationId::generate(), user_id: UserId::generate(),
    /// #   role: Role::Member, joined_at: now, read_seq: Seq::ZERO, delivered_seq: Seq::ZERO, muted_until: None };
    /// assert!(member.may_post(now));
    /// member.muted_until = Some(now + chrono::Duration::minutes(5));
    /// assert!(!member.may_post(now));
    /// ```
    pub fn may_post(&self, now: Timestamp) -> bool {
        self.muted_until.is_none_or(|until| until <= now)
    }
}

impl Member {
    /// The member's unread count without counting rows: everything above their read cursor,
    /// less the deleted messages above it.
    ///
    /// This rests on an invariant the message path keeps: sending a message raises the
    /// sender's read cursor to it, so a member's own messages are never above their cursor.
    /// `deleted` holds the seqs of deleted messages (those at or below the cursor are ignored).
    ///
    /// ```
    /// # use confab_domain::*;
    /// # let now = chrono::Utc::now();
    /// let member = Member { conversation_id: ConversationId::generate(), user_id: UserId::generate(),
    ///     role: Role::Member, joined_at: now, read_seq: Seq::new(3), delivered_seq: Seq::new(3), muted_until: None };
    /// let deleted = DeletedSeqs::new(vec![Seq::new(2), Seq::new(5)]);
    /// assert_eq!(member.unread_count(Seq::new(10), &deleted), 6);
    /// ```
    pub fn unread_count(&self, last_seq: Seq, deleted: &DeletedSeqs) -> u64 {
        let above = last_seq.value().saturating_sub(self.read_seq.value());
        above.saturating_sub(deleted.count_in(self.read_seq, last_seq))
    }
}

/// The two users of a direct conversation, in a canonical order, so that "Ann with Bob" and
/// "Bob with Ann" are the same conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DirectPair {
    low: UserId,
    high: UserId,
}

impl DirectPair {
    /// The pair of `a` and `b`, in either order. A user cannot open a direct conversation with
    /// themselves.
    ///
    /// ```
    /// use confab_domain::{DirectPair, UserId};
    /// let (ann, bob) = (UserId::generate(), UserId::generate());
    /// assert_eq!(DirectPair::new(ann, bob).unwrap(), DirectPair::new(bob, ann).unwrap());
    /// assert!(DirectPair::new(ann, ann).is_err());
    /// ```
    pub fn new(a: UserId, b: UserId) -> Result<Self, ValidationError> {
        if a == b {
            return Err(ValidationError::new(
                "username",
                "a direct conversation needs another user",
            ));
        }
        Ok(Self {
            low: a.min(b),
            high: a.max(b),
        })
    }

    /// A stable key for the pair, the same whichever user asks; storage keeps it unique.
    pub fn key(&self) -> String {
        format!("{}:{}", self.low, self.high)
    }

    /// Both users, lower id first.
    pub fn users(&self) -> [UserId; 2] {
        [self.low, self.high]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kind_and_role_names_roundtrip() {
        for kind in [
            ConversationKind::Direct,
            ConversationKind::Group,
            ConversationKind::Room,
        ] {
            assert_eq!(kind.as_str().parse::<ConversationKind>().unwrap(), kind);
        }
        for role in [Role::Owner, Role::Admin, Role::Moderator, Role::Member] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("boss".parse::<Role>().is_err());
    }

    #[test]
    fn only_moderators_and_up_moderate() {
        assert!(Role::Owner.can_moderate());
        assert!(Role::Admin.can_moderate());
        assert!(Role::Moderator.can_moderate());
        assert!(!Role::Member.can_moderate());
    }

    proptest! {
        #[test]
        fn direct_pair_key_is_independent_of_order(a in any::<u128>(), b in any::<u128>()) {
            prop_assume!(a != b);
            let a = UserId::from_uuid(uuid::Uuid::from_u128(a));
            let b = UserId::from_uuid(uuid::Uuid::from_u128(b));
            prop_assert_eq!(DirectPair::new(a, b).unwrap().key(), DirectPair::new(b, a).unwrap().key());
        }
    }
}
