use std::sync::Arc;

use confab_domain::{
    ClientMsgId, Conversation, ConversationId, ConversationKind, Member, Message, MessageBody,
    MessageId, MessageKind, Seq, UserId, ValidationError, ValidationErrors,
};

use super::activity::ActivityNotifier;
use super::kinds::KnownKinds;
use crate::ports::{
    Clock, ConversationRepository, EventPublisher, MessageRepository, NewMessage, Posted,
    RateDecision, RateLimit, RateLimiter,
};
use crate::{AppError, Backlog, Event, MessagePage, PageQuery, SessionId};

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

/// Posting, editing and deleting messages; reading history; catching a device up.
pub struct MessageService {
    conversations: Arc<dyn ConversationRepository>,
    messages: Arc<dyn MessageRepository>,
    events: Arc<dyn EventPublisher>,
    clock: Arc<dyn Clock>,
    limiter: Arc<dyn RateLimiter>,
    limits: SendLimits,
    activity: ActivityNotifier,
    kinds: KnownKinds,
}

/// How many messages a user may send per window, by kind of conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendLimits {
    /// In direct conversations, all together.
    pub direct: RateLimit,
    /// In groups and rooms, all together.
    pub group: RateLimit,
}

impl Default for SendLimits {
    fn default() -> Self {
        Self {
            direct: RateLimit::per_minute(20),
            group: RateLimit::per_minute(30),
        }
    }
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
        limiter: Arc<dyn RateLimiter>,
        limits: SendLimits,
    ) -> Self {
        let activity =
            ActivityNotifier::new(conversations.clone(), messages.clone(), events.clone());
        Self {
            conversations,
            messages,
            events,
            clock,
            limiter,
            limits,
            activity,
            kinds: KnownKinds::default(),
        }
    }

    /// Posts a message as `sender`. It is stored with the conversation's next seq, and only
    /// then published: `message.new` to every member's sockets except `origin` (the socket
    /// that sent it), and `conversation.updated` with each member's unread count. A repeated
    /// `client_msg_id` returns the first message and publishes nothing.
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
        // The limit depends on the kind of conversation, which never changes. Once a send has
        // learnt it, the limit is checked first and the post then checks the membership and
        // stores the message in one trip to the store. A refused send (not a member, muted)
        // still counts against the sender's limit, which is theirs to spend.
        let kind = match self.kinds.get(conversation_id) {
            Some(kind) => kind,
            None => {
                let conversation = self
                    .conversations
                    .find(conversation_id)
                    .await?
                    .ok_or(AppError::NotFound("conversation"))?;
                self.kinds.remember(conversation_id, conversation.kind);
                conversation.kind
            }
        };
        if let Err(limited) = self.check_rate(sender, kind).await {
            return self
                .refuse_over_limit(sender, conversation_id, client_msg_id, limited)
                .await;
        }

        // A resent `client_msg_id` is caught by the store's unique index rather than looked
        // up first: resends are rare, and every send would pay for the lookup.
        let key = client_msg_id.clone();
        let posted = self
            .messages
            .post(NewMessage {
                id: MessageId::generate(),
                conversation_id,
                sender_id: sender,
                kind: MessageKind::Text,
                body,
                client_msg_id,
                created_at: self.clock.now(),
            })
            .await?;
        let (message, conversation, members) = match posted {
            Posted::Created {
                message,
                conversation,
                members,
            } => (message, conversation, members),
            Posted::Existing(first) => return Self::repeat(first, conversation_id),
            Posted::NotMember => return Err(AppError::NotFound("conversation")),
            Posted::Muted => {
                // As over the limit: a resend of a message stored before the mute is answered
                // with it, so that the client's outbox does not keep a message that went out.
                if let Some(first) = self.first_copy(sender, key.as_ref()).await? {
                    return Self::repeat(first, conversation_id);
                }
                return Err(AppError::Forbidden(
                    "you are muted in this conversation".into(),
                ));
            }
        };
        let recipients = members.iter().map(|m| m.user_id).collect();
        self.events
            .publish(Event::MessageCreated {
                message: message.clone(),
                recipients,
                origin,
            })
            .await;
        self.notify_activity(
            conversation_id,
            Some(Conversation {
                last_seq: message.seq,
                updated_at: message.created_at,
                ..conversation
            }),
            &members,
            Some(message.clone()),
        )
        .await;
        Ok(Sent {
            message,
            created: true,
        })
    }

    /// Replaces the body of the caller's own message and tells every member
    /// (`message.updated`). `conversation`, when the client named one (REST), must be the
    /// message's.
    pub async fn edit(
        &self,
        caller: UserId,
        message_id: MessageId,
        body: &str,
        conversation: Option<ConversationId>,
    ) -> Result<Message, AppError> {
        let body = MessageBody::parse(body)?;
        let (message, members) = self
            .visible_message(caller, message_id, conversation)
            .await?;
        if message.deleted_at.is_some() {
            return Err(AppError::Conflict(
                "a deleted message cannot be edited".into(),
            ));
        }
        if !message.may_edit(caller) {
            return Err(AppError::Forbidden(
                "only the author may edit a message".into(),
            ));
        }
        let edited = self
            .messages
            .edit(message.id, body, self.clock.now())
            .await?;
        let recipients = members.iter().map(|m| m.user_id).collect();
        self.events
            .publish(Event::MessageUpdated {
                message: edited.clone(),
                recipients,
            })
            .await;
        Ok(edited)
    }

    /// Deletes the caller's own message: it keeps its id and seq and loses its body. Every
    /// member hears `message.deleted`, and unread counts that included it drop. Deleting a
    /// deleted message changes nothing and answers the message as it is.
    pub async fn delete(
        &self,
        caller: UserId,
        message_id: MessageId,
        conversation: Option<ConversationId>,
    ) -> Result<Message, AppError> {
        let (message, members) = self
            .visible_message(caller, message_id, conversation)
            .await?;
        if !message.may_delete(caller) {
            return Err(AppError::Forbidden(
                "only the author may delete a message".into(),
            ));
        }
        if message.deleted_at.is_some() {
            return Ok(message);
        }
        let deleted = self.messages.delete(message.id, self.clock.now()).await?;
        let recipients = members.iter().map(|m| m.user_id).collect();
        self.events
            .publish(Event::MessageDeleted {
                message: deleted.clone(),
                recipients,
            })
            .await;
        self.notify_activity(deleted.conversation_id, None, &members, None)
            .await;
        Ok(deleted)
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

    /// What a connecting device of `user` missed, conversation by conversation: the messages
    /// above the user's delivery cursor, at most `per_conversation` of them (the newest), with
    /// the range left out when there were more. Every conversation of the user is listed, with
    /// its newest seq, so the socket knows where each stands.
    pub async fn backlog(
        &self,
        user: UserId,
        per_conversation: u32,
    ) -> Result<Vec<Backlog>, AppError> {
        let conversations = self.conversations.list_for_user(user).await?;
        let ids: Vec<ConversationId> = conversations.iter().map(|c| c.id).collect();
        let cursors: std::collections::HashMap<ConversationId, Seq> = self
            .conversations
            .members(&ids)
            .await?
            .into_iter()
            .filter(|m| m.user_id == user)
            .map(|m| (m.conversation_id, m.delivered_seq))
            .collect();
        let mut backlogs = Vec::with_capacity(conversations.len());
        // Oldest activity first, so that the freshest conversations arrive last and stay on top.
        for conversation in conversations.into_iter().rev() {
            let delivered = cursors.get(&conversation.id).copied().unwrap_or(Seq::ZERO);
            let mut backlog = Backlog {
                conversation_id: conversation.id,
                last_seq: conversation.last_seq,
                messages: Vec::new(),
                skipped: None,
            };
            if conversation.last_seq > delivered {
                let query = PageQuery {
                    before: None,
                    after: None,
                    limit: per_conversation.max(1),
                };
                let page = self.messages.page(conversation.id, query).await?;
                backlog.messages = page
                    .messages
                    .into_iter()
                    .filter(|m| m.seq > delivered)
                    .collect();
                if let Some(first) = backlog.messages.first()
                    && first.seq > delivered.next()
                {
                    backlog.skipped = Some((delivered, first.seq));
                }
            }
            backlogs.push(backlog);
        }
        Ok(backlogs)
    }

    /// Messages of a conversation above `after`, ascending, for `sync`: at most `limit`, and
    /// whether more follow.
    pub async fn since(
        &self,
        caller: UserId,
        conversation_id: ConversationId,
        after: Seq,
        limit: u32,
    ) -> Result<MessagePage, AppError> {
        let limit = limit.clamp(1, PageQuery::MAX_LIMIT);
        self.history(
            caller,
            conversation_id,
            PageQuery {
                before: None,
                after: Some(after),
                limit,
            },
        )
        .await
    }

    /// The message and its conversation's members, if the caller is one of them.
    async fn visible_message(
        &self,
        caller: UserId,
        message_id: MessageId,
        conversation: Option<ConversationId>,
    ) -> Result<(Message, Vec<Member>), AppError> {
        let message = self
            .messages
            .find(message_id)
            .await?
            .ok_or(AppError::NotFound("message"))?;
        if conversation.is_some_and(|c| c != message.conversation_id) {
            return Err(AppError::NotFound("message"));
        }
        let members = self
            .conversations
            .members(&[message.conversation_id])
            .await?;
        if !members.iter().any(|m| m.user_id == caller) {
            return Err(AppError::NotFound("message"));
        }
        Ok((message, members))
    }

    /// The change is committed; a notification that fails is logged, not returned, because the
    /// client's request did succeed and a device that missed the badge recovers it by `sync`.
    async fn notify_activity(
        &self,
        conversation_id: ConversationId,
        known: Option<Conversation>,
        members: &[Member],
        last: Option<Message>,
    ) {
        if let Err(error) = self
            .activity
            .notify(conversation_id, known, members, last)
            .await
        {
            tracing::warn!(%error, %conversation_id, "could not notify members of new activity");
        }
    }

    /// Counts a send against the sender's limit for this kind of conversation. A limiter that
    /// cannot be reached lets the message through: losing a message is worse than letting a
    /// burst pass while the limiter's store is down.
    async fn check_rate(&self, sender: UserId, kind: ConversationKind) -> Result<(), AppError> {
        let (scope, limit) = match kind {
            ConversationKind::Direct => ("direct", self.limits.direct),
            ConversationKind::Group | ConversationKind::Room => ("group", self.limits.group),
        };
        match self
            .limiter
            .hit(&format!("send:{scope}:{sender}"), limit)
            .await
        {
            Ok(RateDecision::Allowed) => Ok(()),
            Ok(RateDecision::Limited { retry_after }) => Err(AppError::RateLimited { retry_after }),
            Err(error) => {
                tracing::warn!(%error, "rate limiter unavailable; letting the message through");
                Ok(())
            }
        }
    }

    /// The answer to a send over the limit. Someone who is not a member learns nothing, not
    /// even that the conversation exists. A resend of a message already stored is answered
    /// whatever the limit: the first copy was counted, and refusing it would strand a message
    /// that did go through.
    async fn refuse_over_limit(
        &self,
        sender: UserId,
        conversation_id: ConversationId,
        client_msg_id: Option<ClientMsgId>,
        limited: AppError,
    ) -> Result<Sent, AppError> {
        self.conversations
            .member(conversation_id, sender)
            .await?
            .ok_or(AppError::NotFound("conversation"))?;
        if let Some(first) = self.first_copy(sender, client_msg_id.as_ref()).await? {
            return Self::repeat(first, conversation_id);
        }
        Err(limited)
    }

    /// The message `sender` already sent with `client_msg_id`, if any.
    async fn first_copy(
        &self,
        sender: UserId,
        client_msg_id: Option<&ClientMsgId>,
    ) -> Result<Option<Message>, AppError> {
        match client_msg_id {
            Some(key) => Ok(self.messages.find_by_client_msg_id(sender, key).await?),
            None => Ok(None),
        }
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
        MockRateLimiter, StoreError,
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

    /// The store's answer to a post of `new` that it stored with `seq`, in a group of
    /// `users`: the sender's cursors are at the message.
    fn created(new: &NewMessage, seq: u64, users: &[UserId]) -> Posted {
        let message = stored(new, seq);
        let members = users
            .iter()
            .map(|user| {
                let mut member = member(new.conversation_id, *user, None);
                if *user == new.sender_id {
                    member.read_seq = message.seq;
                    member.delivered_seq = message.seq;
                }
                member
            })
            .collect();
        Posted::Created {
            message,
            conversation: group(new.conversation_id),
            members,
        }
    }

    #[derive(Default)]
    struct Mocks {
        conversations: MockConversationRepository,
        messages: MockMessageRepository,
        events: MockEventPublisher,
        limiter: Option<MockRateLimiter>,
    }

    impl Mocks {
        fn service(self) -> MessageService {
            let mut clock = MockClock::new();
            clock.expect_now().returning(now);
            let limiter = self.limiter.unwrap_or_else(|| {
                let mut limiter = MockRateLimiter::new();
                limiter
                    .expect_hit()
                    .returning(|_, _| Ok(RateDecision::Allowed));
                limiter
            });
            MessageService::new(
                Arc::new(self.conversations),
                Arc::new(self.messages),
                Arc::new(self.events),
                Arc::new(clock),
                Arc::new(limiter),
                SendLimits::default(),
            )
        }

        fn member_of(&mut self, conversation: ConversationId, user: UserId) {
            self.members_are(conversation, vec![user]);
        }

        /// `users` are the members of `conversation` (read cursors at 0), which holds one
        /// message, for the membership checks and the activity notification.
        fn members_are(&mut self, conversation: ConversationId, users: Vec<UserId>) {
            let members: Vec<Member> = users
                .iter()
                .map(|u| member(conversation, *u, None))
                .collect();
            let found = members.clone();
            self.conversations.expect_member().returning(move |c, u| {
                Ok(found
                    .iter()
                    .find(|m| m.conversation_id == c && m.user_id == u)
                    .cloned())
            });
            let listed = members;
            self.conversations.expect_members().returning(move |ids| {
                Ok(listed
                    .iter()
                    .filter(|m| ids.contains(&m.conversation_id))
                    .cloned()
                    .collect())
            });
            self.conversations
                .expect_find()
                .returning(|id| Ok(Some(group(id))));
            self.messages
                .expect_deleted_seqs()
                .returning(|_, _| Ok(vec![]));
            self.messages
                .expect_last_messages()
                .returning(|_| Ok(vec![]));
        }
    }

    /// A group holding one message.
    fn group(id: ConversationId) -> confab_domain::Conversation {
        confab_domain::Conversation {
            id,
            kind: confab_domain::ConversationKind::Group,
            name: Some("team".into()),
            topic: None,
            created_at: now(),
            updated_at: now(),
            last_seq: Seq::new(1),
            last_deleted_seq: Seq::ZERO,
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
        mocks.members_are(conv, vec![ann, bob]);
        mocks
            .messages
            .expect_post()
            .withf(|new| new.body.as_str() == "hello")
            .returning(move |new| Ok(created(&new, 1, &[ann, bob])));
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
        // Each member's own badge: the sender has read their message, the other has not.
        mocks
            .events
            .expect_publish()
            .times(1)
            .withf(move |event| {
                matches!(event, Event::ConversationUpdated { members, last_message: Some(m), .. }
                    if m.seq == Seq::new(1)
                        && members.iter().any(|a| a.user_id == ann && a.unread_count == 0)
                        && members.iter().any(|a| a.user_id == bob && a.unread_count == 1))
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
        // The store's unique index answers with the first copy.
        mocks
            .messages
            .expect_post()
            .times(1)
            .returning(move |_| Ok(Posted::Existing(found.clone())));
        answered_with_first_copy(mocks, ann, input(conv, "hi again", Some("k1")), first).await;
    }

    /// Sends `input` as `sender`: the answer must be `first`, as it is and not new, and
    /// nothing may be published.
    async fn answered_with_first_copy(
        mut mocks: Mocks,
        sender: UserId,
        input: SendInput,
        first: Message,
    ) {
        mocks.events.expect_publish().never();
        let sent = mocks.service().send(sender, input, None).await.unwrap();
        assert_eq!(
            sent,
            Sent {
                message: first,
                created: false
            }
        );
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
        mocks.messages.expect_post().returning(move |new| {
            let first = NewMessage {
                conversation_id: other,
                ..new
            };
            Ok(Posted::Existing(stored(&first, 1)))
        });
        let result = mocks
            .service()
            .send(ann, input(conv, "hi", Some("k1")), None)
            .await;
        assert!(matches!(result, Err(AppError::Conflict(_))));
    }

    #[tokio::test]
    async fn the_stores_refusals_are_not_found_for_a_non_member_and_forbidden_when_muted() {
        let (ann, conv) = (UserId::generate(), ConversationId::generate());
        for refusal in [Posted::NotMember, Posted::Muted] {
            let mut mocks = Mocks::default();
            mocks.member_of(conv, ann);
            let answer = refusal.clone();
            mocks
                .messages
                .expect_post()
                .times(1)
                .returning(move |_| Ok(answer.clone()));
            mocks.events.expect_publish().never();
            let result = mocks
                .service()
                .send(ann, input(conv, "hi", None), None)
                .await;
            match refusal {
                // Someone who is not a member learns nothing, not even that it exists.
                Posted::NotMember => {
                    assert!(matches!(result, Err(AppError::NotFound("conversation"))));
                }
                _ => assert!(matches!(result, Err(AppError::Forbidden(_))), "{result:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_send_to_no_conversation_is_not_found_and_neither_counted_nor_posted() {
        let mut mocks = Mocks::default();
        mocks.conversations.expect_find().returning(|_| Ok(None));
        let mut limiter = MockRateLimiter::new();
        limiter.expect_hit().never();
        mocks.limiter = Some(limiter);
        mocks.messages.expect_post().never();
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
    async fn a_muted_members_resend_of_a_message_sent_before_the_mute_gets_the_first_copy() {
        let (ann, conv) = (UserId::generate(), ConversationId::generate());
        let mut mocks = Mocks::default();
        mocks.member_of(conv, ann);
        let first = existing(conv, ann, 1, false);
        let found = first.clone();
        mocks
            .messages
            .expect_find_by_client_msg_id()
            .withf(|_, key| key.as_str() == "k")
            .returning(move |_, _| Ok(Some(found.clone())));
        mocks
            .messages
            .expect_post()
            .times(1)
            .returning(|_| Ok(Posted::Muted));
        answered_with_first_copy(mocks, ann, input(conv, "hi", Some("k")), first).await;
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
            .expect_post()
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

    fn existing(
        conversation_id: ConversationId,
        sender: UserId,
        seq: u64,
        deleted: bool,
    ) -> Message {
        let new = NewMessage {
            id: MessageId::generate(),
            conversation_id,
            sender_id: sender,
            kind: MessageKind::Text,
            body: MessageBody::parse("original").unwrap(),
            client_msg_id: None,
            created_at: now(),
        };
        let mut message = stored(&new, seq);
        if deleted {
            message.body = None;
            message.deleted_at = Some(now());
        }
        message
    }

    #[tokio::test]
    async fn the_author_edits_and_every_member_hears_it() {
        let (ann, bob, conv) = (
            UserId::generate(),
            UserId::generate(),
            ConversationId::generate(),
        );
        let mut mocks = Mocks::default();
        mocks.members_are(conv, vec![ann, bob]);
        let original = existing(conv, ann, 1, false);
        let found = original.clone();
        mocks
            .messages
            .expect_find()
            .returning(move |_| Ok(Some(found.clone())));
        mocks
            .messages
            .expect_edit()
            .withf(|_, body, at| body.as_str() == "fixed" && *at == now())
            .returning(move |_, body, at| {
                Ok(Message {
                    body: Some(body.as_str().into()),
                    edited_at: Some(at),
                    ..original.clone()
                })
            });
        mocks.events.expect_publish().times(1).withf(move |e| matches!(e,
            Event::MessageUpdated { message, recipients } if message.body.as_deref() == Some("fixed") && recipients.len() == 2))
            .returning(|_| ());
        let edited = mocks
            .service()
            .edit(ann, MessageId::generate(), " fixed ", Some(conv))
            .await
            .unwrap();
        assert_eq!(edited.edited_at, Some(now()));
    }

    #[tokio::test]
    async fn only_the_author_edits_deleted_messages_stay_deleted_and_strangers_see_nothing() {
        let (ann, bob, eve, conv) = (
            UserId::generate(),
            UserId::generate(),
            UserId::generate(),
            ConversationId::generate(),
        );
        for (caller, deleted, expected) in [
            (bob, false, "forbidden"),
            (ann, true, "conflict"),
            (eve, false, "not found"),
        ] {
            let mut mocks = Mocks::default();
            mocks.members_are(conv, vec![ann, bob]);
            let message = existing(conv, ann, 1, deleted);
            mocks
                .messages
                .expect_find()
                .returning(move |_| Ok(Some(message.clone())));
            mocks.messages.expect_edit().never();
            mocks.events.expect_publish().never();
            let error = mocks
                .service()
                .edit(caller, MessageId::generate(), "x", None)
                .await
                .unwrap_err();
            let kind = match error {
                AppError::Forbidden(_) => "forbidden",
                AppError::Conflict(_) => "conflict",
                AppError::NotFound(_) => "not found",
                _ => "other",
            };
            assert_eq!(kind, expected);
        }
    }

    #[tokio::test]
    async fn a_message_named_under_another_conversation_is_not_found() {
        let (ann, conv) = (UserId::generate(), ConversationId::generate());
        let mut mocks = Mocks::default();
        let message = existing(conv, ann, 1, false);
        mocks
            .messages
            .expect_find()
            .returning(move |_| Ok(Some(message.clone())));
        let result = mocks
            .service()
            .delete(ann, MessageId::generate(), Some(ConversationId::generate()))
            .await;
        assert!(matches!(result, Err(AppError::NotFound("message"))));
    }

    #[tokio::test]
    async fn delete_blanks_the_message_tells_members_and_updates_their_badges() {
        let (ann, bob, conv) = (
            UserId::generate(),
            UserId::generate(),
            ConversationId::generate(),
        );
        let mut mocks = Mocks::default();
        mocks.members_are(conv, vec![ann, bob]);
        let original = existing(conv, ann, 1, false);
        let found = original.clone();
        mocks
            .messages
            .expect_find()
            .returning(move |_| Ok(Some(found.clone())));
        let gone = existing(conv, ann, 1, true);
        let answer = gone.clone();
        mocks
            .messages
            .expect_delete()
            .times(1)
            .returning(move |_, _| Ok(answer.clone()));
        mocks
            .events
            .expect_publish()
            .times(1)
            .withf(|e| matches!(e, Event::MessageDeleted { message, .. } if message.body.is_none()))
            .returning(|_| ());
        mocks
            .events
            .expect_publish()
            .times(1)
            .withf(|e| matches!(e, Event::ConversationUpdated { .. }))
            .returning(|_| ());
        assert_eq!(
            mocks
                .service()
                .delete(ann, original.id, Some(conv))
                .await
                .unwrap(),
            gone
        );
    }

    #[tokio::test]
    async fn deleting_twice_changes_nothing_the_second_time() {
        let (ann, conv) = (UserId::generate(), ConversationId::generate());
        let mut mocks = Mocks::default();
        mocks.member_of(conv, ann);
        let gone = existing(conv, ann, 1, true);
        let found = gone.clone();
        mocks
            .messages
            .expect_find()
            .returning(move |_| Ok(Some(found.clone())));
        mocks.messages.expect_delete().never();
        mocks.events.expect_publish().never();
        assert_eq!(
            mocks.service().delete(ann, gone.id, None).await.unwrap(),
            gone
        );
    }

    #[tokio::test]
    async fn backlog_sends_at_most_the_bound_and_names_the_range_left_out() {
        let (ann, bob) = (UserId::generate(), UserId::generate());
        let (busy, quiet) = (ConversationId::generate(), ConversationId::generate());
        let mut mocks = Mocks::default();
        let conversation = |id, last_seq| confab_domain::Conversation {
            id,
            kind: confab_domain::ConversationKind::Direct,
            name: None,
            topic: None,
            created_at: now(),
            updated_at: now(),
            last_seq: Seq::new(last_seq),
            last_deleted_seq: Seq::ZERO,
        };
        let listed = vec![conversation(busy, 10), conversation(quiet, 4)];
        mocks
            .conversations
            .expect_list_for_user()
            .returning(move |_| Ok(listed.clone()));
        mocks.conversations.expect_members().returning(move |_| {
            let mut busy_member = member(busy, ann, None);
            busy_member.delivered_seq = Seq::new(2);
            let mut quiet_member = member(quiet, ann, None);
            quiet_member.delivered_seq = Seq::new(4);
            Ok(vec![busy_member, quiet_member, member(busy, bob, None)])
        });
        mocks
            .messages
            .expect_page()
            .withf(move |c, q| *c == busy && q.limit == 3 && q.after.is_none())
            .returning(move |_, _| {
                Ok(MessagePage {
                    messages: (8..=10)
                        .map(|seq| existing(busy, bob, seq, false))
                        .collect(),
                    has_more: true,
                })
            });
        let backlog = mocks.service().backlog(ann, 3).await.unwrap();
        assert_eq!(backlog.len(), 2);
        let quiet_backlog = backlog.iter().find(|b| b.conversation_id == quiet).unwrap();
        assert!(quiet_backlog.messages.is_empty() && quiet_backlog.skipped.is_none());
        let busy_backlog = backlog.iter().find(|b| b.conversation_id == busy).unwrap();
        let seqs: Vec<u64> = busy_backlog
            .messages
            .iter()
            .map(|m| m.seq.value())
            .collect();
        assert_eq!(seqs, [8, 9, 10]);
        assert_eq!(busy_backlog.skipped, Some((Seq::new(2), Seq::new(8))));
        assert_eq!(busy_backlog.last_seq, Seq::new(10));
    }

    #[tokio::test]
    async fn a_send_over_the_limit_is_refused_with_the_time_to_wait_and_stores_nothing() {
        let (ann, conv) = (UserId::generate(), ConversationId::generate());
        let mut mocks = Mocks::default();
        mocks.member_of(conv, ann);
        let mut limiter = MockRateLimiter::new();
        limiter
            .expect_hit()
            .withf(move |key, limit| {
                key == format!("send:group:{ann}") && *limit == SendLimits::default().group
            })
            .returning(|_, _| {
                Ok(RateDecision::Limited {
                    retry_after: std::time::Duration::from_secs(7),
                })
            });
        mocks.limiter = Some(limiter);
        mocks.messages.expect_post().never();
        mocks.events.expect_publish().never();
        let result = mocks
            .service()
            .send(ann, input(conv, "hi", None), None)
            .await;
        assert!(
            matches!(result, Err(AppError::RateLimited { retry_after }) if retry_after.as_secs() == 7)
        );
    }

    #[tokio::test]
    async fn a_non_member_over_the_limit_learns_nothing_either() {
        let (eve, conv) = (UserId::generate(), ConversationId::generate());
        let mut mocks = Mocks::default();
        mocks.members_are(conv, vec![UserId::generate()]);
        mocks.limiter = Some(always_limited());
        mocks.messages.expect_post().never();
        let result = mocks
            .service()
            .send(eve, input(conv, "hi", None), None)
            .await;
        assert!(matches!(result, Err(AppError::NotFound("conversation"))));
    }

    /// A limiter that refuses every send, for 7 s.
    fn always_limited() -> MockRateLimiter {
        let mut limiter = MockRateLimiter::new();
        limiter.expect_hit().returning(|_, _| {
            Ok(RateDecision::Limited {
                retry_after: std::time::Duration::from_secs(7),
            })
        });
        limiter
    }

    /// Ann sends twice in `conv`: the first send is stored; the second send's answer, which
    /// `second` gives if the second send is posted.
    async fn second_of_two_sends(
        mut mocks: Mocks,
        ann: UserId,
        conv: ConversationId,
        second: Posted,
    ) -> Result<Sent, AppError> {
        let mut order = mockall::Sequence::new();
        mocks
            .messages
            .expect_post()
            .times(1)
            .in_sequence(&mut order)
            .returning(move |new| Ok(created(&new, 2, &[ann])));
        mocks
            .messages
            .expect_post()
            .in_sequence(&mut order)
            .returning(move |_| Ok(second.clone()));
        mocks.events.expect_publish().returning(|_| ());
        let service = mocks.service();
        let first = service.send(ann, input(conv, "one", None), None).await;
        assert!(first.is_ok(), "{first:?}");
        service.send(ann, input(conv, "two", None), None).await
    }

    #[tokio::test]
    async fn a_later_send_to_the_same_conversation_is_held_to_its_kinds_limit_too() {
        // The first send reads the conversation's kind; later ones check the limit without
        // reading it again. Both are counted against the group limit, and nothing over it is
        // stored.
        let (ann, conv) = (UserId::generate(), ConversationId::generate());
        let mut mocks = Mocks::default();
        mocks
            .conversations
            .expect_find()
            .times(1)
            .returning(|id| Ok(Some(group(id))));
        mocks
            .conversations
            .expect_member()
            .returning(move |c, u| Ok(Some(member(c, u, None))));
        mocks
            .messages
            .expect_deleted_seqs()
            .returning(|_, _| Ok(vec![]));
        let group_key = move |key: &str, limit: &RateLimit| {
            key == format!("send:group:{ann}") && *limit == SendLimits::default().group
        };
        let mut limiter = MockRateLimiter::new();
        let mut order = mockall::Sequence::new();
        limiter
            .expect_hit()
            .times(1)
            .in_sequence(&mut order)
            .withf(group_key)
            .returning(|_, _| Ok(RateDecision::Allowed));
        limiter
            .expect_hit()
            .times(1)
            .in_sequence(&mut order)
            .withf(group_key)
            .returning(|_, _| {
                Ok(RateDecision::Limited {
                    retry_after: std::time::Duration::from_secs(3),
                })
            });
        mocks.limiter = Some(limiter);
        let never_posted = Posted::NotMember;
        let second = second_of_two_sends(mocks, ann, conv, never_posted).await;
        assert!(
            matches!(second, Err(AppError::RateLimited { retry_after }) if retry_after.as_secs() == 3)
        );
    }

    #[tokio::test]
    async fn someone_removed_from_a_conversation_they_sent_to_gets_not_found() {
        let (ann, bob, conv) = (
            UserId::generate(),
            UserId::generate(),
            ConversationId::generate(),
        );
        let mut mocks = Mocks::default();
        mocks.members_are(conv, vec![ann, bob]);
        // Ann is a member for her first send and has been removed by her second, which the
        // store refuses.
        let second = second_of_two_sends(mocks, ann, conv, Posted::NotMember).await;
        assert!(matches!(second, Err(AppError::NotFound("conversation"))));
    }

    #[tokio::test]
    async fn a_limiter_that_cannot_be_reached_lets_messages_through() {
        let (ann, conv) = (UserId::generate(), ConversationId::generate());
        let mut mocks = Mocks::default();
        mocks.member_of(conv, ann);
        let mut limiter = MockRateLimiter::new();
        limiter
            .expect_hit()
            .returning(|_, _| Err(StoreError::Backend("redis is down".into())));
        mocks.limiter = Some(limiter);
        mocks
            .messages
            .expect_post()
            .times(1)
            .returning(move |new| Ok(created(&new, 1, &[ann])));
        mocks.events.expect_publish().returning(|_| ());
        assert!(
            mocks
                .service()
                .send(ann, input(conv, "hi", None), None)
                .await
                .unwrap()
                .created
        );
    }

    #[tokio::test]
    async fn a_resend_over_the_limit_is_answered_with_the_first_copy() {
        let (ann, conv) = (UserId::generate(), ConversationId::generate());
        let mut mocks = Mocks::default();
        mocks.member_of(conv, ann);
        let first = existing(conv, ann, 1, false);
        let found = first.clone();
        mocks
            .messages
            .expect_find_by_client_msg_id()
            .returning(move |_, _| Ok(Some(found.clone())));
        mocks.limiter = Some(always_limited());
        mocks.messages.expect_post().never();
        answered_with_first_copy(mocks, ann, input(conv, "hi", Some("k")), first).await;
    }
}
