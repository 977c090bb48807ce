//! Sending messages over REST and reading history: seqs, idempotency, paging and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use confab_api::{ErrorCode, Message};
use confab_realtime::SocketConfig;
use confab_tests::reqwest::StatusCode;
use confab_tests::{TestApp, TestUser, detail_fields, expect_error};
use futures_util::future::join_all;
use serde_json::json;
use uuid::Uuid;

/// An app with ann and bob and their direct conversation.
async fn ann_and_bob() -> (TestApp, TestUser, TestUser, Uuid) {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let (_, direct) = app.open_direct(&ann, &bob).await;
    (app, ann, bob, direct.id)
}

fn seqs(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}

#[tokio::test]
async fn a_sent_message_is_stored_with_the_next_seq_and_history_is_ascending() {
    let (app, ann, bob, direct) = ann_and_bob().await;

    let (status, first) = app
        .send_message(&ann, direct, "  hello bob \n", Some("ann-1"))
        .await;
    let (_, second) = app.send_message(&bob, direct, "hi ann", None).await;
    let (_, third) = app.send_message(&ann, direct, "how are you?", None).await;

    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(first.seq, 1);
    assert_eq!(first.conversation_id, direct);
    assert_eq!(first.sender_id, ann.id);
    assert_eq!(first.kind.as_str(), "text");
    assert_eq!(
        first.body.as_deref(),
        Some("hello bob"),
        "the body is trimmed"
    );
    assert_eq!(first.client_msg_id.as_deref(), Some("ann-1"));
    assert!(first.attachments.is_empty());
    assert_eq!((first.edited_at, first.deleted_at), (None, None));
    assert_eq!((second.seq, second.sender_id), (2, bob.id));
    assert_eq!(third.seq, 3);

    let page = app.history(&bob, direct, None, None, None).await;
    assert_eq!(
        page.messages,
        [first, second, third],
        "both members read the same history, oldest first"
    );
    assert!(!page.has_more);
    assert_eq!(app.conversation(&ann, direct).await.last_seq, 3);
}

#[tokio::test]
async fn a_message_of_exactly_4000_characters_is_accepted() {
    let (app, ann, _bob, direct) = ann_and_bob().await;

    let body = "é".repeat(4000);
    let (status, message) = app.send_message(&ann, direct, &body, None).await;

    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(message.body.as_deref(), Some(body.as_str()));
}

#[tokio::test]
async fn resending_the_same_client_msg_id_answers_200_with_the_first_message_and_stores_nothing() {
    let (app, ann, _bob, direct) = ann_and_bob().await;
    let (created, first) = app
        .send_message(&ann, direct, "only once", Some("key-1"))
        .await;

    let (repeated, again) = app
        .send_message(&ann, direct, "only once", Some("key-1"))
        .await;
    let (_, with_other_body) = app
        .send_message(&ann, direct, "a different text", Some("key-1"))
        .await;

    assert_eq!(created, StatusCode::CREATED);
    assert_eq!(repeated, StatusCode::OK);
    assert_eq!(again, first, "the same message, id and seq included");
    assert_eq!(
        with_other_body, first,
        "the key, not the text, identifies the message"
    );
    assert_eq!(
        app.all_messages(&ann, direct).await,
        std::slice::from_ref(&first)
    );
    assert_eq!(
        app.conversation(&ann, direct).await.last_seq,
        1,
        "no seq was taken"
    );
    // The next new message gets the next seq, without a gap.
    let (_, next) = app.send_message(&ann, direct, "next", Some("key-2")).await;
    assert_eq!(next.seq, 2);
}

#[tokio::test]
async fn the_same_client_msg_id_by_another_sender_is_a_different_message() {
    let (app, ann, bob, direct) = ann_and_bob().await;

    let (_, from_ann) = app
        .send_message(&ann, direct, "from ann", Some("shared"))
        .await;
    let (status, from_bob) = app
        .send_message(&bob, direct, "from bob", Some("shared"))
        .await;

    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(from_bob.id, from_ann.id);
    assert_eq!(from_bob.seq, 2);
}

