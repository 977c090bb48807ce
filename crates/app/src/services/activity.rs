use std::sync::Arc;

use confab_domain::{Conversation, ConversationId, Member, Message, Seq};

use crate::ports::{ConversationRepository, EventPublisher, MessageRepository};
use crate::{AppError, Event, MemberActivity};

/// Tells members that a conversation moved: new activity, a deletion, a read on another
/// device. Each gets their own unread count, computed by arithmetic from the cursors already
/// at hand (`Member::unread_count`), so the cost is two queries whatever the member count.
pub(crate) struct ActivityNotifier {
    conversations: Arc<dyn ConversationRepository>,
    messages: Arc<dyn MessageRepository>,
    events: Arc<dyn EventPublisher>,
}

impl ActivityNotifier {
    pub(crate) fn new(
        conversations: Arc<dyn ConversationRepository>,
        messages: Arc<dyn MessageRepository>,
        events: Arc<dyn EventPublisher>,
    ) -> Self {
        Self {
            conversations,
            messages,
            events,
        }
    }

    /// Publishes `conversation.updated` to each of `members`, with their cursors as given.
    /// `known`, when the caller already holds the conversation as it now stands, and
    /// `last_message` save queries.
    pub(crate) async fn notify(
        &self,
        conversation_id: ConversationId,
        known: Option<Conversation>,
        members: &[Member],
        last_message: Option<Message>,
    ) -> Result<(), AppError> {
        if members.is_empty() {
            return Ok(());
        }
        let conversation = match known {
            Some(conversation) => conversation,
            None => match self.conversations.find(conversation_id).await? {
                Some(conversation) => conversation,
                None => return Ok(()),
            },
        };
        let last_message = match last_message {
            Some(message) if message.seq == conversation.last_seq => Some(message),
            _ => self.messages.last_messages(&[conversation_id]).await?.pop(),
        };
        let lowest_cursor = members
            .iter()
            .map(|m| m.read_seq)
            .min()
            .unwrap_or(Seq::ZERO);
        let deleted = if lowest_cursor < conversation.last_seq {
            self.messages
                .deleted_seqs(conversation_id, lowest_cursor)
                .await?
        } else {
            Vec::new()
        };
        let members = members
            .iter()
            .map(|member| MemberActivity {
                user_id: member.user_id,
                role: member.role,
                unread_count: member.unread_count(conversation.last_seq, &deleted),
            })
            .collect();
        self.events
            .publish(Event::ConversationUpdated {
                conversation,
                last_message,
                members,
            })
            .await;
        Ok(())
    }
}
