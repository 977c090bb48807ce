//! What operators and integrators rely on: health and readiness, the OpenAPI document, the
//! offline API explorer, and JSON answers for unknown routes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use confab_api::{ErrorCode, Health};
use confab_tests::reqwest::StatusCode;
use confab_tests::{TestApp, expect_error, expect_json};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = TestApp::spawn().await;

    let response = app.client.get(app.url("/healthz")).send().await.unwrap();

    let health: Health = expect_json(response, StatusCode::OK).await;
    assert_eq!(health.status, "ok");
}

#[tokio::test]
async fn readyz_answers_ok_when_the_database_answers() {
    let app = TestApp::spawn().await;

    let response = app.client.get(app.url("/readyz")).send().await.unwrap();

    let health: Health = expect_json(response, StatusCode::OK).await;
    assert_eq!(health.status, "ok");
}

#[tokio::test]
async fn the_openapi_document_lists_the_routes_and_the_bearer_scheme() {
    let app = TestApp::spawn().await;

    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    let document: serde_json::Value = expect_json(response, StatusCode::OK).await;

    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document"
    );
    let paths = document["paths"].as_object().expect("paths is an object");
    for path in [
        "/api/v1/auth/signup",
        "/api/v1/auth/login",
        "/api/v1/auth/me",
        "/api/v1/conversations",
        "/api/v1/conversations/direct/{username}",
        "/api/v1/conversations/groups",
        "/api/v1/conversations/{id}",
        "/api/v1/conversations/{id}/read",
        "/api/v1/conversations/{id}/messages",
        "/api/v1/ws",
        "/healthz",
        "/readyz",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} is documented; paths: {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    let bearer = &document["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(
        bearer["scheme"].as_str().map(str::to_lowercase).as_deref(),
        Some("bearer")
    );
    assert!(
        document["paths"]["/api/v1/auth/me"]["get"]["security"]
            .to_string()
            .contains("bearer"),
        "protected routes refer to the bearer scheme"
    );
}

/// Every `src="…"` and `href="…"` value of an HTML page.
fn asset_urls(html: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(start) = rest.find(attribute) {
            rest = &rest[start + attribute.len()..];
            let end = rest.find('"').expect("attribute values are closed");
            urls.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    urls
}

/// The `http://` and `https://` URLs in `text` that point anywhere but at the server itself.
fn foreign_urls(text: &str, own_host: &str) -> Vec<String> {
    let mut found = Vec::new();
    for scheme in ["http://", "https://"] {
        let mut rest = text;
        while let Some(start) = rest.find(scheme) {
            let url: String = rest[start..]
                .chars()
                .take_while(|c| {
                    !c.is_whitespace() && !matches!(c, '"' | '\'' | '`' | ')' | '<' | '>')
                })
                .collect();
            let host = url[scheme.len()..]
                .split(['/', '?', '#'])
                .next()
                .unwrap_or_default();
            if host != own_host {
                found.push(url.clone());
            }
            rest = &rest[start + scheme.len()..];
        }
    }
    found
}

#[tokio::test]
async fn the_api_explorer_is_served_without_any_cdn() {
    let app = TestApp::spawn().await;
    let own_host = format!("127.0.0.1:{}", app.port);

    let response = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/html"),
        "served as {content_type}"
    );
    let html = response.text().await.unwrap();
    assert!(
        html.to_lowercase().contains("<html"),
        "an HTML page: {html}"
    );
    assert_eq!(
        foreign_urls(&html, &own_host),
        Vec::<String>::new(),
        "the page refers to no other host"
    );

    // Every script and stylesheet it loads is served by the server itself, and the explorer's
    // own configuration (the small initializer, not the vendored library) points nowhere else.
    let assets = asset_urls(&html);
    assert!(!assets.is_empty(), "the page loads its scripts: {html}");
    let mut initializers = 0;
    for asset in assets {
        assert!(!asset.starts_with("//"), "{asset} is on another host");
        let url = if asset.starts_with("http") {
            asset.clone()
        } else {
            app.url(&format!("/docs/{}", asset.trim_start_matches("./")))
        };
        let response = app.client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url} is served");
        if asset.ends_with(".css") {
            // Stylesheets pull in no fonts or images from elsewhere (inline SVG is fine).
            let css = response.text().await.unwrap();
            assert!(
                !css.contains("@import"),
                "{asset} imports another stylesheet"
            );
            assert!(
                !css.contains("url(http")
                    && !css.contains("url(\"http")
                    && !css.contains("url('http"),
                "{asset}"
            );
        } else if asset.contains("initializer") {
            initializers += 1;
            let script = response.text().await.unwrap();
            assert_eq!(
                foreign_urls(&script, &own_host),
                Vec::<String>::new(),
                "{asset}"
            );
            assert!(
                script.contains("/openapi.json"),
                "the explorer shows this server's document: {script}"
            );
        }
    }
    assert_eq!(
        initializers, 1,
        "the page configures the explorer with its initializer"
    );
}

