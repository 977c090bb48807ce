//! Conversions between rows and domain values, in one place. A stored value that the domain
//! rejects (an unknown kind, a negative seq) is a `Backend` error, never a panic.

use confab_app::ports::{NewMessage, NewUser, StoreError, StoreResult, UserCredentials};
use confab_domain::{
    ClientMsgId, Conversation, ConversationId, DisplayName, Email, Member, Message, MessageId, Seq,
    User, UserId, Username,
};
use sea_orm::ActiveValue::Set;

use crate::entities::{conversation_members, conversations, messages, users};
use crate::error::corrupt;

/// A seq read from `column`.
pub(crate) fn seq_from_db(column: &'static str, value: i64) -> StoreResult<Seq> {
    u64::try_from(value)
        .map(Seq::new)
        .map_err(|err| corrupt(column, err))
}

/// A seq to store. Seqs are handed out one by one from 0, so one beyond `i64::MAX` means a
/// bug upstream.
pub(crate) fn seq_to_db(seq: Seq) -> StoreResult<i64> {
    i64::try_from(seq.value()).map_err(|err| StoreError::Backend(Box::new(err)))
}

/// A seq used only as a query bound, such as a client's `before` or `after`. No stored seq
/// exceeds `i64::MAX`, so saturating gives the same answer as the exact bound would, and an
/// absurd cursor from a client reads as "beyond everything" instead of failing.
pub(crate) fn seq_bound(seq: Seq) -> i64 {
    i64::try_from(seq.value()).unwrap_or(i64::MAX)
}

pub(crate) fn user(row: users::Model) -> StoreResult<User> {
    Ok(User {
        id: UserId::from_uuid(row.id),
        username: Username::parse(&row.username).map_err(|err| corrupt("users.username", err))?,
        display_name: DisplayName::parse(&row.display_name)
            .map_err(|err| corrupt("users.display_name", err))?,
        email: Email::parse(&row.email).map_err(|err| corrupt("users.email", err))?,
        created_at: row.created_at,
    })
}

pub(crate) fn credentials(mut row: users::Model) -> StoreResult<UserCredentials> {
    let password_hash = std::mem::take(&mut row.password_hash);
    Ok(UserCredentials {
        user: user(row)?,
        password_hash,
    })
}

pub(crate) fn new_user_row(user: &NewUser) -> users::ActiveModel {
    users::ActiveModel {
        id: Set(user.id.as_uuid()),
        username: Set(user.username.as_str().to_owned()),
        email: Set(user.email.as_str().to_owned()),
        display_name: Set(user.display_name.as_str().to_owned()),
        password_hash: Set(user.password_hash.clone()),
        created_at: Set(user.created_at),
        last_seen_at: Set(None),
    }
}

/// The account just stored from `user`, as it now reads back.
pub(crate) fn created_user(user: NewUser) -> User {
    User {
        id: user.id,
        username: user.username,
        display_name: user.display_name,
        email: user.email,
        created_at: user.created_at,
    }
}

pub(crate) fn conversation(row: conversations::Model) -> StoreResult<Conversation> {
    Ok(Conversation {
        id: ConversationId::from_uuid(row.id),
        kind: row
            .kind
            .parse()
            .map_err(|err| corrupt("conversations.kind", err))?,
        name: row.name,
        topic: row.topic,
        created_at: row.created_at,
        updated_at: row.updated_at,
        last_seq: seq_from_db("conversations.last_seq", row.last_seq)?,
        last_deleted_seq: seq_from_db("conversations.last_deleted_seq", row.last_deleted_seq)?,
    })
}

/// The row for `conversation`; `direct_key` is set for direct conversations only.
pub(crate) fn conversation_row(
    conversation: &Conversation,
    direct_key: Option<String>,
) -> StoreResult<conversations::ActiveModel> {
    Ok(conversations::ActiveModel {
        id: Set(conversation.id.as_uuid()),
        kind: Set(conversation.kind.as_str().to_owned()),
        name: Set(conversation.name.clone()),
        topic: Set(conversation.topic.clone()),
        direct_key: Set(direct_key),
        created_at: Set(conversation.created_at),
        updated_at: Set(conversation.updated_at),
        last_seq: Set(seq_to_db(conversation.last_seq)?),
        last_deleted_seq: Set(seq_to_db(conversation.last_deleted_seq)?),
    })
}

pub(crate) fn member(row: conversation_members::Model) -> StoreResult<Member> {
    Ok(Member {
        conversation_id: ConversationId::from_uuid(row.conversation_id),
        user_id: UserId::from_uuid(row.user_id),
        role: row
            .role
            .parse()
            .map_err(|err| corrupt("conversation_members.role", err))?,
        joined_at: row.joined_at,
        read_seq: seq_from_db("conversation_members.read_seq", row.read_seq)?,
        delivered_seq: seq_from_db("conversation_members.delivered_seq", row.delivered_seq)?,
        muted_until: row.muted_until,
    })
}

pub(crate) fn member_row(member: &Member) -> StoreResult<conversation_members::ActiveModel> {
    Ok(conversation_members::ActiveModel {
        conversation_id: Set(member.conversation_id.as_uuid()),
        user_id: Set(member.user_id.as_uuid()),
        role: Set(member.role.as_str().to_owned()),
        joined_at: Set(member.joined_at),
        read_seq: Set(seq_to_db(member.read_seq)?),
        delivered_seq: Set(seq_to_db(member.delivered_seq)?),
        muted_until: Set(member.muted_until),
    })
}

pub(crate) fn message(row: messages::Model) -> StoreResult<Message> {
    Ok(Message {
        id: MessageId::from_uuid(row.id),
        conversation_id: ConversationId::from_uuid(row.conversation_id),
        seq: seq_from_db("messages.seq", row.seq)?,
        sender_id: UserId::from_uuid(row.sender_id),
        kind: row
            .kind
            .parse()
            .map_err(|err| corrupt("messages.kind", err))?,
        body: row.body,
        client_msg_id: row
            .client_msg_id
            .map(|id| ClientMsgId::parse(&id))
            .transpose()
            .map_err(|err| corrupt("messages.client_msg_id", err))?,
        created_at: row.created_at,
        edited_at: row.edited_at,
        deleted_at: row.deleted_at,
    })
}

pub(crate) fn new_message_row(message: &NewMessage, seq: i64) -> messages::ActiveModel {
    messages::ActiveModel {
        id: Set(message.id.as_uuid()),
        conversation_id: Set(message.conversation_id.as_uuid()),
        seq: Set(seq),
        sender_id: Set(message.sender_id.as_uuid()),
        kind: Set(message.kind.as_str().to_owned()),
        body: Set(Some(message.body.as_str().to_owned())),
        client_msg_id: Set(message
            .client_msg_id
            .as_ref()
            .map(|id| id.as_str().to_owned())),
        created_at: Set(message.created_at),
        edited_at: Set(None),
        deleted_at: Set(None),
    }
}

/// The message just stored from `message` with `seq`, as it now reads back.
pub(crate) fn appended_message(message: NewMessage, seq: Seq) -> Message {
    Message {
        id: message.id,
        conversation_id: message.conversation_id,
        seq,
        sender_id: message.sender_id,
        kind: message.kind,
        body: Some(message.body.as_str().to_owned()),
        client_msg_id: message.client_msg_id,
        created_at: message.created_at,
        edited_at: None,
        deleted_at: None,
    }
}

/// Each item of `rows` converted, or the first failure.
pub(crate) fn all<R, T>(rows: Vec<R>, convert: fn(R) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.into_iter().map(convert).collect()
}