#[tokio::test]
async fn concurrent_copies_of_one_client_msg_id_store_one_message() {
    let (app, ann, bob, direct) = ann_and_bob().await;

    let copies =
        (0..6).map(|_| app.send_message(&ann, direct, "sent from a flaky network", Some("once")));
    let results = join_all(copies).await;

    let created = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "exactly one copy is stored: {results:?}");
    assert!(
        results
            .iter()
            .all(|(status, _)| *status == StatusCode::CREATED || *status == StatusCode::OK)
    );
    let first = &results[0].1;
    assert!(
        results.iter().all(|(_, message)| message == first),
        "every copy answers the same message"
    );
    assert_eq!(first.seq, 1);
    assert_eq!(
        app.all_messages(&bob, direct).await,
        std::slice::from_ref(first)
    );
    let (_, next) = app.send_message(&ann, direct, "next", None).await;
    assert_eq!(next.seq, 2, "the copies took no seq");
}

#[tokio::test]
async fn reusing_a_client_msg_id_in_another_conversation_is_a_conflict() {
    let (app, ann, _bob, direct) = ann_and_bob().await;
    let carl = app.signup("carl").await;
    let (_, other) = app.open_direct(&ann, &carl).await;
    app.send_message(&ann, direct, "first", Some("key-1")).await;

    let response = app
        .send_message_raw(
            &ann,
            other.id,
            &json!({"body": "second", "client_msg_id": "key-1"}),
        )
        .await;

    expect_error(response, StatusCode::CONFLICT, ErrorCode::Conflict).await;
    assert!(app.all_messages(&ann, other.id).await.is_empty());
}

#[tokio::test]
async fn concurrent_senders_get_every_seq_exactly_once() {
    let (app, ann, bob, direct) = ann_and_bob().await;

    let sends = (0..30).map(|i| {
        let sender = if i % 2 == 0 { &ann } else { &bob };
        let app = &app;
        async move {
            app.send_message(sender, direct, &format!("message {i}"), None)
                .await
        }
    });
    let results = join_all(sends).await;

    assert!(
        results
            .iter()
            .all(|(status, _)| *status == StatusCode::CREATED)
    );
    let mut taken: Vec<u64> = results.iter().map(|(_, m)| m.seq).collect();
    taken.sort_unstable();
    assert_eq!(
        taken,
        (1..=30).collect::<Vec<u64>>(),
        "no gaps, no duplicates"
    );
    let history = app.all_messages(&ann, direct).await;
    assert_eq!(seqs(&history), (1..=30).collect::<Vec<u64>>());
    // Each answer is the message history holds at that seq.
    for (_, sent) in &results {
        assert_eq!(&history[usize::try_from(sent.seq - 1).unwrap()], sent);
    }
    assert_eq!(app.conversation(&bob, direct).await.last_seq, 30);
}