#[tokio::test]
async fn the_api_explorer_does_not_send_the_document_to_the_online_validator() {
    let app = TestApp::spawn().await;

    let response = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let script = response.text().await.unwrap().replace(' ', "");

    // Swagger UI's default `validatorUrl` is https://validator.swagger.io/validator: on any host
    // but localhost, the page loads a badge from there with this server's spec URL in it. An
    // offline explorer switches it off.
    assert!(
        script.contains(r#""validatorUrl":null"#)
            || script.contains("validatorUrl:null")
            || script.contains(r#""validatorUrl":"none""#),
        "the initializer leaves Swagger UI's online validator on: {script}"
    );
}

#[tokio::test]
async fn docs_without_the_trailing_slash_leads_to_the_explorer() {
    let app = TestApp::spawn().await;

    let response = app.client.get(app.url("/docs")).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn an_unknown_route_is_a_json_404() {
    let app = TestApp::spawn().await;

    let api = app
        .client
        .get(app.api("/no/such/route"))
        .send()
        .await
        .unwrap();
    expect_error(api, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
    let root = app.client.post(app.url("/nowhere")).send().await.unwrap();
    expect_error(root, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
}

#[tokio::test]
async fn a_known_route_with_the_wrong_method_is_a_json_error() {
    let app = TestApp::spawn().await;

    let response = app
        .client
        .delete(app.api("/auth/signup"))
        .send()
        .await
        .unwrap();

    let status = response.status();
    assert!(
        status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED,
        "got {status}"
    );
    let body: confab_api::ErrorBody = response
        .json()
        .await
        .expect("a JSON error body, not bare text");
    assert!(!body.error.message.is_empty());
}

/// A Postgres restart, or a proxy dropping idle links, ends the server's pooled connections
/// under it. Requests that come after are served on fresh connections: none fails, and every
/// message sent is stored. (On SQLite there is no connection to lose; the Postgres pass of CI
/// runs this for real.)
#[tokio::test]
async fn messages_go_through_after_postgres_ends_the_servers_connections() {
    let app = TestApp::spawn().await;
    if !app.is_postgres() {
        return;
    }
    let ann = app.signup("ann").await;
    let bob = app.signup("bob").await;
    let (_, direct) = app.open_direct(&ann, &bob).await;
    // The group-commit writer holds a connection now, and the pool has others.
    app.send_message(&ann, direct.id, "before", None).await;

    let ended = app.database().end_other_sessions().await;
    assert!(ended > 0, "the server held connections to end");

    for body in ["after 1", "after 2", "after 3"] {
        let (status, _) = app.send_message(&bob, direct.id, body, None).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let bodies: Vec<Option<String>> = app
        .all_messages(&ann, direct.id)
        .await
        .into_iter()
        .map(|message| message.body)
        .collect();
    assert_eq!(
        bodies,
        ["before", "after 1", "after 2", "after 3"].map(|body| Some(body.to_owned()))
    );
}
