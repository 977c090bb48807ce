//! Accounts and access tokens: signup, login, `/auth/me`, and every way a token is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use confab_api::{ErrorCode, Session, User};
use confab_tests::reqwest::StatusCode;
use confab_tests::{
    TEST_ACCESS_TTL, TEST_PASSWORD, TestApp, detail_fields, expect_error, expect_json, mint_token,
};
use serde_json::json;

#[tokio::test]
async fn signup_answers_201_with_a_bearer_session_for_the_new_user() {
    let app = TestApp::spawn().await;

    let response = app
        .signup_raw(
            &json!({"username": "Ann_1", "email": "Ann@Example.org", "password": TEST_PASSWORD}),
        )
        .await;
    let session: Session = expect_json(response, StatusCode::CREATED).await;

    assert_eq!(session.token_type, "Bearer");
    assert_eq!(session.expires_in, TEST_ACCESS_TTL.as_secs());
    assert!(!session.access_token.is_empty());
    assert_eq!(
        session.user.username, "ann_1",
        "usernames are stored lowercase"
    );
    assert_eq!(
        session.user.display_name, "ann_1",
        "the display name defaults to the username"
    );
    assert_eq!(
        session.user.email.as_deref(),
        Some("ann@example.org"),
        "the caller sees their own email"
    );
    // The token it gives works at once.
    assert_eq!(app.me(&session.access_token).await, session.user);
}

#[tokio::test]
async fn signup_keeps_a_given_display_name() {
    let app = TestApp::spawn().await;

    let response = app
        .signup_raw(&json!({
            "username": "ann", "email": "ann@example.org", "password": TEST_PASSWORD, "display_name": "Ann Lee"
        }))
        .await;
    let session: Session = expect_json(response, StatusCode::CREATED).await;

    assert_eq!(session.user.display_name, "Ann Lee");
}

#[tokio::test]
async fn login_works_by_username_and_by_email_in_any_case() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;

    for login in ["ann", "ANN", "ann@example.com", "Ann@EXAMPLE.com"] {
        let session = app.login(login, TEST_PASSWORD).await;
        assert_eq!(session.user.id, ann.id, "login {login:?}");
        assert_eq!(session.token_type, "Bearer");
        assert_eq!(session.user.email.as_deref(), Some("ann@example.com"));
        assert_eq!(
            app.me(&session.access_token).await.id,
            ann.id,
            "the token of login {login:?} works"
        );
    }
}

#[tokio::test]
async fn login_with_a_wrong_password_or_an_unknown_account_is_unauthorized() {
    let app = TestApp::spawn().await;
    app.signup("ann").await;

    let wrong_password = expect_error(
        app.login_raw("ann", "not the password").await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
    )
    .await;
    let unknown_user = expect_error(
        app.login_raw("nobody", TEST_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
    )
    .await;

    assert_eq!(
        wrong_password.message, unknown_user.message,
        "the answer does not reveal which accounts exist"
    );
}

#[tokio::test]
async fn a_taken_username_is_a_conflict_whatever_its_case() {
    let app = TestApp::spawn().await;
    app.signup("ann").await;

    let response = app
        .signup_raw(
            &json!({"username": "ANN", "email": "other@example.com", "password": TEST_PASSWORD}),
        )
        .await;

    expect_error(response, StatusCode::CONFLICT, ErrorCode::Conflict).await;
}

#[tokio::test]
async fn a_taken_email_is_a_conflict_whatever_its_case() {
    let app = TestApp::spawn().await;
    app.signup("ann").await;

    let response = app
        .signup_raw(
            &json!({"username": "other", "email": "ANN@example.com", "password": TEST_PASSWORD}),
        )
        .await;

    expect_error(response, StatusCode::CONFLICT, ErrorCode::Conflict).await;
}

#[tokio::test]
async fn concurrent_signups_for_one_username_create_one_account() {
    let app = TestApp::spawn().await;

    let bodies: Vec<_> = (0..4)
        .map(|i| json!({"username": "ann", "email": format!("ann{i}@example.com"), "password": TEST_PASSWORD}))
        .collect();
    let signups = bodies.iter().map(|body| app.signup_raw(body));
    let mut statuses = Vec::new();
    for response in futures_util::future::join_all(signups).await {
        let status = response.status();
        if status != StatusCode::CREATED {
            expect_error(response, StatusCode::CONFLICT, ErrorCode::Conflict).await;
        }
        statuses.push(status);
    }

    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn invalid_signup_fields_are_each_named_in_details() {
    let app = TestApp::spawn().await;

    let response = app
        .signup_raw(&json!({"username": "a!", "email": "not-an-email", "password": "short", "display_name": "  "}))
        .await;
    let error = expect_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::ValidationFailed,
    )
    .await;

    assert_eq!(
        detail_fields(&error),
        ["display_name", "email", "password", "username"]
    );
}

#[tokio::test]
async fn each_username_rule_is_enforced() {
    let app = TestApp::spawn().await;

    for username in ["ab", &"a".repeat(33), "has space", "dash-ed", "émile"] {
        let response = app
            .signup_raw(
                &json!({"username": username, "email": "x@example.com", "password": TEST_PASSWORD}),
            )
            .await;
        let error = expect_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ValidationFailed,
        )
        .await;
        assert_eq!(detail_fields(&error), ["username"], "username {username:?}");
    }
}

#[tokio::test]
async fn a_signup_body_missing_a_field_is_a_bad_request() {
    let app = TestApp::spawn().await;

    let response = app
        .signup_raw(&json!({"username": "ann", "password": TEST_PASSWORD}))
        .await;

    expect_error(response, StatusCode::BAD_REQUEST, ErrorCode::BadRequest).await;
}

#[tokio::test]
async fn me_answers_the_caller_with_their_email() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;

    let me: User = app.me(&ann.token).await;

    assert_eq!(me.id, ann.id);
    assert_eq!(me.username, "ann");
    assert_eq!(me.email.as_deref(), Some("ann@example.com"));
}

#[tokio::test]
async fn me_without_a_token_is_unauthorized() {
    let app = TestApp::spawn().await;

    expect_error(
        app.get_raw("/auth/me", None).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
    )
    .await;
}

#[tokio::test]
async fn me_with_a_malformed_token_is_unauthorized() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;

    for authorization in [
        "Bearer garbage",
        "Bearer ",
        "Basic YW5uOnB3",
        ann.token.as_str(),
    ] {
        let response = app
            .client
            .get(app.api("/auth/me"))
            .header("Authorization", authorization)
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized).await;
    }
}

#[tokio::test]
async fn me_with_an_expired_token_is_unauthorized() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let expired = app.token_with_ttl(ann.id, chrono::Duration::minutes(-5));

    expect_error(
        app.get_raw("/auth/me", Some(&expired)).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
    )
    .await;
    // The same user with a fresh token from the same secret is let in: only the expiry differed.
    let fresh = app.token_with_ttl(ann.id, chrono::Duration::minutes(5));
    assert_eq!(app.me(&fresh).await.id, ann.id);
}

#[tokio::test]
async fn me_with_a_token_signed_by_another_secret_is_unauthorized() {
    let app = TestApp::spawn().await;
    let ann = app.signup("ann").await;
    let forged = mint_token(
        b"not-the-server-secret-not-the-server-secret",
        ann.id,
        chrono::Duration::minutes(5),
    );

    expect_error(
        app.get_raw("/auth/me", Some(&forged)).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
    )
    .await;
}