#[tokio::test]
async fn history_pages_backwards_and_forwards_with_has_more() {
    let (app, ann, bob, direct) = ann_and_bob().await;
    for i in 1..=30 {
        app.send_message(
            if i % 2 == 0 { &bob } else { &ann },
            direct,
            &format!("m{i}"),
            None,
        )
        .await;
    }
    let range = |from: u64, to: u64| (from..=to).collect::<Vec<u64>>();

    let newest = app.history(&ann, direct, None, None, Some(10)).await;
    assert_eq!(
        (seqs(&newest.messages), newest.has_more),
        (range(21, 30), true),
        "default: the newest page"
    );

    let older = app.history(&ann, direct, Some(21), None, Some(10)).await;
    assert_eq!(
        (seqs(&older.messages), older.has_more),
        (range(11, 20), true)
    );

    let oldest = app.history(&ann, direct, Some(11), None, Some(10)).await;
    assert_eq!(
        (seqs(&oldest.messages), oldest.has_more),
        (range(1, 10), false)
    );

    let from_start = app.history(&ann, direct, None, Some(0), Some(10)).await;
    assert_eq!(
        (seqs(&from_start.messages), from_start.has_more),
        (range(1, 10), true)
    );

    let tail = app.history(&ann, direct, None, Some(25), Some(10)).await;
    assert_eq!(
        (seqs(&tail.messages), tail.has_more),
        (range(26, 30), false)
    );

    let exact = app.history(&ann, direct, None, Some(20), Some(10)).await;
    assert_eq!(
        (seqs(&exact.messages), exact.has_more),
        (range(21, 30), false),
        "nothing beyond the last page"
    );

    let window = app
        .history(&ann, direct, Some(15), Some(10), Some(10))
        .await;
    assert_eq!(
        (seqs(&window.messages), window.has_more),
        (range(11, 14), false)
    );

    let caught_up = app.history(&ann, direct, None, Some(30), None).await;
    assert_eq!(
        (seqs(&caught_up.messages), caught_up.has_more),
        (vec![], false)
    );

    let everything = app.history(&ann, direct, None, None, None).await;
    assert_eq!(
        (seqs(&everything.messages), everything.has_more),
        (range(1, 30), false),
        "default limit is 50"
    );

    let most = app.history(&ann, direct, None, None, Some(200)).await;
    assert_eq!(
        seqs(&most.messages),
        range(1, 30),
        "200 is the largest allowed limit"
    );
}

#[tokio::test]
async fn a_limit_outside_1_to_200_is_refused() {
    let (app, ann, _bob, direct) = ann_and_bob().await;

    for limit in ["0", "201"] {
        let response = app
            .history_raw(&ann, direct, &[("limit", limit.to_owned())])
            .await;
        let error = expect_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ValidationFailed,
        )
        .await;
        assert_eq!(detail_fields(&error), ["limit"], "limit={limit}");
    }
}

#[tokio::test]
async fn a_history_query_that_is_not_a_number_is_a_bad_request() {
    let (app, ann, _bob, direct) = ann_and_bob().await;

    let response = app
        .history_raw(&ann, direct, &[("before", "yesterday".to_owned())])
        .await;

    expect_error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
}

#[tokio::test]
async fn a_body_longer_than_4000_characters_is_refused() {
    let (app, ann, _bob, direct) = ann_and_bob().await;

    let response = app
        .send_message_raw(&ann, direct, &json!({"body": "x".repeat(4001)}))
        .await;
    let error = expect_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::ValidationFailed,
    )
    .await;

    assert_eq!(detail_fields(&error), ["body"]);
    assert!(app.all_messages(&ann, direct).await.is_empty());
}

#[tokio::test]
async fn an_empty_or_missing_body_is_refused() {
    let (app, ann, _bob, direct) = ann_and_bob().await;

    for body in [
        json!({"body": ""}),
        json!({"body": " \n\t "}),
        json!({}),
        json!({"body": null}),
    ] {
        let response = app.send_message_raw(&ann, direct, &body).await;
        let error = expect_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ValidationFailed,
        )
        .await;
        assert_eq!(detail_fields(&error), ["body"], "{body}");
    }
    assert!(app.all_messages(&ann, direct).await.is_empty());
}

#[tokio::test]
async fn an_invalid_client_msg_id_is_refused() {
    let (app, ann, _bob, direct) = ann_and_bob().await;

    for key in [String::new(), "has space".to_owned(), "k".repeat(65)] {
        let response = app
            .send_message_raw(&ann, direct, &json!({"body": "hi", "client_msg_id": key}))
            .await;
        let error = expect_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ValidationFailed,
        )
        .await;
        assert_eq!(detail_fields(&error), ["client_msg_id"], "{key:?}");
    }
}

#[tokio::test]
async fn a_json_body_over_64_kib_is_payload_too_large() {
    let (app, ann, _bob, direct) = ann_and_bob().await;

    let huge = json!({"body": "x".repeat(64 * 1024 + 1)});
    let response = app.send_message_raw(&ann, direct, &huge).await;

    expect_error(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
    )
    .await;
}

