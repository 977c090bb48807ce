//! What a post reads besides what it writes (the conversation and its members), and what
//! becomes of each message: stored, or refused because of the sender's membership.
//!
//! The membership check is made by the store in the same transaction as the write, so that a
//! message costs one trip to the database. On Postgres the check is SQL (see
//! `group_commit.rs`); the answer is read here, with the domain's own rule, from the members
//! the same statement returns, so both backends tell refusals apart in one place.

use std::collections::HashMap;

use confab_app::ports::{NewMessage, Posted, StoreError, StoreResult};
use confab_domain::{Conversation, ConversationId, Member};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect,
    RelationTrait,
};

use crate::convert;
use crate::entities::{conversation_members, conversations};
use crate::error::store_error;

/// A conversation with its members, oldest member first.
pub(crate) type Posting = (Conversation, Vec<Member>);

/// What became of `message`, which the store gave `seq` or refused (`None`). `found` is its
/// conversation with its members as they stood before it, if the conversation exists; a
/// stored message moves its sender's cursors there, so that later messages of the same batch
/// see them as they now stand.
pub(crate) fn outcome(
    message: NewMessage,
    seq: Option<i64>,
    found: Option<&mut Posting>,
) -> StoreResult<Posted> {
    let sender = message.sender_id;
    let Some((conversation, members)) = found else {
        return match seq {
            None => Ok(Posted::NotMember),
            Some(_) => Err(StoreError::Backend(
                format!("message {} was stored in no conversation", message.id).into(),
            )),
        };
    };
    let Some(seq) = seq else {
        return match members.iter().find(|m| m.user_id == sender) {
            None => Ok(Posted::NotMember),
            Some(member) if !member.may_post(message.created_at) => Ok(Posted::Muted),
            Some(_) => Err(StoreError::Backend(
                format!("message {} was neither stored nor refused", message.id).into(),
            )),
        };
    };
    let seq = convert::seq_from_db("conversations.last_seq", seq)?;
    // The store raised the sender's cursors with the message; the copy read before must agree.
    for member in members.iter_mut().filter(|m| m.user_id == sender) {
        member.read_seq = member.read_seq.max(seq);
        member.delivered_seq = member.delivered_seq.max(seq);
    }
    Ok(Posted::Created {
        message: convert::appended_message(message, seq),
        conversation: conversation.clone(),
        members: members.clone(),
    })
}

/// Each of these conversations that exists, with its members (oldest first), in one query.
/// Postgres reads them within the batch statement instead.
pub(crate) async fn load(
    db: &impl ConnectionTrait,
    ids: &[ConversationId],
) -> StoreResult<HashMap<ConversationId, Posting>> {
    let rows = conversation_members::Entity::find()
        .select_also(conversations::Entity)
        .join(
            JoinType::InnerJoin,
            conversation_members::Relation::Conversation.def(),
        )
        .filter(
            conversation_members::Column::ConversationId
                .is_in(ids.iter().map(ConversationId::as_uuid)),
        )
        .order_by_asc(conversation_members::Column::ConversationId)
        .order_by_asc(conversation_members::Column::JoinedAt)
        .order_by_asc(conversation_members::Column::UserId)
        .all(db)
        .await
        .map_err(store_error)?;
    let mut found = HashMap::with_capacity(ids.len());
    for (member, conversation) in rows {
        gather(&mut found, member, conversation)?;
    }
    Ok(found)
}

/// Adds a member row, read with its conversation's row, to `found`. Rows of one conversation
/// come together, oldest member first.
pub(crate) fn gather(
    found: &mut HashMap<ConversationId, Posting>,
    member: conversation_members::Model,
    conversation: Option<conversations::Model>,
) -> StoreResult<()> {
    let id = ConversationId::from_uuid(member.conversation_id);
    let member = convert::member(member)?;
    match found.get_mut(&id) {
        Some((_, members)) => members.push(member),
        None => {
            if let Some(row) = conversation {
                found.insert(id, (convert::conversation(row)?, vec![member]));
            }
        }
    }
    Ok(())
}
