use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use confab_domain::{
    Conversation, ConversationId, ConversationKind, DirectPair, GroupName, Member, Role, Seq, User,
    UserId, Username, ValidationError, ValidationErrors,
};

use super::activity::ActivityNotifier;
use crate::ports::{
    Clock, ConversationRepository, EventPublisher, MessageRepository, UserRepository,
};
use crate::{AppError, ConversationView, Event, MemberView, ReadState};

/// Conversations as their members see them: opening direct chats, creating groups, listing,
/// and read state.
pub struct ConversationService {
    conversations: Arc<dyn ConversationRepository>,
    users: Arc<dyn UserRepository>,
    messages: Arc<dyn MessageRepository>,
    events: Arc<dyn EventPublisher>,
    clock: Arc<dyn Clock>,
    activity: ActivityNotifier,
}

impl std::fmt::Debug for ConversationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConversationService")
            .finish_non_exhaustive()
    }
}

/// Which cursor a client reported.
#[derive(Debug, Clone, Copy)]
enum Report {
    /// `message.read`: read up to a seq.
    Read,
    /// `delivered`: holds up to a seq.
    Delivered,
}

/// The most members a group may be created with in one request: a large team's group, as on
/// the big messengers (WhatsApp allows 1 024). One read looks them all up. The API states it
/// (`CreateGroupRequest.members`, `maxItems`); a black-box test checks the two agree.
const MAX_INITIAL_MEMBERS: usize = 1024;

impl ConversationService {
    /// The service over its ports.
    pub fn new(
        conversations: Arc<dyn ConversationRepository>,
        users: Arc<dyn UserRepository>,
        messages: Arc<dyn MessageRepository>,
        events: Arc<dyn EventPublisher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let activity =
            ActivityNotifier::new(conversations.clone(), messages.clone(), events.clone());
        Self {
            conversations,
            users,
            messages,
            events,
            clock,
            activity,
        }
    }

    /// The direct conversation between the caller and `username`, created if new. Returns it
    /// and whether it was created; the same pair always gets the same conversation.
    pub async fn open_direct(
        &self,
        caller: UserId,
        username: &str,
    ) -> Result<(ConversationView, bool), AppError> {
        let username = Username::parse(username).map_err(|_| AppError::NotFound("user"))?;
        let other = self
            .users
            .find_by_username(&username)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        let pair = DirectPair::new(caller, other.id)?;
        let now = self.clock.now();
        let fresh = Conversation {
            id: ConversationId::generate(),
            kind: ConversationKind::Direct,
            name: None,
            topic: None,
            created_at: now,
            updated_at: now,
            last_seq: Seq::ZERO,
            last_deleted_seq: Seq::ZERO,
        };
        let (conversation, created) = self.conversations.open_direct(pair, fresh).await?;
        let view = self.view_one(caller, conversation).await?;
        Ok((view, created))
    }

    /// Creates a group named `name` with the caller as owner and `usernames` as members.
    pub async fn create_group(
        &self,
        caller: UserId,
        name: &str,
        usernames: &[String],
    ) -> Result<ConversationView, AppError> {
        let mut errors = ValidationErrors::new();
        let name = errors.check(GroupName::parse(name));
        if usernames.len() > MAX_INITIAL_MEMBERS {
            errors.push(ValidationError::new(
                "members",
                format!("at most {MAX_INITIAL_MEMBERS} members at creation"),
            ));
        }
        let mut wanted = Vec::new();
        for raw in usernames {
            match Username::parse(raw) {
                Ok(username) if !wanted.contains(&username) => wanted.push(username),
                Ok(_) => {}
                Err(_) => errors.push(ValidationError::new(
                    "members",
                    format!("{raw:?} is not a valid username"),
                )),
            }
        }
        errors.clone().into_result()?;
        let Some(name) = name else {
            return Err(errors.into());
        };

        let found = self.users.find_by_usernames(&wanted).await?;
        let found: HashMap<&str, &User> = found
            .iter()
            .map(|user| (user.username.as_str(), user))
            .collect();
        let mut member_ids = Vec::with_capacity(wanted.len());
        for username in &wanted {
            match found.get(username.as_str()) {
                Some(user) if user.id != caller => member_ids.push(user.id),
                Some(_) => {}
                None => errors.push(ValidationError::new(
                    "members",
                    format!("no user named {username}"),
                )),
            }
        }
        errors.into_result()?;

        let now = self.clock.now();
        let conversation = Conversation {
            id: ConversationId::generate(),
            kind: ConversationKind::Group,
            name: Some(name.as_str().to_owned()),
            topic: None,
            created_at: now,
            updated_at: now,
            last_seq: Seq::ZERO,
            last_deleted_seq: Seq::ZERO,
        };
        let member = |user_id, role| Member {
            conversation_id: conversation.id,
            user_id,
            role,
            joined_at: now,
            read_seq: Seq::ZERO,
            delivered_seq: Seq::ZERO,
            muted_until: None,
        };
        let mut members = vec![member(caller, Role::Owner)];
        members.extend(member_ids.into_iter().map(|id| member(id, Role::Member)));
        self.conversations
            .create(conversation.clone(), members)
            .await?;
        tracing::info!(conversation_id = %conversation.id, "group created");
        self.view_one(caller, conversation).await
    }

