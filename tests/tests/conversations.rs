//! Direct conversations, groups, the conversation list, visibility to non-members, and read
//! state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use confab_api::{Conversation, ErrorCode};
use confab_tests::reqwest::StatusCode;
use confab_tests::{TestApp, TestUser, detail_fields, expect_error, expect_json};
use serde_json::json;
use uuid::Uuid;

fn member_names(conversation: &Conversation) -> Vec<String> {
    let mut names: Vec<String> = conversation
        .members
        .iter()
        .map(|m| m.user.username.clone())
        .collect();
    names.sort();
    names
}

fn role_of(conversation: &Conversation, user: &TestUser) -> &'static str {
    conversation
        .members
        .iter()
        .find(|m| m.user.id == user.id)
        .unwrap_or_else(|| panic!("{} is a member", user.username))
        .role
        .as_str()
}

#[tokio::test]
async fn a_direct_conversation_is_created_once_and_then_found_by_either_user() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;

    let (created_status, created) = app.open_direct(&ann, &bob).await;
    let (again_status, again) = app.open_direct(&ann, &bob).await;
    let (other_side_status, other_side) = app.open_direct(&bob, &ann).await;

    assert_eq!(created_status, StatusCode::CREATED);
    assert_eq!(again_status, StatusCode::OK);
    assert_eq!(other_side_status, StatusCode::OK);
    assert_eq!(again.id, created.id);
    assert_eq!(other_side.id, created.id);
    assert_eq!(created.kind.as_str(), "direct");
    assert_eq!(created.name, None);
    assert_eq!(created.last_seq, 0);
    assert_eq!(created.last_message, None);
    assert_eq!(created.unread_count, 0);
    assert_eq!(member_names(&created), ["ann", "bob"]);
    assert_eq!(created.my_role.as_str(), "member");
    assert_eq!(
        app.conversations(&ann).await.len(),
        1,
        "no second conversation was made"
    );
}

#[tokio::test]
async fn both_users_opening_their_direct_conversation_at_once_get_the_same_one() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;

    let opens = (0..6).map(|i| {
        if i % 2 == 0 {
            app.open_direct(&ann, &bob)
        } else {
            app.open_direct(&bob, &ann)
        }
    });
    let results = futures_util::future::join_all(opens).await;

    let created = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(
        created, 1,
        "one of them creates it, the others get it: {results:?}"
    );
    assert!(
        results.iter().all(|(_, c)| c.id == results[0].1.id),
        "one conversation per pair"
    );
    assert_eq!(app.conversations(&ann).await.len(), 1);
    assert_eq!(app.conversations(&bob).await.len(), 1);
}

#[tokio::test]
async fn a_direct_conversation_with_an_unknown_user_is_not_found() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;

    expect_error(
        app.open_direct_raw(&ann, "nobody").await,
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
    )
    .await;
    expect_error(
        app.open_direct_raw(&ann, "not%20valid").await,
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
    )
    .await;
    assert!(app.conversations(&ann).await.is_empty());
}

#[tokio::test]
async fn a_direct_conversation_with_oneself_is_refused_as_invalid() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;

    let error = expect_error(
        app.open_direct_raw(&ann, "ann").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::ValidationFailed,
    )
    .await;

    assert_eq!(detail_fields(&error), ["username"]);
    assert!(app.conversations(&ann).await.is_empty());
}

#[tokio::test]
async fn a_new_group_has_its_creator_as_owner_and_every_member_listed() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let carl = app.signup("carl").await;

    let group = app
        .create_group(&ann, "Weekend plans", &[&bob, &carl])
        .await;

    assert_eq!(group.kind.as_str(), "group");
    assert_eq!(group.name.as_deref(), Some("Weekend plans"));
    assert_eq!(group.my_role.as_str(), "owner");
    assert_eq!(member_names(&group), ["ann", "bob", "carl"]);
    assert_eq!(role_of(&group, &ann), "owner");
    assert_eq!(role_of(&group, &bob), "member");
    assert_eq!(role_of(&group, &carl), "member");
    // Members see it too, as plain members.
    let seen_by_bob = app.conversation(&bob, group.id).await;
    assert_eq!(seen_by_bob.my_role.as_str(), "member");
    assert_eq!(member_names(&seen_by_bob), ["ann", "bob", "carl"]);
}

