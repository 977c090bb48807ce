use std::sync::Arc;

use confab_domain::{
    ClientMsgId, ConversationId, Message, MessageBody, MessageId, MessageKind, UserId,
    ValidationError, ValidationErrors,
};

use crate::ports::{
    Appended, Clock, ConversationRepository, EventPublisher, MessageRepository, NewMessage,
};
use crate::{AppError, Event, MessagePage, PageQuery, SessionId};

/// What a client sends to post a message, unvalidated.
#[derive(Debug, Clone)]
pub struct SendInput {
    /// The conversation to post in.
    pub conversation_id: ConversationId,
    /// The text.
    pub body: Option<String>,
    /// The client's idempotency key.
    pub client_msg_id: Option<String>,
}

/// The result of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The stored message.
    pub message: Message,
    /// False when this was a repeat of an earlier `client_msg_id`: nothing new was stored and
    /// nothing was fanned out.
    pub created: bool,
}

/// Posting messages and reading history.
pub struct MessageService {
    conversations: Arc<dyn ConversationRepository>,
    messages: Arc<dyn MessageRepository>,
    events: Arc<dyn EventPublisher>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MessageService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageService").finish_non_exhaustive()
    }
}

impl MessageService {
    /// The service over its ports.
    pub fn new(
        conversations: Arc<dyn ConversationRepository>,
        messages: Arc<dyn MessageRepository>,
        events: Arc<dyn EventPublisher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            conversations,
            messages,
            events,
            clock,
        }
    }

    /// Posts a message as `sender`. It is stored with the conversation's next seq, and only
    /// then published to every member's sockets except `origin`, the socket that sent it.
    /// A repeated `client_msg_id` returns the first message and publishes nothing.
    pub async fn send(
        &self,
        sender: UserId,
        input: SendInput,
        origin: Option<SessionId>,
    ) -> Result<Sent, AppError> {
        let mut errors = ValidationErrors::new();
        let body = match input.body.as_deref() {
            Some(body) => errors.check(MessageBody::parse(body)),
            None => {
                errors.push(ValidationError::new("body", "is required"));
                None
            }
        };
        let client_msg_id = match input.client_msg_id.as_deref() {
            Some(id) => errors.check(ClientMsgId::parse(id)).map(Some),
            None => Some(None),
        };
        errors.clone().into_result()?;
        let (Some(body), Some(client_msg_id)) = (body, client_msg_id) else {
            return Err(errors.into());
        };

        let conversation_id = input.conversation_id;
        let member = self
            .conversations
            .member(conversation_id, sender)
            .await?
            .ok_or(AppError::NotFound("conversation"))?;
        let now = self.clock.now();
        if !member.may_post(now) {
            return Err(AppError::Forbidden(
                "you are muted in this conversation".into(),
            ));
        }
        // The common resend is answered without opening a write transaction; `append` still
        // catches the race where two copies arrive at once.
        if let Some(key) = &client_msg_id
            && let Some(first) = self.messages.find_by_client_msg_id(sender, key).await?
        {
            return Self::repeat(first, conversation_id);
        }

        let appended = self
            .messages
            .append(NewMessage {
                id: MessageId::generate(),
                conversation_id,
                sender_id: sender,
                kind: MessageKind::Text,
                body,
                client_msg_id,
                created_at: now,
            })
            .await?;
        let message = match appended {
            Appended::Created(message) => message,
            Appended::Existing(first) => return Self::repeat(first, conversation_id),
        };
        let recipients = self.conversations.member_ids(conversation_id).await?;
        self.events
            .publish(Event::MessageCreated {
                message: message.clone(),
                recipients,
                origin,
            })
            .await;
        Ok(Sent {
            message,
            created: true,
        })
    }

    /// A page of history of a conversation the caller is a member of.
    pub async fn history(
        &self,
        caller: UserId,
        conversation_id: ConversationId,
        query: PageQuery,
    ) -> Result<MessagePage, AppError> {
        if !(1..=PageQuery::MAX_LIMIT).contains(&query.limit) {
            return Err(ValidationError::new(
                "limit",
                format!("must be between 1 and {}", PageQuery::MAX_LIMIT),
            )
            .into());
        }
        self.conversations
            .member(conversation_id, caller)
            .await?
            .ok_or(AppError::NotFound("conversation"))?;
        Ok(self.messages.page(conversation_id, query).await?)
    }

    /// A `client_msg_id` names one message per sender: reusing it for another conversation is
    /// a client bug, not a resend.
    fn repeat(first: Message, conversation_id: ConversationId) -> Result<Sent, AppError> {
        if first.conversation_id != conversation_id {
            return Err(AppError::Conflict(
                "client_msg_id was already used for a message in another conversation".into(),
            ));
        }
        Ok(Sent {
            message: first,
            created: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{
        MockClock, MockConversationRepository, MockEventPublisher, MockMessageRepository,
        StoreError,
    };
    use confab_domain::{Member, Role, Seq};

    fn now() -> confab_domain::Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn member(
        conversation_id: ConversationId,
        user_id: UserId,
        muted_until: Option<confab_domain::Timestamp>,
    ) -> Member {
        Member {
            conversation_id,
            user_id,
            role: Role::Member,
            joined_at: now(),
            read_seq: Seq::ZERO,
            delivered_seq: Seq::ZERO,
            muted_until,
        }
    }

    fn stored(new: &NewMessage, seq: u64) -> Message {
        Message {
            id: new.id,
            conversation_id: new.conversation_id,
            seq: Seq::new(seq),
            sender_id: new.sender_id,
            kind: new.kind,
            body: Some(new.body.as_str().to_owned()),
            client_msg_id: new.client_msg_id.clone(),
            created_at: new.created_at,
            edited_at: None,
            deleted_at: None,
        }
    }

    #[derive(Default)]
    struct Mocks {
        conversations: MockConversationRepository,
        messages: MockMessageRepository,
        events: MockEventPublisher,
    }

    impl Mocks {
        fn service(self) -> MessageService {
            let mut clock = MockClock::new();
            clock.expect_now().returning(now);
            MessageService::new(
                Arc::new(self.conversations),
                Arc::new(self.messages),
                Arc::new(self.events),
                Arc::new(clock),
            )
        }

        fn member_of(&mut self, conversation: ConversationId, user: UserId) {
            self.conversations.expect_member().returning(move |c, u| {
                Ok((c == conversation && u == user).then(|| member(c, u, None)))
            });
        }
    }

    fn input(conversation_id: ConversationId, body: &str, key: Option<&str>) -> SendInput {
        SendInput {
            conversation_id,
            body: Some(body.into()),
            client_msg_id: key.map(Into::into),
        }
    }

    #[tokio::test]
    async fn send_stores_then_publishes_to_every_member_but_the_origin_socket() {
        let (ann, bob, conv, origin) = (
            UserId::generate(),
            UserId::generate(),
            ConversationId::generate(),
            SessionId::generate(),
        );
        let mut mocks = Mocks::default();
        mocks.member_of(conv, ann);
        mocks
            .messages
            .expect_append()
            .withf(|new| new.body.as_str() == "hello")
            .returning(|new| Ok(Appended::Created(stored(&new, 1))));
        mocks
            .conversations
            .expect_member_ids()
            .returning(move |_| Ok(vec![ann, bob]));
        mocks
            .events
            .expect_publish()
            .times(1)
            .withf(move |event| {
                matches!(event,
            Event::MessageCreated { message, recipients, origin: Some(o) }
                if message.seq == Seq::new(1) && recipients == &vec![ann, bob] && *o == origin)
            })
            .returning(|_| ());
        let sent = mocks
            .service()
            .send(ann, input(conv, "  hello ", None), Some(origin))
            .await
            .unwrap();
        assert!(sent.created);
        assert_eq!(sent.message.body.as_deref(), Some("hello"));
    }

    #[tokio::test]
    async fn resend_with_the_same_client_msg_id_returns_the_first_and_publishes_nothing() {
        let (ann, conv) = (UserId::generate(), ConversationId::generate());
        let mut mocks = Mocks::default();
        mocks.member_of(conv, ann);
        let first = NewMessage {
            id: MessageId::generate(),
            conversation_id: conv,
            sender_id: ann,
            kind: MessageKind::Text,
            body: MessageBody::parse("hi").unwrap(),
            client_msg_id: Some(ClientMsgId::parse("k1").unwrap()),
            created_at: now(),
        };
        let first = stored(&first, 7);
        let found = first.clone();
        mocks
            .messages
            .expect_find_by_client_msg_id()
            .returning(move |_, _| Ok(Some(found.clone())));
        mocks.events.expect_publish().never();
        let sent = mocks
            .service()
            .send(ann, input(conv, "hi again", Some("k1")), None)
            .await
            .unwrap();
        assert_eq!(
            sent,
            Sent {
                message: first,
                created: false
            }
        );
    }

    #[tokio::test]
    async fn a_resend_that_races_the_first_copy_is_answered_by_append_without_publishing() {
        let (ann, conv) = (UserId::generate(), ConversationId::generate());
        let mut mocks = Mocks::default();
        mocks.member_of(conv, ann);
        mocks
            .messages
            .expect_find_by_client_msg_id()
            .returning(|_, _| Ok(None));
        mocks
            .messages
            .expect_append()
            .returning(|new| Ok(Appended::Existing(stored(&new, 3))));
        mocks.events.expect_publish().never();
        let sent = mocks
            .service()
            .send(ann, input(conv, "hi", Some("k1")), None)
            .await
            .unwrap();
        assert!(!sent.created);
    }

    #[tokio::test]
    async fn reusing_a_client_msg_id_in_another_conversation_is_a_conflict() {
        let (ann, conv, other) = (
            UserId::generate(),
            ConversationId::generate(),
            ConversationId::generate(),
        );
        let mut mocks = Mocks::default();
        mocks.member_of(conv, ann);
        mocks
            .messages
            .expect_find_by_client_msg_id()
            .returning(move |sender, key| {
                let new = NewMessage {
                    id: MessageId::generate(),
                    conversation_id: other,
                    sender_id: sender,
                    kind: MessageKind::Text,
                    body: MessageBody::parse("x").unwrap(),
                    client_msg_id: Some(key.clone()),
                    created_at: now(),
                };
                Ok(Some(stored(&new, 1)))
            });
        let result = mocks
            .service()
            .send(ann, input(conv, "hi", Some("k1")), None)
            .await;
        assert!(matches!(result, Err(AppError::Conflict(_))));
    }

    #[tokio::test]
    async fn a_non_member_cannot_send_and_learns_nothing() {
        let mut mocks = Mocks::default();
        mocks
            .conversations
            .expect_member()
            .returning(|_, _| Ok(None));
        mocks.messages.expect_append().never();
        let result = mocks
            .service()
            .send(
                UserId::generate(),
                input(ConversationId::generate(), "hi", None),
                None,
            )
            .await;
        assert!(matches!(result, Err(AppError::NotFound("conversation"))));
    }

    #[tokio::test]
    async fn a_muted_member_cannot_send() {
        let mut mocks = Mocks::default();
        mocks.conversations.expect_member().returning(|c, u| {
            Ok(Some(member(
                c,
                u,
                Some(now() + chrono::Duration::minutes(1)),
            )))
        });
        mocks.messages.expect_append().never();
        let result = mocks
            .service()
            .send(
                UserId::generate(),
                input(ConversationId::generate(), "hi", None),
                None,
            )
            .await;
        assert!(matches!(result, Err(AppError::Forbidden(_))));
    }

    #[tokio::test]
    async fn invalid_body_and_key_are_both_reported_before_any_lookup() {
        let service = Mocks::default().service();
        let bad = SendInput {
            conversation_id: ConversationId::generate(),
            body: Some(" ".into()),
            client_msg_id: Some(String::new()),
        };
        let Err(AppError::Validation(errors)) = service.send(UserId::generate(), bad, None).await
        else {
            panic!("expected validation")
        };
        let fields: Vec<_> = errors.errors().iter().map(|e| e.field).collect();
        assert_eq!(fields, ["body", "client_msg_id"]);
        let missing = SendInput {
            conversation_id: ConversationId::generate(),
            body: None,
            client_msg_id: None,
        };
        assert!(matches!(
            service.send(UserId::generate(), missing, None).await,
            Err(AppError::Validation(_))
        ));
    }

    #[tokio::test]
    async fn a_storage_failure_is_internal_and_publishes_nothing() {
        let (ann, conv) = (UserId::generate(), ConversationId::generate());
        let mut mocks = Mocks::default();
        mocks.member_of(conv, ann);
        mocks
            .messages
            .expect_append()
            .returning(|_| Err(StoreError::Backend("disk on fire".into())));
        mocks.events.expect_publish().never();
        let result = mocks
            .service()
            .send(ann, input(conv, "hi", None), None)
            .await;
        assert!(matches!(result, Err(AppError::Internal(_))));
    }

    #[tokio::test]
    async fn history_limit_must_be_within_bounds() {
        let service = Mocks::default().service();
        for limit in [0, PageQuery::MAX_LIMIT + 1] {
            let query = PageQuery {
                limit,
                ..PageQuery::default()
            };
            assert!(matches!(
                service
                    .history(UserId::generate(), ConversationId::generate(), query)
                    .await,
                Err(AppError::Validation(_))
            ));
        }
    }

    #[tokio::test]
    async fn history_of_a_non_member_is_not_found() {
        let mut mocks = Mocks::default();
        mocks
            .conversations
            .expect_member()
            .returning(|_, _| Ok(None));
        mocks.messages.expect_page().never();
        let query = PageQuery {
            limit: 10,
            ..PageQuery::default()
        };
        assert!(matches!(
            mocks
                .service()
                .history(UserId::generate(), ConversationId::generate(), query)
                .await,
            Err(AppError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn history_of_a_member_is_the_repository_page() {
        let (ann, conv) = (UserId::generate(), ConversationId::generate());
        let mut mocks = Mocks::default();
        mocks.member_of(conv, ann);
        let query = PageQuery {
            before: Some(Seq::new(10)),
            after: None,
            limit: 5,
        };
        mocks
            .messages
            .expect_page()
            .withf(move |c, q| *c == conv && *q == query)
            .returning(|_, _| {
                Ok(MessagePage {
                    messages: vec![],
                    has_more: true,
                })
            });
        let page = mocks.service().history(ann, conv, query).await.unwrap();
        assert!(page.has_more);
    }
}