    /// The caller's conversations, most recent activity first.
    pub async fn list(&self, caller: UserId) -> Result<Vec<ConversationView>, AppError> {
        let conversations = self.conversations.list_for_user(caller).await?;
        self.views(caller, conversations).await
    }

    /// One conversation of the caller's; `NotFound` for anyone who is not a member, so that
    /// its existence is not revealed.
    pub async fn get(
        &self,
        caller: UserId,
        id: ConversationId,
    ) -> Result<ConversationView, AppError> {
        self.require_member(id, caller).await?;
        let conversation = self
            .conversations
            .find(id)
            .await?
            .ok_or(AppError::NotFound("conversation"))?;
        self.view_one(caller, conversation).await
    }

    /// Marks everything up to `seq` read for the caller (reading implies receiving, so the
    /// delivery cursor follows). When a cursor moved, every member hears a `receipt` (the
    /// sender's ticks) and the caller's devices hear `conversation.updated` with the new unread
    /// count (the badge on the other tabs).
    pub async fn mark_read(
        &self,
        caller: UserId,
        id: ConversationId,
        seq: u64,
    ) -> Result<ReadState, AppError> {
        self.report(caller, id, Seq::new(seq), Report::Read).await
    }

    /// Records that one of the caller's devices holds every message up to `seq`; when the
    /// cursor moves, every member hears a `receipt` (the sender's "delivered" tick).
    pub async fn mark_delivered(
        &self,
        caller: UserId,
        id: ConversationId,
        seq: u64,
    ) -> Result<ReadState, AppError> {
        self.report(caller, id, Seq::new(seq), Report::Delivered)
            .await
    }

    /// Moves the caller's cursors for a report. Cursors never move back, nor past the newest
    /// message.
    async fn report(
        &self,
        caller: UserId,
        id: ConversationId,
        reported: Seq,
        report: Report,
    ) -> Result<ReadState, AppError> {
        let member = self.require_member(id, caller).await?;
        let conversation = self
            .conversations
            .find(id)
            .await?
            .ok_or(AppError::NotFound("conversation"))?;
        let last = conversation.last_seq;
        let read_seq = match report {
            Report::Read => {
                let target = member.read_seq.advance_to(reported, last);
                self.conversations
                    .raise_read_seq(id, caller, target)
                    .await?
            }
            Report::Delivered => member.read_seq,
        };
        let delivered_target = member
            .delivered_seq
            .advance_to(reported.max(read_seq), last);
        let delivered_seq = self
            .conversations
            .raise_delivered_seq(id, caller, delivered_target)
            .await?;
        let unread = self.conversations.unread_counts(caller, &[id]).await?;
        let state = ReadState {
            read_seq,
            delivered_seq,
            unread_count: unread.get(&id).copied().unwrap_or(0),
        };
        if read_seq > member.read_seq || delivered_seq > member.delivered_seq {
            let recipients = self.conversations.member_ids(id).await?;
            self.events
                .publish(Event::Receipt {
                    conversation_id: id,
                    user_id: caller,
                    read_seq,
                    delivered_seq,
                    recipients,
                })
                .await;
        }
        if read_seq > member.read_seq {
            let me = Member {
                read_seq,
                delivered_seq,
                ..member
            };
            if let Err(error) = self
                .activity
                .notify(id, Some(conversation), &[me], None)
                .await
            {
                tracing::warn!(%error, conversation_id = %id, "could not update the reader's other devices");
            }
        }
        Ok(state)
    }

