use std::sync::Arc;

use confab_domain::{Conversation, ConversationId, DeletedSeqs, Member, Message, Seq};

use crate::ports::{ConversationRepository, EventPublisher, MessageRepository};
use crate::{AppError, Event, MemberActivity};

/// Tells members that a conversation moved: new activity, a deletion, a read on another
/// device. Each gets their own unread count, computed by arithmetic from the cursors already
/// at hand (`Member::unread_count`), so the cost is at most two queries whatever the member
/// count, and none when the caller knows the conversation and its newest message.
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
        // Deleted messages matter only above someone's cursor; usually there are none.
        let deleted = if lowest_cursor < conversation.last_deleted_seq {
            DeletedSeqs::new(
                self.messages
                    .deleted_seqs(conversation_id, lowest_cursor)
                    .await?,
            )
        } else {
            DeletedSeqs::default()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockConversationRepository, MockEventPublisher, MockMessageRepository};
    use confab_domain::{ConversationKind, Role, UserId};

    fn now() -> confab_domain::Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn conversation(last_seq: u64, last_deleted_seq: u64) -> Conversation {
        Conversation {
            id: ConversationId::generate(),
            kind: ConversationKind::Group,
            name: Some("team".into()),
            topic: None,
            created_at: now(),
            updated_at: now(),
            last_seq: Seq::new(last_seq),
            last_deleted_seq: Seq::new(last_deleted_seq),
        }
    }

    fn member(conversation: &Conversation, read_seq: u64) -> Member {
        Member {
            conversation_id: conversation.id,
            user_id: UserId::generate(),
            role: Role::Member,
            joined_at: now(),
            read_seq: Seq::new(read_seq),
            delivered_seq: Seq::new(read_seq),
            muted_until: None,
        }
    }

    /// The counts each member was told, in member order.
    async fn notify(
        conversation: Conversation,
        members: &[Member],
        messages: MockMessageRepository,
    ) -> Vec<u64> {
        let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut events = MockEventPublisher::new();
        let sink = told.clone();
        events.expect_publish().times(1).returning(move |event| {
            if let Event::ConversationUpdated { members, .. } = event {
                sink.lock()
                    .unwrap()
                    .extend(members.iter().map(|m| m.unread_count));
            }
        });
        let mut last = messages;
        last.expect_last_messages().returning(|_| Ok(vec![]));
        let notifier = ActivityNotifier::new(
            Arc::new(MockConversationRepository::new()),
            Arc::new(last),
            Arc::new(events),
        );
        notifier
            .notify(conversation.id, Some(conversation), members, None)
            .await
            .unwrap();
        told.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn without_deletions_above_any_cursor_counts_need_no_lookup() {
        let conversation = conversation(10, 2);
        let members = [member(&conversation, 4), member(&conversation, 10)];
        let mut messages = MockMessageRepository::new();
        messages.expect_deleted_seqs().never();
        assert_eq!(notify(conversation, &members, messages).await, [6, 0]);
    }

    #[tokio::test]
    async fn deletions_above_a_cursor_are_looked_up_once_and_left_out_of_each_count() {
        let conversation = conversation(10, 8);
        let id = conversation.id;
        let members = [member(&conversation, 4), member(&conversation, 7)];
        let mut messages = MockMessageRepository::new();
        messages
            .expect_deleted_seqs()
            .times(1)
            .withf(move |c, above| *c == id && *above == Seq::new(4))
            .returning(|_, _| Ok(vec![Seq::new(5), Seq::new(8)]));
        assert_eq!(notify(conversation, &members, messages).await, [4, 2]);
    }
}
