#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The repository suite. Each test gets its own fresh database from `TestDatabase`: SQLite by
//! default, Postgres when `CONFAB_TEST_DATABASE_URL` is set; the same tests run on both.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DurationRound, TimeDelta};
use confab_app::PageQuery;
use confab_app::ports::{
    ConversationRepository, MessageRepository, NewMessage, NewUser, Posted, StoreError,
    UserRepository,
};
use confab_domain::{
    ClientMsgId, Conversation, ConversationId, ConversationKind, DirectPair, DisplayName, Email,
    Member, Message, MessageBody, MessageId, MessageKind, Role, Seq, Timestamp, User, UserId,
    Username,
};
use confab_persistence::entities::{conversations, messages};
use confab_persistence::testing::TestDatabase;
use confab_persistence::{
    SqlConversationRepository, SqlMessageRepository, SqlUserRepository, migrate_down, migrate_up,
    migration_status,
};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement};

/// The repositories over one fresh database, which lives as long as they do.
struct Store {
    users: Arc<SqlUserRepository>,
    conversations: Arc<SqlConversationRepository>,
    messages: Arc<SqlMessageRepository>,
    test_db: TestDatabase,
}

impl Store {
    async fn new() -> Self {
        let test_db = TestDatabase::create().await;
        Self {
            users: Arc::new(SqlUserRepository::new(test_db.db.clone())),
            conversations: Arc::new(SqlConversationRepository::new(test_db.db.clone())),
            messages: Arc::new(SqlMessageRepository::new(test_db.db.clone())),
            test_db,
        }
    }

    async fn user(&self, name: &str) -> User {
        self.users
            .create(new_user(name, &format!("{name}@example.org")))
            .await
            .unwrap()
    }

    /// A group created at `at` with `owner` and `others` as members.
    async fn group(&self, owner: &User, others: &[&User], at: Timestamp) -> Conversation {
        let conversation = Conversation {
            id: ConversationId::generate(),
            kind: ConversationKind::Group,
            name: Some("friends".to_owned()),
            topic: None,
            created_at: at,
            updated_at: at,
            last_seq: Seq::ZERO,
            last_deleted_seq: Seq::ZERO,
        };
        let mut members = vec![member(conversation.id, owner.id, Role::Owner, at)];
        members.extend(
            others
                .iter()
                .map(|user| member(conversation.id, user.id, Role::Member, at)),
        );
        self.conversations
            .create(conversation.clone(), members)
            .await
            .unwrap();
        conversation
    }

    async fn send(&self, conversation: &Conversation, sender: &User, body: &str) -> Message {
        match self
            .messages
            .post(text(conversation.id, sender.id, body, None))
            .await
            .unwrap()
        {
            Posted::Created { message, .. } => message,
            other => panic!("a member's message without client_msg_id was not stored: {other:?}"),
        }
    }

    async fn conversation(&self, id: ConversationId) -> Conversation {
        self.conversations
            .find(id)
            .await
            .unwrap()
            .expect("the conversation exists")
    }
}

/// Now, as precise as both databases keep it.
fn now() -> Timestamp {
    chrono::Utc::now()
        .duration_trunc(TimeDelta::microseconds(1))
        .unwrap()
}

fn new_user(name: &str, email: &str) -> NewUser {
    let username = Username::parse(name).unwrap();
    NewUser {
        id: UserId::generate(),
        display_name: DisplayName::from_username(&username),
        username,
        email: Email::parse(email).unwrap(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${name}"),
        created_at: now(),
    }
}

fn member(conversation: ConversationId, user: UserId, role: Role, at: Timestamp) -> Member {
    Member {
        conversation_id: conversation,
        user_id: user,
        role,
        joined_at: at,
        read_seq: Seq::ZERO,
        delivered_seq: Seq::ZERO,
        muted_until: None,
    }
}

fn direct_draft(at: Timestamp) -> Conversation {
    Conversation {
        id: ConversationId::generate(),
        kind: ConversationKind::Direct,
        name: None,
        topic: None,
        created_at: at,
        updated_at: at,
        last_seq: Seq::ZERO,
        last_deleted_seq: Seq::ZERO,
    }
}

fn text(
    conversation: ConversationId,
    sender: UserId,
    body: &str,
    client_msg_id: Option<&str>,
) -> NewMessage {
    NewMessage {
        id: MessageId::generate(),
        conversation_id: conversation,
        sender_id: sender,
        kind: MessageKind::Text,
        body: MessageBody::parse(body).unwrap(),
        client_msg_id: client_msg_id.map(|id| ClientMsgId::parse(id).unwrap()),
        created_at: now(),
    }
}

fn seqs(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|message| message.seq.value()).collect()
}

fn page(before: Option<u64>, after: Option<u64>, limit: u32) -> PageQuery {
    PageQuery {
        before: before.map(Seq::new),
        after: after.map(Seq::new),
        limit,
    }
}

// --- users -------------------------------------------------------------------------------