    /// Tells the other members that the caller started or stopped typing. Nothing is stored.
    pub async fn typing(
        &self,
        caller: UserId,
        id: ConversationId,
        typing: bool,
    ) -> Result<(), AppError> {
        let members = self.conversations.member_ids(id).await?;
        if !members.contains(&caller) {
            return Err(AppError::NotFound("conversation"));
        }
        let recipients: Vec<UserId> = members.into_iter().filter(|m| *m != caller).collect();
        if !recipients.is_empty() {
            self.events
                .publish(Event::Typing {
                    conversation_id: id,
                    user_id: caller,
                    typing,
                    recipients,
                })
                .await;
        }
        Ok(())
    }

    async fn require_member(&self, id: ConversationId, user: UserId) -> Result<Member, AppError> {
        self.conversations
            .member(id, user)
            .await?
            .ok_or(AppError::NotFound("conversation"))
    }

    async fn view_one(
        &self,
        caller: UserId,
        conversation: Conversation,
    ) -> Result<ConversationView, AppError> {
        self.views(caller, vec![conversation])
            .await?
            .pop()
            .ok_or(AppError::NotFound("conversation"))
    }

    /// Builds the views of many conversations with a fixed number of queries, whatever their
    /// count: members, their accounts, last messages and unread counts, each in one batch.
    async fn views(
        &self,
        caller: UserId,
        conversations: Vec<Conversation>,
    ) -> Result<Vec<ConversationView>, AppError> {
        if conversations.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<ConversationId> = conversations.iter().map(|c| c.id).collect();
        let members = self.conversations.members(&ids).await?;
        let user_ids: Vec<UserId> = members
            .iter()
            .map(|m| m.user_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let users: HashMap<UserId, _> = self
            .users
            .find_many(&user_ids)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let mut last_messages: HashMap<ConversationId, _> = self
            .messages
            .last_messages(&ids)
            .await?
            .into_iter()
            .map(|m| (m.conversation_id, m))
            .collect();
        let unread = self.conversations.unread_counts(caller, &ids).await?;

        let mut members_by_conversation: HashMap<ConversationId, Vec<MemberView>> = HashMap::new();
        for member in members {
            if let Some(user) = users.get(&member.user_id) {
                members_by_conversation
                    .entry(member.conversation_id)
                    .or_default()
                    .push(MemberView {
                        user: user.clone(),
                        member,
                    });
            }
        }

        let mut views = Vec::with_capacity(conversations.len());
        for conversation in conversations {
            let members = members_by_conversation
                .remove(&conversation.id)
                .unwrap_or_default();
            let Some(my_role) = members
                .iter()
                .find(|m| m.user.id == caller)
                .map(|m| m.member.role)
            else {
                continue;
            };
            views.push(ConversationView {
                last_message: last_messages.remove(&conversation.id),
                unread_count: unread.get(&conversation.id).copied().unwrap_or(0),
                members,
                my_role,
                conversation,
            });
        }
        Ok(views)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{
        MockClock, MockConversationRepository, MockEventPublisher, MockMessageRepository,
        MockUserRepository,
    };
    use confab_domain::{DisplayName, Email, User};

    fn now() -> confab_domain::Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn user(name: &str) -> User {
        let username = Username::parse(name).unwrap();
        User {
            id: UserId::generate(),
            display_name: DisplayName::from_username(&username),
            email: Email::parse(&format!("{name}@example.org")).unwrap(),
            username,
            created_at: now(),
        }
    }

    fn conversation(kind: ConversationKind, last_seq: u64) -> Conversation {
        Conversation {
            id: ConversationId::generate(),
            kind,
            name: None,
            topic: None,
            created_at: now(),
            updated_at: now(),
            last_seq: Seq::new(last_seq),
            last_deleted_seq: Seq::ZERO,
        }
    }

    fn member_of(conversation: &Conversation, user: &User, role: Role, read: u64) -> Member {
        Member {
            conversation_id: conversation.id,
            user_id: user.id,
            role,
            joined_at: now(),
            read_seq: Seq::new(read),
            delivered_seq: Seq::ZERO,
            muted_until: None,
        }
    }

    #[derive(Default)]
    struct Mocks {
        conversations: MockConversationRepository,
        users: MockUserRepository,
        messages: MockMessageRepository,
        events: MockEventPublisher,
    }

    impl Mocks {
        fn service(self) -> ConversationService {
            let mut clock = MockClock::new();
            clock.expect_now().returning(now);
            ConversationService::new(
                Arc::new(self.conversations),
                Arc::new(self.users),
                Arc::new(self.messages),
                Arc::new(self.events),
                Arc::new(clock),
            )
        }

        /// Lets views of `conversation` with these members be built.
        fn expect_views(&mut self, members: Vec<Member>, users: Vec<User>, unread: u64) {
            self.conversations
                .expect_members()
                .returning(move |_| Ok(members.clone()));
            self.users
                .expect_find_many()
                .returning(move |_| Ok(users.clone()));
            self.messages
                .expect_last_messages()
                .returning(|_| Ok(vec![]));
            self.conversations
                .expect_unread_counts()
                .returning(move |_, ids| Ok(ids.iter().map(|id| (*id, unread)).collect()));
        }
    }

    #[tokio::test]
    async fn open_direct_with_unknown_user_is_not_found() {
        let mut mocks = Mocks::default();
        mocks
            .users
            .expect_find_by_username()
            .returning(|_| Ok(None));
        let result = mocks
            .service()
            .open_direct(UserId::generate(), "ghost")
            .await;
        assert!(matches!(result, Err(AppError::NotFound("user"))));
    }

    #[tokio::test]
    async fn open_direct_with_an_invalid_username_is_not_found() {
        let result = Mocks::default()
            .service()
            .open_direct(UserId::generate(), "no such!")
            .await;
        assert!(matches!(result, Err(AppError::NotFound("user"))));
    }

    #[tokio::test]
    async fn open_direct_with_oneself_is_a_validation_error() {
        let ann = user("ann");
        let mut mocks = Mocks::default();
        let found = ann.clone();
        mocks
            .users
            .expect_find_by_username()
            .returning(move |_| Ok(Some(found.clone())));
        let result = mocks.service().open_direct(ann.id, "ann").await;
        assert!(matches!(result, Err(AppError::Validation(_))));
    }

    #[tokio::test]
    async fn open_direct_returns_the_pairs_conversation_and_whether_it_is_new() {
        let (ann, bob) = (user("ann"), user("bob"));
        let existing = conversation(ConversationKind::Direct, 3);
        let mut mocks = Mocks::default();
        let found = bob.clone();
        mocks
            .users
            .expect_find_by_username()
            .returning(move |_| Ok(Some(found.clone())));
        let expected_pair = DirectPair::new(bob.id, ann.id).unwrap();
        let stored = existing.clone();
        mocks
            .conversations
            .expect_open_direct()
            .withf(move |pair, _| *pair == expected_pair)
            .returning(move |_, _| Ok((stored.clone(), false)));
        mocks.expect_views(
            vec![
                member_of(&existing, &ann, Role::Member, 1),
                member_of(&existing, &bob, Role::Member, 3),
            ],
            vec![ann.clone(), bob.clone()],
            2,
        );
        let (view, created) = mocks.service().open_direct(ann.id, "bob").await.unwrap();
        assert!(!created);
        assert_eq!(view.conversation.id, existing.id);
        assert_eq!(view.unread_count, 2);
        assert_eq!(view.members.len(), 2);
    }

    #[tokio::test]
    async fn create_group_makes_the_caller_owner_and_others_members() {
        let (ann, bob, cid) = (user("ann"), user("bob"), user("cid"));
        let mut mocks = Mocks::default();
        let known = vec![bob.clone(), cid.clone(), ann.clone()];
        mocks
            .users
            .expect_find_by_usernames()
            .times(1)
            .withf(|names| names.len() == 3)
            .returning(move |_| Ok(known.clone()));
        let caller = ann.id;
        let (bob_id, cid_id) = (bob.id, cid.id);
        mocks
            .conversations
            .expect_create()
            .withf(move |conv, members| {
                conv.kind == ConversationKind::Group
                    && conv.name.as_deref() == Some("Team")
                    && members.len() == 3
                    && members
                        .iter()
                        .any(|m| m.user_id == caller && m.role == Role::Owner)
                    && members
                        .iter()
                        .filter(|m| m.role == Role::Member)
                        .map(|m| m.user_id)
                        .collect::<HashSet<_>>()
                        == HashSet::from([bob_id, cid_id])
            })
            .returning(|_, _| Ok(()));
        mocks.conversations.expect_members().returning(move |ids| {
            Ok(vec![Member {
                conversation_id: ids[0],
                user_id: caller,
                role: Role::Owner,
                joined_at: now(),
                read_seq: Seq::ZERO,
                delivered_seq: Seq::ZERO,
                muted_until: None,
            }])
        });
        let everyone = vec![ann.clone(), bob.clone(), cid.clone()];
        mocks
            .users
            .expect_find_many()
            .returning(move |_| Ok(everyone.clone()));
        mocks
            .messages
            .expect_last_messages()
            .returning(|_| Ok(vec![]));
        mocks
            .conversations
            .expect_unread_counts()
            .returning(|_, _| Ok(HashMap::new()));
        let names = vec![
            "bob".to_owned(),
            "CID".to_owned(),
            "bob".to_owned(),
            "ann".to_owned(),
        ];
        let view = mocks
            .service()
            .create_group(caller, " Team ", &names)
            .await
            .unwrap();
        assert_eq!(view.my_role, Role::Owner);
        assert_eq!(view.unread_count, 0);
    }

    #[tokio::test]
    async fn create_group_names_unknown_and_invalid_members_and_creates_nothing() {
        let mut mocks = Mocks::default();
        mocks
            .users
            .expect_find_by_usernames()
            .returning(|_| Ok(vec![]));
        let names = vec!["ghost".to_owned()];
        let Err(AppError::Validation(errors)) = mocks
            .service()
            .create_group(UserId::generate(), "Team", &names)
            .await
        else {
            panic!("expected validation error");
        };
        assert_eq!(errors.errors()[0].field, "members");

        let names = vec!["not valid!".to_owned()];
        let result = Mocks::default()
            .service()
            .create_group(UserId::generate(), "", &names)
            .await;
        let Err(AppError::Validation(errors)) = result else {
            panic!("expected validation error")
        };
        let fields: Vec<_> = errors.errors().iter().map(|e| e.field).collect();
        assert_eq!(fields, ["name", "members"]);
    }

    #[tokio::test]
    async fn get_by_a_non_member_is_not_found() {
        let mut mocks = Mocks::default();
        mocks
            .conversations
            .expect_member()
            .returning(|_, _| Ok(None));
        let result = mocks
            .service()
            .get(UserId::generate(), ConversationId::generate())
            .await;
        assert!(matches!(result, Err(AppError::NotFound("conversation"))));
    }

    #[tokio::test]
    async fn list_of_a_user_without_conversations_is_empty_without_further_queries() {
        let mut mocks = Mocks::default();
        mocks
            .conversations
            .expect_list_for_user()
            .returning(|_| Ok(vec![]));
        assert!(
            mocks
                .service()
                .list(UserId::generate())
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// Lets `mark_read`/`mark_delivered` of `member` in `conv` run, with cursors moving as asked.
    fn expect_cursor_moves(
        mocks: &mut Mocks,
        conv: &Conversation,
        member: Member,
        others: Vec<UserId>,
        unread: u64,
    ) {
        let membership = member.clone();
        mocks
            .conversations
            .expect_member()
            .returning(move |_, _| Ok(Some(membership.clone())));
        let found = conv.clone();
        mocks
            .conversations
            .expect_find()
            .returning(move |_| Ok(Some(found.clone())));
        mocks
            .conversations
            .expect_raise_read_seq()
            .returning(|_, _, seq| Ok(seq));
        let floor = member.delivered_seq;
        mocks
            .conversations
            .expect_raise_delivered_seq()
            .returning(move |_, _, seq| Ok(seq.max(floor)));
        let id = conv.id;
        mocks
            .conversations
            .expect_unread_counts()
            .returning(move |_, _| Ok(HashMap::from([(id, unread)])));
        let mut everyone = others;
        everyone.push(member.user_id);
        mocks
            .conversations
            .expect_member_ids()
            .returning(move |_| Ok(everyone.clone()));
        mocks
            .messages
            .expect_last_messages()
            .returning(|_| Ok(vec![]));
        mocks
            .messages
            .expect_deleted_seqs()
            .returning(|_, _| Ok(vec![]));
    }

    #[tokio::test]
    async fn mark_read_clamps_to_the_newest_message_tells_members_and_badges_the_readers_devices() {
        let (ann, bob, conv) = (
            user("ann"),
            user("bob"),
            conversation(ConversationKind::Group, 10),
        );
        let mut mocks = Mocks::default();
        expect_cursor_moves(
            &mut mocks,
            &conv,
            member_of(&conv, &ann, Role::Member, 4),
            vec![bob.id],
            0,
        );
        let (ann_id, bob_id) = (ann.id, bob.id);
        mocks
            .events
            .expect_publish()
            .times(1)
            .withf(move |e| {
                matches!(e,
            Event::Receipt { user_id, read_seq, delivered_seq, recipients, .. }
                if *user_id == ann_id && *read_seq == Seq::new(10) && *delivered_seq == Seq::new(10)
                    && recipients.contains(&bob_id) && recipients.contains(&ann_id))
            })
            .returning(|_| ());
        mocks.events.expect_publish().times(1).withf(move |e| matches!(e,
            Event::ConversationUpdated { members, .. }
                if members.len() == 1 && members[0].user_id == ann_id && members[0].unread_count == 0))
            .returning(|_| ());
        let state = mocks
            .service()
            .mark_read(ann.id, conv.id, 99)
            .await
            .unwrap();
        assert_eq!(
            state,
            ReadState {
                read_seq: Seq::new(10),
                delivered_seq: Seq::new(10),
                unread_count: 0
            }
        );
    }

    #[tokio::test]
    async fn mark_read_never_moves_the_cursor_back_and_then_tells_no_one() {
        let (ann, conv) = (user("ann"), conversation(ConversationKind::Group, 10));
        let mut mocks = Mocks::default();
        let mut member = member_of(&conv, &ann, Role::Member, 7);
        member.delivered_seq = Seq::new(7);
        expect_cursor_moves(&mut mocks, &conv, member, vec![], 3);
        mocks.events.expect_publish().never();
        let state = mocks.service().mark_read(ann.id, conv.id, 2).await.unwrap();
        assert_eq!(
            state,
            ReadState {
                read_seq: Seq::new(7),
                delivered_seq: Seq::new(7),
                unread_count: 3
            }
        );
    }

    #[tokio::test]
    async fn mark_delivered_raises_only_the_delivery_cursor_and_sends_a_receipt() {
        let (ann, bob, conv) = (
            user("ann"),
            user("bob"),
            conversation(ConversationKind::Direct, 10),
        );
        let mut mocks = Mocks::default();
        expect_cursor_moves(
            &mut mocks,
            &conv,
            member_of(&conv, &ann, Role::Member, 2),
            vec![bob.id],
            8,
        );
        mocks.events.expect_publish().times(1).withf(|e| matches!(e,
            Event::Receipt { read_seq, delivered_seq, .. } if *read_seq == Seq::new(2) && *delivered_seq == Seq::new(6)))
            .returning(|_| ());
        let state = mocks
            .service()
            .mark_delivered(ann.id, conv.id, 6)
            .await
            .unwrap();
        assert_eq!(
            state,
            ReadState {
                read_seq: Seq::new(2),
                delivered_seq: Seq::new(6),
                unread_count: 8
            }
        );
    }

    #[tokio::test]
    async fn typing_reaches_the_other_members_only() {
        let (ann, bob, cid) = (UserId::generate(), UserId::generate(), UserId::generate());
        let mut mocks = Mocks::default();
        mocks
            .conversations
            .expect_member_ids()
            .returning(move |_| Ok(vec![ann, bob, cid]));
        mocks.events.expect_publish().times(1).withf(move |e| matches!(e,
            Event::Typing { user_id, typing: true, recipients, .. } if *user_id == ann && recipients == &vec![bob, cid]))
            .returning(|_| ());
        mocks
            .service()
            .typing(ann, ConversationId::generate(), true)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn typing_in_a_conversation_one_is_not_in_is_not_found() {
        let mut mocks = Mocks::default();
        mocks
            .conversations
            .expect_member_ids()
            .returning(|_| Ok(vec![UserId::generate()]));
        mocks.events.expect_publish().never();
        let result = mocks
            .service()
            .typing(UserId::generate(), ConversationId::generate(), true)
            .await;
        assert!(matches!(result, Err(AppError::NotFound("conversation"))));
    }
}