#[tokio::test]
async fn a_group_with_an_unknown_member_is_refused_and_not_created() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    app.signup("bob").await;

    let response = app.create_group_raw(&ann, "Team", &["bob", "nobody"]).await;
    let error = expect_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::ValidationFailed,
    )
    .await;

    assert_eq!(detail_fields(&error), ["members"]);
    assert!(app.conversations(&ann).await.is_empty());
}

#[tokio::test]
async fn a_group_is_created_with_at_most_the_members_the_spec_states() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    // The cap a frontend reads from the published spec is the one the server applies.
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    let spec: serde_json::Value = expect_json(response, StatusCode::OK).await;
    let cap =
        spec["components"]["schemas"]["CreateGroupRequest"]["properties"]["members"]["maxItems"]
            .as_u64()
            .expect("the spec states how many members a group starts with");
    assert_eq!(cap, 1024);
    let names: Vec<String> = (0..=cap).map(|i| format!("user{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();

    let response = app.create_group_raw(&ann, "Everyone", &names).await;
    let error = expect_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::ValidationFailed,
    )
    .await;
    assert_eq!(detail_fields(&error), ["members"]);

    // Up to the cap, names are checked (all of them, in one lookup): here none exist.
    let response = app
        .create_group_raw(&ann, "Everyone", &names[..names.len() - 1])
        .await;
    let error = expect_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::ValidationFailed,
    )
    .await;
    assert_eq!(detail_fields(&error), ["members"]);
    let details = error.details.map(|d| d.to_string()).unwrap_or_default();
    assert!(details.contains("no user named user0") && details.contains("no user named user1023"));
    assert!(app.conversations(&ann).await.is_empty());
}

#[tokio::test]
async fn a_group_without_a_name_is_refused() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;

    let response = app.create_group_raw(&ann, "   ", &[]).await;
    let error = expect_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::ValidationFailed,
    )
    .await;

    assert_eq!(detail_fields(&error), ["name"]);
}

#[tokio::test]
async fn conversations_are_listed_most_recent_activity_first_with_last_message_and_members() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let carl = app.signup("carl").await;
    let (_, with_bob) = app.open_direct(&ann, &bob).await;
    let group = app.create_group(&ann, "Trio", &[&bob, &carl]).await;
    let (_, with_carl) = app.open_direct(&ann, &carl).await;

    let ids: Vec<Uuid> = app.conversations(&ann).await.iter().map(|c| c.id).collect();
    assert_eq!(ids, [with_carl.id, group.id, with_bob.id], "newest first");

    // A message moves the oldest conversation to the top.
    let (_, message) = app.send_message(&bob, with_bob.id, "wake up", None).await;
    let listed = app.conversations(&ann).await;
    let ids: Vec<Uuid> = listed.iter().map(|c| c.id).collect();
    assert_eq!(ids, [with_bob.id, with_carl.id, group.id]);
    let top = &listed[0];
    assert_eq!(top.last_message.as_ref(), Some(&message));
    assert_eq!(top.last_seq, 1);
    assert_eq!(top.unread_count, 1);
    assert_eq!(member_names(top), ["ann", "bob"]);
    assert!(
        top.updated_at >= message.created_at,
        "activity time follows the message"
    );
    assert_eq!(member_names(&listed[2]), ["ann", "bob", "carl"]);

    // Bob's list holds only his own conversations.
    let bobs: Vec<Uuid> = app.conversations(&bob).await.iter().map(|c| c.id).collect();
    assert_eq!(bobs, [with_bob.id, group.id]);
}

#[tokio::test]
async fn a_conversation_is_not_found_for_a_non_member() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let eve = app.signup("eve").await;
    let (_, direct) = app.open_direct(&ann, &bob).await;
    let group = app.create_group(&ann, "Secret", &[&bob]).await;

    for id in [direct.id, group.id] {
        let hidden = expect_error(
            app.get_raw(&format!("/conversations/{id}"), Some(&eve.token))
                .await,
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
        )
        .await;
        // Exactly the answer for a conversation that does not exist: nothing is revealed.
        let missing = expect_error(
            app.get_raw(
                &format!("/conversations/{}", Uuid::now_v7()),
                Some(&eve.token),
            )
            .await,
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
        )
        .await;
        assert_eq!(hidden.message, missing.message);
        expect_error(
            app.get_raw(&format!("/conversations/{id}/messages"), Some(&eve.token))
                .await,
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
        )
        .await;
        expect_error(
            app.post_json_raw(
                &format!("/conversations/{id}/read"),
                Some(&eve.token),
                &json!({"seq": 1}),
            )
            .await,
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
        )
        .await;
    }
}