#[tokio::test]
async fn malformed_json_is_a_bad_request() {
    let (app, ann, _bob, direct) = ann_and_bob().await;
    let path = format!("/conversations/{direct}/messages");

    for body in [r#"{"body": "hi""#, "not json", r#"{"body": 42}"#, "[]"] {
        let response = app
            .post_bytes_raw(&path, Some(&ann.token), "application/json", body)
            .await;
        expect_error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_unsupported_media_type() {
    let (app, ann, _bob, direct) = ann_and_bob().await;
    let path = format!("/conversations/{direct}/messages");

    let response = app
        .post_bytes_raw(&path, Some(&ann.token), "text/plain", r#"{"body": "hi"}"#)
        .await;

    expect_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::UnsupportedMediaType,
    )
    .await;
    assert!(app.all_messages(&ann, direct).await.is_empty());
}

#[tokio::test]
async fn a_non_member_cannot_send_or_read() {
    let (app, ann, _bob, direct) = ann_and_bob().await;
    let eve = app.signup("eve").await;

    let send = app
        .send_message_raw(&eve, direct, &json!({"body": "let me in"}))
        .await;
    expect_error(send, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
    let read = app.history_raw(&eve, direct, &[]).await;
    expect_error(read, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;

    assert!(app.all_messages(&ann, direct).await.is_empty());
}

#[tokio::test]
async fn sending_to_a_conversation_that_does_not_exist_is_not_found() {
    let (app, ann, _bob, _direct) = ann_and_bob().await;

    let response = app
        .send_message_raw(&ann, Uuid::now_v7(), &json!({"body": "anyone?"}))
        .await;

    expect_error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
}

#[tokio::test]
async fn sending_faster_than_the_limit_is_rate_limited_with_retry_after() {
    let app = TestApp::spawn_configured(
        SocketConfig::default(),
        &["--rate-direct-per-min", "3", "--rate-group-per-min", "5"],
    )
    .await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let carl = app.signup("carl").await;
    let (_, with_bob) = app.open_direct(&ann, &bob).await;
    let (_, with_carl) = app.open_direct(&ann, &carl).await;
    let group = app.create_group(&ann, "Team", &[&bob]).await;

    // Three a minute in direct conversations, all of them together.
    app.send_message(&ann, with_bob.id, "one", None).await;
    app.send_message(&ann, with_carl.id, "two", None).await;
    app.send_message(&ann, with_bob.id, "three", None).await;
    let response = app
        .send_message_raw(&ann, with_carl.id, &json!({"body": "four"}))
        .await;
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    expect_error(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
    )
    .await;
    assert!(
        retry_after.is_some_and(|secs| (1..=60).contains(&secs)),
        "Retry-After says when to retry: {retry_after:?}"
    );
    assert_eq!(
        app.conversation(&ann, with_carl.id).await.last_seq,
        1,
        "nothing was stored"
    );

    // Others are not held back by ann, and groups have their own, separate limit.
    let (status, _) = app.send_message(&bob, with_bob.id, "fine", None).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app.send_message(&ann, group.id, "in the group", None).await;
    assert_eq!(status, StatusCode::CREATED);
}

/// With Redis, a sender well under their limit is let through before Redis has counted the
/// message (the count follows in the background): the limit must still hold to the message.
#[tokio::test]
async fn the_limit_holds_to_the_message_for_a_sender_who_starts_well_under_it() {
    let app =
        TestApp::spawn_configured(SocketConfig::default(), &["--rate-direct-per-min", "10"]).await;
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let (_, with_bob) = app.open_direct(&ann, &bob).await;

    for i in 1..=10 {
        let (status, _) = app
            .send_message(&ann, with_bob.id, &format!("message {i}"), None)
            .await;
        assert_eq!(status, StatusCode::CREATED, "message {i} of 10");
    }
    let response = app
        .send_message_raw(&ann, with_bob.id, &json!({"body": "eleven"}))
        .await;
    expect_error(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
    )
    .await;
    assert_eq!(app.conversation(&ann, with_bob.id).await.last_seq, 10);
}