#[tokio::test]
async fn created_user_is_found_by_id_username_email_and_either_login() {
    let store = Store::new().await;
    let draft = new_user("ann", "ann@example.org");
    let hash = draft.password_hash.clone();
    let ann = store.users.create(draft).await.unwrap();
    let users = &store.users;

    assert_eq!(users.find_by_id(ann.id).await.unwrap().as_ref(), Some(&ann));
    assert_eq!(
        users
            .find_by_username(&ann.username)
            .await
            .unwrap()
            .as_ref(),
        Some(&ann)
    );
    assert_eq!(
        users.find_by_email(&ann.email).await.unwrap().as_ref(),
        Some(&ann)
    );
    for login in ["ann", "ann@example.org"] {
        let credentials = users.find_credentials(login).await.unwrap().expect(login);
        assert_eq!(credentials.user, ann);
        assert_eq!(credentials.password_hash, hash);
    }

    assert_eq!(users.find_by_id(UserId::generate()).await.unwrap(), None);
    assert_eq!(
        users
            .find_by_username(&Username::parse("bob").unwrap())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        users.find_credentials("bob@example.org").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn duplicate_username_is_a_conflict_naming_the_username() {
    let store = Store::new().await;
    store.user("ann").await;

    let err = store
        .users
        .create(new_user("ann", "other@example.org"))
        .await
        .unwrap_err();

    assert!(
        matches!(&err, StoreError::Conflict(message) if message.contains("username")),
        "{err:?}"
    );
}

#[tokio::test]
async fn duplicate_email_is_a_conflict_naming_the_email() {
    let store = Store::new().await;
    store.user("ann").await;

    let err = store
        .users
        .create(new_user("bob", "ann@example.org"))
        .await
        .unwrap_err();

    assert!(
        matches!(&err, StoreError::Conflict(message) if message.contains("email")),
        "{err:?}"
    );
}

#[tokio::test]
async fn find_many_returns_the_existing_users_and_nothing_for_no_ids() {
    let store = Store::new().await;
    let (ann, bob) = (store.user("ann").await, store.user("bob").await);

    let mut found = store
        .users
        .find_many(&[ann.id, UserId::generate(), bob.id])
        .await
        .unwrap();
    found.sort_by_key(|user| user.username.clone());

    assert_eq!(found, vec![ann, bob]);
    assert!(store.users.find_many(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn find_by_usernames_returns_the_known_accounts_in_one_read() {
    let store = Store::new().await;
    let (ann, bob) = (store.user("ann").await, store.user("bob").await);
    let names = ["bob", "ghost", "ann"].map(|name| Username::parse(name).unwrap());

    let mut found = store.users.find_by_usernames(&names).await.unwrap();
    found.sort_by_key(|user| user.username.clone());

    assert_eq!(found, vec![ann, bob]);
    assert!(store.users.find_by_usernames(&[]).await.unwrap().is_empty());
}

// --- conversations -----------------------------------------------------------------------

#[tokio::test]
async fn open_direct_gives_one_conversation_per_pair_in_either_order() {
    let store = Store::new().await;
    let (ann, bob) = (store.user("ann").await, store.user("bob").await);

    let (first, created) = store
        .conversations
        .open_direct(
            DirectPair::new(ann.id, bob.id).unwrap(),
            direct_draft(now()),
        )
        .await
        .unwrap();
    assert!(created);
    assert_eq!(first.kind, ConversationKind::Direct);

    let (second, created) = store
        .conversations
        .open_direct(
            DirectPair::new(bob.id, ann.id).unwrap(),
            direct_draft(now()),
        )
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(second, first);

    let mut members = store.conversations.member_ids(first.id).await.unwrap();
    members.sort();
    let mut expected = vec![ann.id, bob.id];
    expected.sort();
    assert_eq!(members, expected);
    let ann_membership = store
        .conversations
        .member(first.id, ann.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann_membership.role, Role::Member);
    assert_eq!(ann_membership.read_seq, Seq::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_open_direct_from_both_sides_yields_one_conversation() {
    let store = Store::new().await;
    let (ann, bob) = (store.user("ann").await, store.user("bob").await);

    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let conversations = store.conversations.clone();
            let pair = if i % 2 == 0 {
                DirectPair::new(ann.id, bob.id)
            } else {
                DirectPair::new(bob.id, ann.id)
            };
            tokio::spawn(async move {
                conversations
                    .open_direct(pair.unwrap(), direct_draft(now()))
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap().unwrap());
    }

    let ids: HashSet<ConversationId> = results
        .iter()
        .map(|(conversation, _)| conversation.id)
        .collect();
    assert_eq!(ids.len(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
    assert_eq!(
        store
            .conversations
            .list_for_user(ann.id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .conversations
            .list_for_user(bob.id)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn list_for_user_puts_the_most_recent_activity_first() {
    let store = Store::new().await;
    let (ann, bob, cat) = (
        store.user("ann").await,
        store.user("bob").await,
        store.user("cat").await,
    );
    let start = now() - TimeDelta::minutes(10);
    let older = store.group(&ann, &[&bob], start).await;
    let newer = store
        .group(&ann, &[&cat], start + TimeDelta::minutes(1))
        .await;
    let not_anns = store
        .group(&bob, &[&cat], start + TimeDelta::minutes(2))
        .await;

    let listed: Vec<_> = store.conversations.list_for_user(ann.id).await.unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![newer.id, older.id]
    );
    assert_eq!(listed[0], newer);

    store.send(&older, &bob, "hello again").await;

    let listed = store.conversations.list_for_user(ann.id).await.unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![older.id, newer.id]
    );
    assert_eq!(listed[0].last_seq, Seq::new(1));
    let cats: Vec<_> = store
        .conversations
        .list_for_user(cat.id)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(cats, vec![not_anns.id, newer.id]);
}

#[tokio::test]
async fn create_stores_the_group_with_its_members_and_roles() {
    let store = Store::new().await;
    let (ann, bob) = (store.user("ann").await, store.user("bob").await);
    let group = store.group(&ann, &[&bob], now()).await;

    assert_eq!(store.conversation(group.id).await, group);
    let members = store.conversations.members(&[group.id]).await.unwrap();
    let roles: HashSet<(UserId, Role)> = members.iter().map(|m| (m.user_id, m.role)).collect();
    assert_eq!(
        roles,
        HashSet::from([(ann.id, Role::Owner), (bob.id, Role::Member)])
    );
    assert_eq!(
        store
            .conversations
            .member(group.id, UserId::generate())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .conversations
            .find(ConversationId::generate())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn members_of_several_conversations_come_in_one_call_and_none_for_no_ids() {
    let store = Store::new().await;
    let (ann, bob, cat) = (
        store.user("ann").await,
        store.user("bob").await,
        store.user("cat").await,
    );
    let first = store.group(&ann, &[&bob], now()).await;
    let second = store.group(&bob, &[&cat, &ann], now()).await;
    let unrelated = store.group(&cat, &[], now()).await;

    let members = store
        .conversations
        .members(&[first.id, second.id])
        .await
        .unwrap();

    let pairs: HashSet<(ConversationId, UserId)> = members
        .iter()
        .map(|m| (m.conversation_id, m.user_id))
        .collect();
    let expected = HashSet::from([
        (first.id, ann.id),
        (first.id, bob.id),
        (second.id, bob.id),
        (second.id, cat.id),
        (second.id, ann.id),
    ]);
    assert_eq!(pairs, expected);
    assert!(
        !pairs
            .iter()
            .any(|(conversation, _)| *conversation == unrelated.id)
    );
    assert!(store.conversations.members(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn raise_read_seq_moves_the_cursor_forward_only() {
    let store = Store::new().await;
    let (ann, bob) = (store.user("ann").await, store.user("bob").await);
    let group = store.group(&ann, &[&bob], now()).await;
    for body in ["one", "two", "three", "four"] {
        store.send(&group, &ann, body).await;
    }

    assert_eq!(
        store
            .conversations
            .raise_read_seq(group.id, bob.id, Seq::new(3))
            .await
            .unwrap(),
        Seq::new(3)
    );
    assert_eq!(
        store
            .conversations
            .raise_read_seq(group.id, bob.id, Seq::new(1))
            .await
            .unwrap(),
        Seq::new(3)
    );
    assert_eq!(
        store
            .conversations
            .raise_read_seq(group.id, bob.id, Seq::new(4))
            .await
            .unwrap(),
        Seq::new(4)
    );
    let bob_membership = store
        .conversations
        .member(group.id, bob.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob_membership.read_seq, Seq::new(4));
}

#[tokio::test]
async fn unread_counts_leave_out_own_deleted_and_read_messages() {
    let store = Store::new().await;
    let (ann, bob, cat) = (
        store.user("ann").await,
        store.user("bob").await,
        store.user("cat").await,
    );
    let busy = store.group(&ann, &[&bob, &cat], now()).await;
    let quiet = store.group(&ann, &[&bob], now()).await;
    let all_read = store.group(&ann, &[&bob], now()).await;

    store.send(&busy, &bob, "1 from bob, read").await;
    store.send(&busy, &ann, "2 from ann, own").await;
    let deleted = store.send(&busy, &cat, "3 from cat, deleted").await;
    store.send(&busy, &bob, "4 from bob").await;
    store.send(&busy, &cat, "5 from cat").await;
    store.send(&all_read, &bob, "read").await;
    store
        .conversations
        .raise_read_seq(busy.id, ann.id, Seq::new(1))
        .await
        .unwrap();
    store
        .conversations
        .raise_read_seq(all_read.id, ann.id, Seq::new(1))
        .await
        .unwrap();
    messages::Entity::update_many()
        .col_expr(messages::Column::DeletedAt, Expr::value(Some(now())))
        .col_expr(messages::Column::Body, Expr::value(Option::<String>::None))
        .filter(messages::Column::Id.eq(deleted.id.as_uuid()))
        .exec(&store.test_db.db)
        .await
        .unwrap();

    let counts = store
        .conversations
        .unread_counts(ann.id, &[busy.id, quiet.id, all_read.id])
        .await
        .unwrap();

    assert_eq!(counts.get(&busy.id).copied(), Some(2));
    assert_eq!(counts.get(&quiet.id).copied().unwrap_or(0), 0);
    assert_eq!(counts.get(&all_read.id).copied().unwrap_or(0), 0);
    let for_bob = store
        .conversations
        .unread_counts(bob.id, &[busy.id])
        .await
        .unwrap();
    // Bob's own send of 4 marked everything up to it read for him: only cat's 5 is left.
    assert_eq!(for_bob.get(&busy.id).copied(), Some(1));
    assert!(
        store
            .conversations
            .unread_counts(ann.id, &[])
            .await
            .unwrap()
            .is_empty()
    );
}

// --- messages ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_posts_get_seqs_one_to_n_without_gaps() {
    const SENDS: u64 = 24;
    let store = Store::new().await;
    let (ann, bob) = (store.user("ann").await, store.user("bob").await);
    let group = store.group(&ann, &[&bob], now()).await;

    let tasks: Vec<_> = (0..SENDS)
        .map(|i| {
            let messages = store.messages.clone();
            let sender = if i % 2 == 0 { ann.id } else { bob.id };
            let draft = text(
                group.id,
                sender,
                &format!("message {i}"),
                Some(&format!("c{i}")),
            );
            tokio::spawn(async move { messages.post(draft).await })
        })
        .collect();
    let mut assigned = Vec::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Posted::Created { message, .. } => assigned.push(message.seq.value()),
            other => panic!("every send was a member's first: {other:?}"),
        }
    }

    assigned.sort_unstable();
    assert_eq!(assigned, (1..=SENDS).collect::<Vec<_>>());
    assert_eq!(store.conversation(group.id).await.last_seq, Seq::new(SENDS));
    let stored = store
        .messages
        .page(group.id, page(None, None, 200))
        .await
        .unwrap();
    assert_eq!(seqs(&stored.messages), (1..=SENDS).collect::<Vec<_>>());
}

#[tokio::test]
async fn delete_blanks_the_message_and_raises_the_conversations_deletion_watermark() {
    let store = Store::new().await;
    let (ann, bob) = (store.user("ann").await, store.user("bob").await);
    let group = store.group(&ann, &[&bob], now()).await;
    let first = store.send(&group, &ann, "one").await;
    let second = store.send(&group, &bob, "two").await;
    store.send(&group, &ann, "three").await;
    assert_eq!(
        store.conversation(group.id).await.last_deleted_seq,
        Seq::ZERO
    );

    let at = now();
    let deleted = store.messages.delete(second.id, at).await.unwrap();
    assert_eq!(deleted.body, None);
    assert_eq!(deleted.deleted_at, Some(at));
    assert_eq!(deleted.seq, second.seq);
    assert_eq!(
        store.conversation(group.id).await.last_deleted_seq,
        second.seq
    );

    // An older deletion leaves the watermark where it is; both are listed.
    store.messages.delete(first.id, now()).await.unwrap();
    assert_eq!(
        store.conversation(group.id).await.last_deleted_seq,
        second.seq
    );
    let listed = store
        .messages
        .deleted_seqs(group.id, Seq::ZERO)
        .await
        .unwrap();
    assert_eq!(listed, vec![first.seq, second.seq]);
    let above_first = store
        .messages
        .deleted_seqs(group.id, first.seq)
        .await
        .unwrap();
    assert_eq!(above_first, vec![second.seq]);

    // A deleted message stays deleted: an edit changes nothing.
    let body = MessageBody::parse("back from the dead").unwrap();
    let edited = store.messages.edit(second.id, body, now()).await.unwrap();
    assert_eq!(edited, deleted);
}

#[tokio::test]
async fn a_burst_across_conversations_numbers_each_apart_and_refuses_only_the_bad_ones() {
    let store = Store::new().await;
    let (ann, bob, cat) = (
        store.user("ann").await,
        store.user("bob").await,
        store.user("cat").await,
    );
    let first = store.group(&ann, &[&bob], now()).await;
    let second = store.group(&bob, &[&cat], now()).await;
    let missing = ConversationId::generate();
    store
        .test_db
        .mute(
            second.id.as_uuid(),
            bob.id.as_uuid(),
            Some(now() + TimeDelta::hours(1)),
        )
        .await;

    // Sent at once, as a busy server's sockets would: on Postgres these share statements, and
    // the refused ones are refused inside them.
    let drafts: Vec<NewMessage> = (0..30)
        .map(|i| match i % 3 {
            0 => text(first.id, ann.id, "to the first", None),
            1 => text(second.id, cat.id, "to the second", Some(&format!("k{i}"))),
            _ if i == 5 => text(missing, ann.id, "to nowhere", None),
            _ if i == 8 => text(first.id, cat.id, "not my conversation", None),
            _ if i == 11 => text(second.id, bob.id, "muted", None),
            _ => text(first.id, bob.id, "to the first too", None),
        })
        .collect();
    let tasks: Vec<_> = drafts
        .iter()
        .cloned()
        .map(|draft| {
            let messages = store.messages.clone();
            tokio::spawn(async move { messages.post(draft).await })
        })
        .collect();
    let mut created: HashMap<ConversationId, Vec<(Message, Vec<Member>)>> = HashMap::new();
    for (i, (draft, task)) in drafts.iter().zip(tasks).enumerate() {
        match task.await.unwrap().unwrap() {
            Posted::Created {
                message,
                conversation,
                members,
            } => {
                assert_eq!(message.id, draft.id);
                assert_eq!(conversation.id, draft.conversation_id);
                created
                    .entry(message.conversation_id)
                    .or_default()
                    .push((message, members));
            }
            Posted::NotMember => assert!(i == 5 || i == 8, "message {i} was refused"),
            Posted::Muted => assert_eq!(i, 11),
            Posted::Existing(message) => panic!("no repeat was sent: {message:?}"),
        }
    }

    for (conversation, count, users) in [
        (first.id, 17, HashSet::from([ann.id, bob.id])),
        (second.id, 10, HashSet::from([bob.id, cat.id])),
    ] {
        let mut posted = created.remove(&conversation).unwrap();
        posted.sort_by_key(|(message, _)| message.seq);
        let got: Vec<u64> = posted.iter().map(|(m, _)| m.seq.value()).collect();
        assert_eq!(got, (1..=count).collect::<Vec<_>>());
        assert_eq!(
            store.conversation(conversation).await.last_seq,
            Seq::new(count)
        );
        // Each message comes with every member, and no member's own messages are above their
        // read cursor, however the burst was batched: unread counts rest on that.
        for (k, (message, members)) in posted.iter().enumerate() {
            let listed: HashSet<UserId> = members.iter().map(|m| m.user_id).collect();
            assert_eq!(listed, users);
            for member in members {
                let own_newest = posted[..=k]
                    .iter()
                    .filter(|(m, _)| m.sender_id == member.user_id)
                    .map(|(m, _)| m.seq)
                    .max()
                    .unwrap_or(Seq::ZERO);
                assert!(
                    member.read_seq >= own_newest && member.delivered_seq >= own_newest,
                    "with message {}, {member:?} is behind their own message {own_newest}",
                    message.seq
                );
            }
        }
    }
    assert!(created.is_empty());
    // Each sender's cursor is at their newest message.
    let members = store.conversations.members(&[second.id]).await.unwrap();
    let cat_member = members.iter().find(|m| m.user_id == cat.id).unwrap();
    assert_eq!(cat_member.read_seq, Seq::new(10));
}

#[tokio::test]
async fn a_muted_member_is_refused_until_the_moment_the_mute_ends() {
    let store = Store::new().await;
    let (ann, bob) = (store.user("ann").await, store.user("bob").await);
    let group = store.group(&ann, &[&bob], now()).await;
    let until = now() + TimeDelta::minutes(5);
    store
        .test_db
        .mute(group.id.as_uuid(), bob.id.as_uuid(), Some(until))
        .await;

    let early = NewMessage {
        created_at: until - TimeDelta::microseconds(1),
        ..text(group.id, bob.id, "let me speak", None)
    };
    assert_eq!(store.messages.post(early).await.unwrap(), Posted::Muted);
    assert_eq!(store.conversation(group.id).await.last_seq, Seq::ZERO);

    // `Member::may_post`: the mute is over at `until` itself.
    let on_time = NewMessage {
        created_at: until,
        ..text(group.id, bob.id, "thank you", None)
    };
    let posted = store.messages.post(on_time.clone()).await.unwrap();
    assert!(
        matches!(&posted, Posted::Created { message, .. } if message.id == on_time.id && message.seq == Seq::new(1)),
        "{posted:?}"
    );

    // Others were never muted, and a lifted mute lets the member post at once.
    store
        .test_db
        .mute(
            group.id.as_uuid(),
            bob.id.as_uuid(),
            Some(until + TimeDelta::hours(1)),
        )
        .await;
    store.send(&group, &ann, "still here").await;
    store
        .test_db
        .mute(group.id.as_uuid(), bob.id.as_uuid(), None)
        .await;
    store.send(&group, &bob, "back").await;
    assert_eq!(store.conversation(group.id).await.last_seq, Seq::new(3));
}

#[tokio::test]
async fn post_stores_the_message_and_returns_the_conversation_with_every_member() {
    let store = Store::new().await;
    let (ann, bob) = (store.user("ann").await, store.user("bob").await);
    let group = store
        .group(&ann, &[&bob], now() - TimeDelta::hours(1))
        .await;
    let draft = text(group.id, ann.id, "hello", Some("client-1"));

    let Posted::Created {
        message,
        conversation,
        members,
    } = store.messages.post(draft.clone()).await.unwrap()
    else {
        panic!("a member's first send creates");
    };

    assert_eq!(
        (conversation.id, conversation.kind, conversation.name),
        (group.id, group.kind, group.name.clone())
    );
    // The members as they stand with the message: the sender has read and received it.
    let cursors: HashSet<(UserId, Role, u64, u64)> = members
        .iter()
        .map(|m| {
            (
                m.user_id,
                m.role,
                m.read_seq.value(),
                m.delivered_seq.value(),
            )
        })
        .collect();
    assert_eq!(
        cursors,
        HashSet::from([(ann.id, Role::Owner, 1, 1), (bob.id, Role::Member, 0, 0)])
    );

    assert_eq!(message.id, draft.id);
    assert_eq!(message.seq, Seq::new(1));
    assert_eq!(message.body.as_deref(), Some("hello"));
    assert_eq!(message.client_msg_id, draft.client_msg_id);
    let stored = store
        .messages
        .page(group.id, page(None, None, 10))
        .await
        .unwrap();
    assert_eq!(stored.messages, vec![message]);
    let conversation = store.conversation(group.id).await;
    assert_eq!(conversation.last_seq, Seq::new(1));
    assert_eq!(conversation.updated_at, draft.created_at);
}

#[tokio::test]
async fn repeated_client_msg_id_returns_the_first_message_and_stores_nothing() {
    let store = Store::new().await;
    let (ann, bob) = (store.user("ann").await, store.user("bob").await);
    let group = store.group(&ann, &[&bob], now()).await;
    let Posted::Created { message: first, .. } = store
        .messages
        .post(text(group.id, ann.id, "once", Some("abc")))
        .await
        .unwrap()
    else {
        panic!("a first send creates");
    };

    let again = store
        .messages
        .post(text(group.id, ann.id, "twice?", Some("abc")))
        .await
        .unwrap();

    assert_eq!(again, Posted::Existing(first.clone()));
    assert_eq!(store.conversation(group.id).await.last_seq, Seq::new(1));
    let stored = store
        .messages
        .page(group.id, page(None, None, 10))
        .await
        .unwrap();
    assert_eq!(stored.messages, vec![first.clone()]);
    let key = ClientMsgId::parse("abc").unwrap();
    assert_eq!(
        store
            .messages
            .find_by_client_msg_id(ann.id, &key)
            .await
            .unwrap(),
        Some(first)
    );
    assert_eq!(
        store
            .messages
            .find_by_client_msg_id(bob.id, &key)
            .await
            .unwrap(),
        None
    );

    // The key is the sender's own: someone else may use the same one.
    let from_bob = store
        .messages
        .post(text(group.id, bob.id, "mine", Some("abc")))
        .await
        .unwrap();
    assert!(
        matches!(from_bob, Posted::Created { ref message, .. } if message.seq == Seq::new(2)),
        "{from_bob:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_repeats_of_one_client_msg_id_create_one_message() {
    let store = Store::new().await;
    let (ann, bob) = (store.user("ann").await, store.user("bob").await);
    let group = store.group(&ann, &[&bob], now()).await;

    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let messages = store.messages.clone();
            let draft = text(group.id, ann.id, "tap tap tap", Some("impatient"));
            tokio::spawn(async move { messages.post(draft).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap().unwrap());
    }

    let created: Vec<_> = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            Posted::Created { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|outcome| match outcome {
        Posted::Created { message, .. } | Posted::Existing(message) => *message == created[0],
        Posted::NotMember | Posted::Muted => false,
    }));
    assert_eq!(store.conversation(group.id).await.last_seq, Seq::new(1));
}

/// The Postgres writer sends a batch again when its connection is lost, and the lost batch may
/// have committed before its answer came back: the same message ids then arrive a second time.
#[tokio::test]
async fn a_batch_sent_again_after_it_committed_is_answered_with_what_it_stored() {
    let store = Store::new().await;
    if !store.test_db.is_postgres() {
        eprintln!("not run on SQLite: only the Postgres writer sends a batch again");
        return;
    }
    let (ann, bob) = (store.user("ann").await, store.user("bob").await);
    // With a `client_msg_id`, Postgres may report either unique index: the answer is the same.
    for client_msg_id in [None, Some("resent-1")] {
        let group = store.group(&ann, &[&bob], now()).await;
        let draft = text(group.id, ann.id, "sent once", client_msg_id);
        let Posted::Created { message: first, .. } =
            store.messages.post(draft.clone()).await.unwrap()
        else {
            panic!("a member's send creates");
        };

        // Sent again beside a new message, so that both go through the batch statement together.
        let (again, next) = tokio::join!(
            store.messages.post(draft.clone()),
            store.messages.post(text(group.id, bob.id, "new", None))
        );

        let Posted::Created {
            message, members, ..
        } = again.unwrap()
        else {
            panic!("the stored message is answered as stored ({client_msg_id:?})");
        };
        assert_eq!(message, first);
        let ann_cursor = members.iter().find(|m| m.user_id == ann.id).unwrap();
        assert_eq!(ann_cursor.read_seq, Seq::new(1));
        let Posted::Created { message: next, .. } = next.unwrap() else {
            panic!("the message beside it is stored");
        };
        assert_eq!(next.seq, Seq::new(2), "the resent message took no seq");
        let stored = store
            .messages
            .page(group.id, page(None, None, 10))
            .await
            .unwrap();
        assert_eq!(stored.messages, vec![first, next]);
        assert_eq!(store.conversation(group.id).await.last_seq, Seq::new(2));
    }
}

#[tokio::test]
async fn post_raises_only_the_senders_read_seq() {
    let store = Store::new().await;
    let (ann, bob) = (store.user("ann").await, store.user("bob").await);
    let group = store.group(&ann, &[&bob], now()).await;

    store.send(&group, &bob, "one").await;
    store.send(&group, &ann, "two").await;

    let ann_membership = store
        .conversations
        .member(group.id, ann.id)
        .await
        .unwrap()
        .unwrap();
    let bob_membership = store
        .conversations
        .member(group.id, bob.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann_membership.read_seq, Seq::new(2));
    assert_eq!(bob_membership.read_seq, Seq::new(1));
}

#[tokio::test]
async fn post_to_a_missing_conversation_is_refused_as_not_a_member() {
    let store = Store::new().await;
    let ann = store.user("ann").await;

    let result = store
        .messages
        .post(text(ConversationId::generate(), ann.id, "void", None))
        .await;

    assert_eq!(result.unwrap(), Posted::NotMember);
}

#[tokio::test]
async fn page_without_cursors_is_the_newest_messages_ascending() {
    let store = Store::new().await;
    let ann = store.user("ann").await;
    let group = store.group(&ann, &[], now()).await;
    for i in 1..=10 {
        store.send(&group, &ann, &format!("m{i}")).await;
    }

    let newest = store
        .messages
        .page(group.id, page(None, None, 4))
        .await
        .unwrap();
    assert_eq!(seqs(&newest.messages), vec![7, 8, 9, 10]);
    assert!(newest.has_more, "older messages exist");

    let everything = store
        .messages
        .page(group.id, page(None, None, 10))
        .await
        .unwrap();
    assert_eq!(seqs(&everything.messages), (1..=10).collect::<Vec<_>>());
    assert!(!everything.has_more);
}

#[tokio::test]
async fn page_before_reads_backwards_and_says_whether_older_ones_exist() {
    let store = Store::new().await;
    let ann = store.user("ann").await;
    let group = store.group(&ann, &[], now()).await;
    for i in 1..=10 {
        store.send(&group, &ann, &format!("m{i}")).await;
    }

    let middle = store
        .messages
        .page(group.id, page(Some(7), None, 3))
        .await
        .unwrap();
    assert_eq!(seqs(&middle.messages), vec![4, 5, 6]);
    assert!(middle.has_more);

    let oldest = store
        .messages
        .page(group.id, page(Some(4), None, 3))
        .await
        .unwrap();
    assert_eq!(seqs(&oldest.messages), vec![1, 2, 3]);
    assert!(!oldest.has_more);

    let absurd = store
        .messages
        .page(group.id, page(Some(u64::MAX), None, 2))
        .await
        .unwrap();
    assert_eq!(seqs(&absurd.messages), vec![9, 10]);
}

#[tokio::test]
async fn page_after_reads_forwards_and_says_whether_newer_ones_exist() {
    let store = Store::new().await;
    let ann = store.user("ann").await;
    let group = store.group(&ann, &[], now()).await;
    for i in 1..=10 {
        store.send(&group, &ann, &format!("m{i}")).await;
    }

    let next = store
        .messages
        .page(group.id, page(None, Some(3), 4))
        .await
        .unwrap();
    assert_eq!(seqs(&next.messages), vec![4, 5, 6, 7]);
    assert!(next.has_more);

    let last = store
        .messages
        .page(group.id, page(None, Some(7), 3))
        .await
        .unwrap();
    assert_eq!(seqs(&last.messages), vec![8, 9, 10]);
    assert!(!last.has_more);

    let between = store
        .messages
        .page(group.id, page(Some(6), Some(2), 10))
        .await
        .unwrap();
    assert_eq!(seqs(&between.messages), vec![3, 4, 5]);
    assert!(!between.has_more);

    let beyond = store
        .messages
        .page(group.id, page(None, Some(u64::MAX), 10))
        .await
        .unwrap();
    assert!(beyond.messages.is_empty());
    assert!(!beyond.has_more);
}

#[tokio::test]
async fn page_of_another_conversation_does_not_leak_in() {
    let store = Store::new().await;
    let ann = store.user("ann").await;
    let mine = store.group(&ann, &[], now()).await;
    let other = store.group(&ann, &[], now()).await;
    store.send(&mine, &ann, "mine").await;
    store.send(&other, &ann, "other").await;

    let page = store
        .messages
        .page(mine.id, page(None, None, 50))
        .await
        .unwrap();

    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.messages[0].body.as_deref(), Some("mine"));
}

#[tokio::test]
async fn last_messages_returns_the_newest_of_each_conversation() {
    let store = Store::new().await;
    let (ann, bob) = (store.user("ann").await, store.user("bob").await);
    let first = store.group(&ann, &[&bob], now()).await;
    let second = store.group(&ann, &[&bob], now()).await;
    let empty = store.group(&ann, &[&bob], now()).await;
    store.send(&first, &ann, "old").await;
    let newest_first = store.send(&first, &bob, "new").await;
    let newest_second = store.send(&second, &ann, "only").await;

    let mut last = store
        .messages
        .last_messages(&[first.id, second.id, empty.id])
        .await
        .unwrap();
    last.sort_by_key(|message| message.conversation_id);
    let mut expected = vec![newest_first, newest_second];
    expected.sort_by_key(|message| message.conversation_id);

    assert_eq!(last, expected);
    assert!(store.messages.last_messages(&[]).await.unwrap().is_empty());
}

// --- storage details ---------------------------------------------------------------------

#[tokio::test]
async fn a_stored_kind_the_domain_does_not_know_is_a_backend_error() {
    let store = Store::new().await;
    let ann = store.user("ann").await;
    let group = store.group(&ann, &[], now()).await;
    conversations::Entity::update_many()
        .col_expr(conversations::Column::Kind, Expr::value("channel"))
        .filter(conversations::Column::Id.eq(group.id.as_uuid()))
        .exec(&store.test_db.db)
        .await
        .unwrap();

    let result = store.conversations.find(group.id).await;

    assert!(matches!(result, Err(StoreError::Backend(_))), "{result:?}");
}

#[tokio::test]
async fn migrations_report_their_status_and_roll_back_and_forth() {
    let store = Store::new().await;
    let db = &store.test_db.db;
    let status = migration_status(db).await.unwrap();
    assert!(!status.is_empty());
    assert!(
        status.iter().all(|migration| migration.applied),
        "{status:?}"
    );
    assert!(status[0].to_string().starts_with("applied"));

    for _ in 0..status.len() {
        migrate_down(db).await.unwrap();
    }
    let status = migration_status(db).await.unwrap();
    assert!(
        status.iter().all(|migration| !migration.applied),
        "{status:?}"
    );
    assert!(
        store.users.find_by_id(UserId::generate()).await.is_err(),
        "the tables are gone"
    );

    migrate_up(db).await.unwrap();
    store.user("ann").await;
}

#[tokio::test]
async fn a_member_who_is_not_a_user_is_refused() {
    let store = Store::new().await;
    let ann = store.user("ann").await;
    let at = now();
    let conversation = Conversation {
        id: ConversationId::generate(),
        kind: ConversationKind::Group,
        name: Some("ghosts".to_owned()),
        topic: None,
        created_at: at,
        updated_at: at,
        last_seq: Seq::ZERO,
        last_deleted_seq: Seq::ZERO,
    };
    let members = vec![
        member(conversation.id, ann.id, Role::Owner, at),
        member(conversation.id, UserId::generate(), Role::Member, at),
    ];

    let result = store
        .conversations
        .create(conversation.clone(), members)
        .await;

    assert!(matches!(result, Err(StoreError::Backend(_))), "{result:?}");
    assert_eq!(
        store.conversations.find(conversation.id).await.unwrap(),
        None,
        "nothing half-stored"
    );
}

#[tokio::test]
async fn a_connected_database_answers_ping() {
    let store = Store::new().await;

    confab_persistence::ping(&store.test_db.db).await.unwrap();
    let reconnected = confab_persistence::connect(&store.test_db.url)
        .await
        .unwrap();
    confab_persistence::ping(&reconnected).await.unwrap();
}

/// What `connect` promises for SQLite URLs specifically, so this one is SQLite whatever the
/// environment says.
#[tokio::test]
async fn connect_creates_a_missing_sqlite_file_in_wal_mode_with_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    let db = confab_persistence::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert!(path.exists());

    let pragma = |name: &str| {
        let db = db.clone();
        let sql = format!("PRAGMA {name}");
        async move {
            let row = db
                .query_one_raw(Statement::from_string(DbBackend::Sqlite, sql))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<String>(0)
                .or_else(|_| {
                    row.try_get_by_index::<i64>(0)
                        .map(|value| value.to_string())
                })
                .unwrap()
        }
    };
    assert_eq!(pragma("journal_mode").await, "wal");
    assert_eq!(pragma("foreign_keys").await, "1");
    assert_eq!(pragma("busy_timeout").await, "5000");
}