#[tokio::test]
async fn a_conversation_path_that_is_not_an_id_is_not_found() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;

    expect_error(
        app.get_raw("/conversations/not-a-uuid", Some(&ann.token))
            .await,
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
    )
    .await;
}

#[tokio::test]
async fn conversation_routes_need_a_token() {
    let app = TestApp::spawn().await;

    expect_error(
        app.get_raw("/conversations", None).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
    )
    .await;
    expect_error(
        app.post_json_raw(
            "/conversations/groups",
            None,
            &json!({"name": "x", "members": []}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
    )
    .await;
}

#[tokio::test]
async fn unread_count_counts_messages_from_others_and_not_ones_own() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let (_, direct) = app.open_direct(&ann, &bob).await;

    app.send_message(&bob, direct.id, "hi ann", None).await;
    for text in ["one", "two", "three"] {
        app.send_message(&ann, direct.id, text, None).await;
    }

    let for_bob = app.conversation(&bob, direct.id).await;
    let for_ann = app.conversation(&ann, direct.id).await;
    assert_eq!(for_bob.last_seq, 4);
    assert_eq!(
        for_bob.unread_count, 3,
        "ann's three messages, not bob's own"
    );
    assert_eq!(
        for_ann.unread_count, 0,
        "ann has sent the newest message, so she has read everything"
    );
    // The list agrees with the single view.
    let listed = app.conversations(&bob).await;
    assert_eq!(listed[0].unread_count, 3);
}

#[tokio::test]
async fn sending_moves_the_senders_read_and_delivery_cursors_to_her_message() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let (_, direct) = app.open_direct(&ann, &bob).await;

    for text in ["one", "two", "three"] {
        app.send_message(&ann, direct.id, text, None).await;
    }

    let view = app.conversation(&ann, direct.id).await;
    let anns = view.members.iter().find(|m| m.user.id == ann.id).unwrap();
    let bobs = view.members.iter().find(|m| m.user.id == bob.id).unwrap();
    assert_eq!(anns.read_seq, 3, "she has read what she wrote");
    assert_eq!(
        anns.delivered_seq, 3,
        "what she wrote is on her device: the delivery cursor is never below the read cursor"
    );
    assert_eq!((bobs.read_seq, bobs.delivered_seq), (0, 0));
}

#[tokio::test]
async fn marking_read_lowers_unread_and_the_cursor_never_moves_back_or_past_the_end() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let (_, direct) = app.open_direct(&ann, &bob).await;
    for text in ["one", "two", "three", "four"] {
        app.send_message(&ann, direct.id, text, None).await;
    }

    let read = app.mark_read(&bob, direct.id, 2).await;
    assert_eq!((read.read_seq, read.unread_count), (2, 2));
    assert_eq!(app.conversation(&bob, direct.id).await.unread_count, 2);

    let lower = app.mark_read(&bob, direct.id, 1).await;
    assert_eq!(
        (lower.read_seq, lower.unread_count),
        (2, 2),
        "a lower seq does not move the cursor back"
    );

    let beyond = app.mark_read(&bob, direct.id, 99).await;
    assert_eq!(
        (beyond.read_seq, beyond.unread_count),
        (4, 0),
        "clamped to the newest message"
    );

    let view = app.conversation(&bob, direct.id).await;
    assert_eq!(view.unread_count, 0);
    let bobs_entry = view.members.iter().find(|m| m.user.id == bob.id).unwrap();
    assert_eq!(bobs_entry.read_seq, 4);

    // A new message after that counts again.
    app.send_message(&ann, direct.id, "five", None).await;
    assert_eq!(app.conversation(&bob, direct.id).await.unread_count, 1);
}

#[tokio::test]
async fn a_malformed_read_body_is_a_bad_request() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let (_, direct) = app.open_direct(&ann, &bob).await;

    for body in [json!({}), json!({"seq": -1}), json!({"seq": "two"})] {
        let response = app
            .post_json_raw(
                &format!("/conversations/{}/read", direct.id),
                Some(&bob.token),
                &body,
            )
            .await;
        expect_error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
    }
}
