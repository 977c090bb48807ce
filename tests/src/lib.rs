//! # confab-tests
//!
//! Black-box tests of Confab: each test starts the real application in-process on a real socket
//! (`127.0.0.1:0`), with a fresh database of its own, and drives it only through what clients
//! see: HTTP and the WebSocket. Every answer is read into the wire types of `confab-api`, so a
//! test checks the contract itself, not a copy of it.
//!
//! - [`TestApp`] starts a server and offers typed helpers for the REST API.
//! - [`WsClient`] is one device's socket, with helpers that wait for frames with a timeout.
//!
//! The database is SQLite by default, and a uniquely named Postgres database when
//! `CONFAB_TEST_DATABASE_URL` is set (see `confab_persistence::testing`).

// This is test support: a step that fails should stop the test at once, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use clap::Parser as _;
use confab_api::ws::{AckResult, ClientFrame, ServerFrame, SkippedRange};
use confab_api::{
    Conversation, CreateGroupRequest, ErrorBody, ErrorCode, ErrorDetail, LoginRequest,
    MarkReadRequest, Message, MessagePage, SendMessageRequest, Session, SignupRequest, User,
};
use confab_persistence::testing::TestDatabase;
use confab_realtime::SocketConfig;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

pub use confab_api;
pub use reqwest;

/// The secret every test server signs access tokens with; tests use it to mint expired tokens.
pub const TEST_JWT_SECRET: &[u8] = b"confab-black-box-tests-jwt-secret-0123456789";

/// The lifetime of access tokens on test servers.
pub const TEST_ACCESS_TTL: Duration = Duration::from_secs(900);

/// The password of every user that [`TestApp::signup`] creates.
pub const TEST_PASSWORD: &str = "correct horse battery staple";

/// Messages per minute each user may send on a test server, in direct conversations and in
/// groups: far above what any test sends, so that only tests of rate limiting meet a limit
/// (they set their own with [`TestApp::spawn_configured`]).
pub const TEST_RATE_PER_MIN: u32 = 100_000;

/// How long a test waits for a frame or an HTTP answer before it fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// A running Confab server with a database of its own, stopped when dropped.
#[derive(Debug)]
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The port the server listens on.
    pub port: u16,
    /// A plain HTTP client (it follows redirects, keeps no cookies).
    pub client: reqwest::Client,
    server: JoinHandle<std::io::Result<()>>,
    _data_dir: tempfile::TempDir,
    // Declared last so that it is dropped after the server task is told to stop.
    database: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Dropping the server future closes its listener and stops its workers.
        self.server.abort();
    }
}

/// A user created through the API, with the session signup gave them.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// What signup answered.
    pub session: Session,
    /// The access token.
    pub token: String,
    /// The user id.
    pub id: Uuid,
    /// The (lowercase) username.
    pub username: String,
    /// The email signed up with.
    pub email: String,
    /// The password signed up with.
    pub password: String,
}

impl TestApp {
    /// Starts a server with the default socket limits.
    pub async fn spawn() -> Self {
        Self::spawn_with(SocketConfig::default()).await
    }

    /// Starts a server with these socket limits (a short heartbeat, say).
    pub async fn spawn_with(socket: SocketConfig) -> Self {
        Self::spawn_configured(socket, &[]).await
    }

    /// Starts a server on `127.0.0.1:0` with a fresh database, on the test's own runtime, with
    /// these socket limits and these extra `confab serve` flags (`["--rate-direct-per-min",
    /// "3"]`, say), which replace the test defaults of the same name.
    pub async fn spawn_configured(socket: SocketConfig, flags: &[&str]) -> Self {
        confab_server::install_crypto_provider();
        let database = TestDatabase::create().await;
        let data_dir = tempfile::tempdir().expect("create a data directory");
        let secret = std::str::from_utf8(TEST_JWT_SECRET).unwrap();
        let ttl = TEST_ACCESS_TTL.as_secs().to_string();
        let rate = TEST_RATE_PER_MIN.to_string();
        let defaults = [
            ("--bind", "127.0.0.1:0"),
            ("--data-dir", data_dir.path().to_str().unwrap()),
            ("--database-url", &database.url),
            ("--jwt-secret", secret),
            ("--access-ttl-secs", &ttl),
            ("--rate-direct-per-min", &rate),
            ("--rate-group-per-min", &rate),
        ];
        // Built the way `confab serve` builds it, from flags: every setting not given here
        // keeps the default an operator would get.
        let mut argv = vec!["confab"];
        for (flag, value) in defaults {
            if !flags.contains(&flag) {
                argv.extend([flag, value]);
            }
        }
        argv.extend_from_slice(flags);
        let cli = confab_server::Cli::try_parse_from(argv).expect("the test settings parse");
        let mut config = cli
            .settings
            .server_config()
            .expect("the test settings are valid");
        config.socket = socket;
        let app = confab_server::Application::build(config)
            .await
            .expect("the test server starts");
        let port = app.port();
        let server = tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .timeout(WAIT * 2)
            .build()
            .expect("build the HTTP client");
        Self {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client,
            server,
            _data_dir: data_dir,
            database,
        }
    }

    /// The server's database, for tests that set up what no client can (a lock held by
    /// another writer, say).
    pub fn database(&self) -> &TestDatabase {
        &self.database
    }

    /// Whether the server runs on Postgres (rather than SQLite).
    pub fn is_postgres(&self) -> bool {
        self.database.is_postgres()
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The absolute URL of `path` under `/api/v1`.
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.address)
    }

    /// The `ws://` URL of the socket, without a token.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/api/v1/ws", self.port)
    }

    // ---- raw requests, for bad input and for reading error answers ----

    /// `GET /api/v1{path}` with an optional bearer token.
    pub async fn get_raw(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        with_token(self.client.get(self.api(path)), token)
            .send()
            .await
            .expect("GET reaches the server")
    }

    /// `POST /api/v1{path}` with a JSON body and an optional bearer token.
    pub async fn post_json_raw(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        with_token(self.client.post(self.api(path)), token)
            .json(body)
            .send()
            .await
            .expect("POST reaches the server")
    }

    /// `POST /api/v1{path}` with these exact bytes and content type.
    pub async fn post_bytes_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        with_token(self.client.post(self.api(path)), token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("POST reaches the server")
    }

    // ---- auth ----

    /// `POST /auth/signup` with any JSON.
    pub async fn signup_raw(&self, body: &serde_json::Value) -> reqwest::Response {
        self.post_json_raw("/auth/signup", None, body).await
    }

    /// Signs up `username` (email `<username>@example.com`, password [`TEST_PASSWORD`]),
    /// checking the answer is 201 with a `Session`.
    pub async fn signup(&self, username: &str) -> TestUser {
        let email = format!("{username}@example.com");
        let request = SignupRequest {
            username: username.to_owned(),
            email: email.clone(),
            password: TEST_PASSWORD.to_owned(),
            display_name: None,
        };
        let response = self
            .client
            .post(self.api("/auth/signup"))
            .json(&request)
            .send()
            .await
            .unwrap();
        let session: Session = expect_json(response, StatusCode::CREATED).await;
        TestUser {
            token: session.access_token.clone(),
            id: session.user.id,
            username: session.user.username.clone(),
            email,
            password: TEST_PASSWORD.to_owned(),
            session,
        }
    }

    /// `POST /auth/login`, raw.
    pub async fn login_raw(&self, login: &str, password: &str) -> reqwest::Response {
        let request = LoginRequest {
            login: login.to_owned(),
            password: password.to_owned(),
        };
        self.client
            .post(self.api("/auth/login"))
            .json(&request)
            .send()
            .await
            .unwrap()
    }

    /// Logs in with a username or email, checking the answer is 200 with a `Session`.
    pub async fn login(&self, login: &str, password: &str) -> Session {
        expect_json(self.login_raw(login, password).await, StatusCode::OK).await
    }

    /// `GET /auth/me`, checking the answer is 200 with a `User`.
    pub async fn me(&self, token: &str) -> User {
        expect_json(self.get_raw("/auth/me", Some(token)).await, StatusCode::OK).await
    }

    // ---- conversations ----

    /// `POST /conversations/direct/{username}`, raw.
    pub async fn open_direct_raw(&self, user: &TestUser, with: &str) -> reqwest::Response {
        with_token(
            self.client
                .post(self.api(&format!("/conversations/direct/{with}"))),
            Some(&user.token),
        )
        .send()
        .await
        .unwrap()
    }

    /// Opens (or gets) the direct conversation of `user` with `with`: the status (201 or 200)
    /// and the conversation.
    pub async fn open_direct(
        &self,
        user: &TestUser,
        with: &TestUser,
    ) -> (StatusCode, Conversation) {
        let response = self.open_direct_raw(user, &with.username).await;
        expect_json_success(response).await
    }

    /// `POST /conversations/groups`, raw.
    pub async fn create_group_raw(
        &self,
        owner: &TestUser,
        name: &str,
        members: &[&str],
    ) -> reqwest::Response {
        let request = CreateGroupRequest {
            name: name.to_owned(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        };
        with_token(
            self.client.post(self.api("/conversations/groups")),
            Some(&owner.token),
        )
        .json(&request)
        .send()
        .await
        .unwrap()
    }

    /// Creates a group owned by `owner` with `members`, checking the answer is 201.
    pub async fn create_group(
        &self,
        owner: &TestUser,
        name: &str,
        members: &[&TestUser],
    ) -> Conversation {
        let names: Vec<&str> = members.iter().map(|m| m.username.as_str()).collect();
        expect_json(
            self.create_group_raw(owner, name, &names).await,
            StatusCode::CREATED,
        )
        .await
    }

    /// `GET /conversations`, checking the answer is 200.
    pub async fn conversations(&self, user: &TestUser) -> Vec<Conversation> {
        expect_json(
            self.get_raw("/conversations", Some(&user.token)).await,
            StatusCode::OK,
        )
        .await
    }

    /// `GET /conversations/{id}`, checking the answer is 200.
    pub async fn conversation(&self, user: &TestUser, id: Uuid) -> Conversation {
        expect_json(
            self.get_raw(&format!("/conversations/{id}"), Some(&user.token))
                .await,
            StatusCode::OK,
        )
        .await
    }

    /// `POST /conversations/{id}/read`, checking the answer is 200.
    pub async fn mark_read(
        &self,
        user: &TestUser,
        conversation: Uuid,
        seq: u64,
    ) -> confab_api::ReadState {
        let body = serde_json::to_value(MarkReadRequest { seq }).unwrap();
        let response = self
            .post_json_raw(
                &format!("/conversations/{conversation}/read"),
                Some(&user.token),
                &body,
            )
            .await;
        expect_json(response, StatusCode::OK).await
    }

    // ---- messages ----

    /// `POST /conversations/{id}/messages` with any JSON, raw.
    pub async fn send_message_raw(
        &self,
        user: &TestUser,
        conversation: Uuid,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.post_json_raw(
            &format!("/conversations/{conversation}/messages"),
            Some(&user.token),
            body,
        )
        .await
    }

    /// Sends a text message over REST: the status (201 new, 200 repeat) and the message.
    pub async fn send_message(
        &self,
        user: &TestUser,
        conversation: Uuid,
        body: &str,
        client_msg_id: Option<&str>,
    ) -> (StatusCode, Message) {
        let request = SendMessageRequest {
            body: Some(body.to_owned()),
            client_msg_id: client_msg_id.map(str::to_owned),
        };
        let response = self
            .send_message_raw(user, conversation, &serde_json::to_value(request).unwrap())
            .await;
        expect_json_success(response).await
    }

    /// `GET /conversations/{id}/messages` with these query parameters, raw.
    pub async fn history_raw(
        &self,
        user: &TestUser,
        conversation: Uuid,
        query: &[(&str, String)],
    ) -> reqwest::Response {
        with_token(
            self.client
                .get(self.api(&format!("/conversations/{conversation}/messages"))),
            Some(&user.token),
        )
        .query(query)
        .send()
        .await
        .unwrap()
    }

    /// A page of history, checking the answer is 200. `None` leaves a parameter out.
    pub async fn history(
        &self,
        user: &TestUser,
        conversation: Uuid,
        before: Option<u64>,
        after: Option<u64>,
        limit: Option<u32>,
    ) -> MessagePage {
        let mut query = Vec::new();
        if let Some(before) = before {
            query.push(("before", before.to_string()));
        }
        if let Some(after) = after {
            query.push(("after", after.to_string()));
        }
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        expect_json(
            self.history_raw(user, conversation, &query).await,
            StatusCode::OK,
        )
        .await
    }

    /// Every message of a conversation, ascending (at most 200).
    pub async fn all_messages(&self, user: &TestUser, conversation: Uuid) -> Vec<Message> {
        self.history(user, conversation, None, None, Some(200))
            .await
            .messages
    }

    /// An access token for `user_id` signed with the test secret, valid for `ttl` (negative for
    /// one that has already expired).
    pub fn token_with_ttl(&self, user_id: Uuid, ttl: chrono::Duration) -> String {
        mint_token(TEST_JWT_SECRET, user_id, ttl)
    }
}

/// An access token for `user_id` signed with `secret` and valid for `ttl`, issued the way the
/// server issues them.
pub fn mint_token(secret: &[u8], user_id: Uuid, ttl: chrono::Duration) -> String {
    use confab_app::ports::TokenIssuer as _;
    confab_auth::JwtIssuer::new(secret, ttl)
        .issue(confab_domain::UserId::from_uuid(user_id))
        .expect("issue a token")
        .token
}

fn with_token(request: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

/// Reads a response as `T`, after checking its status; on a mismatch the panic shows the body.
pub async fn expect_json<T: DeserializeOwned>(
    response: reqwest::Response,
    status: StatusCode,
) -> T {
    let (actual, text) = status_and_text(response).await;
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("body is not the expected type ({e}): {text}"))
}

/// Reads a successful (2xx) response as `T`, returning its status too.
pub async fn expect_json_success<T: DeserializeOwned>(
    response: reqwest::Response,
) -> (StatusCode, T) {
    let (status, text) = status_and_text(response).await;
    assert!(
        status.is_success(),
        "expected success, got {status}; body: {text}"
    );
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("body is not the expected type ({e}): {text}"));
    (status, value)
}

/// Checks that a response is the documented JSON error: this status, a JSON content type and
/// `{"error": {"code": code, ...}}`. Returns the error for further checks (`details`).
pub async fn expect_error(
    response: reqwest::Response,
    status: StatusCode,
    code: ErrorCode,
) -> ErrorDetail {
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (actual, text) = status_and_text(response).await;
    assert_eq!(actual, status, "unexpected status; body: {text}");
    assert!(
        content_type.starts_with("application/json"),
        "error body is {content_type:?}, not JSON: {text}"
    );
    let body: ErrorBody =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not an error body ({e}): {text}"));
    assert_eq!(body.error.code, code, "unexpected error code; body: {text}");
    assert!(
        !body.error.message.is_empty(),
        "an error explains itself: {text}"
    );
    body.error
}

/// The field names of a `validation_failed` error's `details`, sorted.
pub fn detail_fields(error: &ErrorDetail) -> Vec<String> {
    let details = error
        .details
        .as_ref()
        .and_then(serde_json::Value::as_object)
        .unwrap_or_else(|| {
            panic!("validation_failed has an object of `details`: {error:?}");
        });
    let mut fields: Vec<String> = details.keys().cloned().collect();
    fields.sort();
    fields
}

async fn status_and_text(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let text = response.text().await.expect("read the response body");
    (status, text)
}

/// Frames the server sends on its own to announce state (who is online, who is typing, read
/// ticks, sidebar updates, the end of the automatic backlog), as opposed to frames that answer
/// the client or deliver a message. [`WsClient::next_frame`] sets them aside, so that a test of
/// message delivery states exactly what it delivers and is not upset by a contact coming online;
/// they are kept, in order, in [`WsClient::ambient`] for tests of those features.
pub const AMBIENT_FRAME_TYPES: &[&str] = &[
    "presence",
    "typing",
    "receipt",
    "conversation.updated",
    "sync.done",
];

/// One device's WebSocket.
#[derive(Debug)]
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `session_id` of the `hello` frame.
    pub session_id: Uuid,
    /// The `heartbeat_interval_ms` of the `hello` frame.
    pub heartbeat_interval_ms: u64,
    /// The messages sent between `hello` and `sync.done`: what the user missed while offline.
    pub backlog: Vec<Message>,
    /// The ranges `sync.done` said were left out of the backlog.
    pub skipped: Vec<SkippedRange>,
    /// The ambient frames set aside so far (see [`AMBIENT_FRAME_TYPES`]), as JSON.
    pub ambient: Vec<serde_json::Value>,
    /// Where the `ref`s of barriers come from.
    barriers: u64,
}

/// A text frame read as a `ServerFrame`, or a panic that shows it.
fn parse_frame(value: serde_json::Value) -> ServerFrame {
    serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("not a ServerFrame ({e}): {value}"))
}

/// Whether a frame is ambient: one of [`AMBIENT_FRAME_TYPES`], and not the answer to a client
/// frame (a `sync.done` with a `ref` answers a `sync`).
fn is_ambient(frame: &serde_json::Value) -> bool {
    let kind = frame
        .get("type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    AMBIENT_FRAME_TYPES.contains(&kind) && frame.get("ref").is_none_or(serde_json::Value::is_null)
}

/// How a socket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// The server sent a close frame with this code.
    Code(u16),
    /// The stream ended (or was reset) without a close frame.
    Ended,
}

impl WsClient {
    /// Connects as `user` with `?token=`, and checks the first frame is a `hello` naming them.
    pub async fn connect(app: &TestApp, user: &TestUser) -> Self {
        let url = format!("{}?token={}", app.ws_url(), user.token);
        Self::open(url.into_client_request().unwrap(), user).await
    }

    /// Connects as `user` with an `Authorization: Bearer` header, and checks the `hello`.
    pub async fn connect_with_header(app: &TestApp, user: &TestUser) -> Self {
        let mut request = app.ws_url().into_client_request().unwrap();
        request.headers_mut().insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {}", user.token)).unwrap(),
        );
        Self::open(request, user).await
    }

    /// Attempts a handshake with this request as is; for checking refusals.
    pub async fn try_handshake(
        request: tungstenite::handshake::client::Request,
    ) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, tungstenite::Error> {
        let connect = tokio_tungstenite::connect_async(request);
        let result = tokio::time::timeout(WAIT, connect)
            .await
            .expect("the handshake is answered in time");
        result.map(|(stream, _response)| stream)
    }

    /// Opens the socket and reads the greeting: `hello` naming `user`, then the backlog
    /// (kept in [`WsClient::backlog`]) up to `sync.done`.
    async fn open(request: tungstenite::handshake::client::Request, user: &TestUser) -> Self {
        let stream = Self::try_handshake(request)
            .await
            .expect("the WebSocket handshake succeeds");
        let mut client = Self {
            stream,
            session_id: Uuid::nil(),
            heartbeat_interval_ms: 0,
            backlog: Vec::new(),
            skipped: Vec::new(),
            ambient: Vec::new(),
            barriers: 0,
        };
        match parse_frame(client.next_json("hello").await) {
            ServerFrame::Hello {
                user_id,
                session_id,
                heartbeat_interval_ms,
                ..
            } => {
                assert_eq!(user_id, user.id, "hello names the user who connected");
                client.session_id = session_id;
                client.heartbeat_interval_ms = heartbeat_interval_ms;
            }
            other => panic!("the first frame must be hello, got {other:?}"),
        }
        loop {
            let value = client.next_json("the backlog and sync.done").await;
            match parse_frame(value.clone()) {
                ServerFrame::SyncDone {
                    reference: None,
                    skipped,
                } => {
                    client.skipped = skipped;
                    return client;
                }
                ServerFrame::MessageNew { message } => client.backlog.push(message),
                _ if is_ambient(&value) => client.ambient.push(value),
                other => panic!("expected the backlog or sync.done after hello, got {other:?}"),
            }
        }
    }

    /// The next text frame from the server as JSON, whatever it is; control frames (pings) are
    /// skipped. Panics, naming `what` was awaited, if none arrives within [`WAIT`] or if the
    /// socket closes.
    async fn next_json(&mut self, what: &str) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .unwrap_or_else(|_| panic!("no {what} from the server within {WAIT:?}"));
            match next {
                Some(Ok(WsMessage::Text(text))) => {
                    return serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text.as_str()));
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
                Some(Ok(WsMessage::Binary(bytes))) => {
                    panic!("the server sent a binary frame: {bytes:?}")
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    panic!("the socket closed while awaiting {what}: {frame:?}")
                }
                Some(Err(error)) => panic!("the socket failed while awaiting {what}: {error}"),
                None => panic!("the socket ended while awaiting {what}"),
            }
        }
    }

    /// The next data frame from the server, read as a `ServerFrame`. Control frames (pings) and
    /// ambient frames (see [`AMBIENT_FRAME_TYPES`]) are set aside. Panics if none arrives within
    /// [`WAIT`], or if the socket closes.
    pub async fn next_frame(&mut self) -> ServerFrame {
        parse_frame(self.next_frame_json().await)
    }

    /// Like [`WsClient::next_frame`], but the frame as the JSON the server sent, for checking
    /// fields that the typed frame does not have.
    pub async fn next_frame_json(&mut self) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let value = tokio::time::timeout(remaining, self.next_json("a frame"))
                .await
                .unwrap_or_else(|_| panic!("no frame from the server within {WAIT:?}"));
            if is_ambient(&value) {
                self.ambient.push(value);
                continue;
            }
            return value;
        }
    }

    /// Sends a client frame with this `ref`.
    pub async fn send_frame(&mut self, frame: &ClientFrame, reference: &str) {
        let mut value = serde_json::to_value(frame).unwrap();
        value
            .as_object_mut()
            .expect("client frames are objects")
            .insert("ref".into(), reference.into());
        self.send_text(&value.to_string()).await;
    }

    /// Sends this exact text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(WsMessage::text(text.to_owned()))
            .await
            .expect("send a text frame");
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.stream
            .send(WsMessage::binary(bytes))
            .await
            .expect("send a binary frame");
    }

    /// Sends `message.send` and waits for its `ack`, returning the stored message.
    pub async fn send_message(
        &mut self,
        conversation_id: Uuid,
        body: &str,
        client_msg_id: Option<&str>,
        reference: &str,
    ) -> Message {
        let frame = ClientFrame::MessageSend {
            conversation_id,
            body: Some(body.to_owned()),
            client_msg_id: client_msg_id.map(str::to_owned),
        };
        self.send_frame(&frame, reference).await;
        self.expect_sent_ack(reference).await
    }

    /// Waits for the `ack` of a `message.send` with this `ref`: it must be the next frame.
    pub async fn expect_sent_ack(&mut self, reference: &str) -> Message {
        match self.next_frame().await {
            ServerFrame::Ack {
                reference: Some(r),
                result: AckResult::Sent { message },
            } if r == reference => message,
            other => panic!("expected the ack of {reference:?} with the message, got {other:?}"),
        }
    }

    /// Waits for the `ack` of a `message.read` with this `ref` (the next frame), returning its
    /// conversation, read cursor and unread count.
    pub async fn expect_read_ack(&mut self, reference: &str) -> (Uuid, u64, u64) {
        match self.next_frame().await {
            ServerFrame::Ack {
                reference: Some(r),
                result:
                    AckResult::Read {
                        conversation_id,
                        read_seq,
                        unread_count,
                        ..
                    },
            } if r == reference => (conversation_id, read_seq, unread_count),
            other => panic!("expected the ack of message.read {reference:?}, got {other:?}"),
        }
    }

    /// Waits for an `error` frame (the next frame), returning its `ref`, code and details.
    pub async fn expect_error(&mut self) -> (Option<String>, ErrorCode, Option<serde_json::Value>) {
        match self.next_frame().await {
            ServerFrame::Error {
                reference,
                code,
                message,
                details,
                ..
            } => {
                assert!(!message.is_empty(), "an error frame explains itself");
                (reference, code, details)
            }
            other => panic!("expected an error frame, got {other:?}"),
        }
    }

    /// Waits for a `message.new` (the next frame), returning its message.
    pub async fn expect_message_new(&mut self) -> Message {
        match self.next_frame().await {
            ServerFrame::MessageNew { message } => message,
            other => panic!("expected message.new, got {other:?}"),
        }
    }

    /// A deterministic barrier: sends `ping` with a fresh `ref` and reads until its `pong`.
    /// The server drains a socket's outbound queue before answering what the client sent, so
    /// every frame fanned out to this socket before the ping is among the frames returned.
    pub async fn barrier(&mut self) -> Vec<ServerFrame> {
        self.barriers += 1;
        let reference = format!("barrier-{}", self.barriers);
        self.send_frame(&ClientFrame::Ping {}, &reference).await;
        let mut seen = Vec::new();
        loop {
            match self.next_frame().await {
                ServerFrame::Pong { reference: Some(r) } if r == reference => return seen,
                frame => seen.push(frame),
            }
        }
    }

    /// Waits for the server to close the socket: the close code, or [`Closed::Ended`] if the
    /// stream ended without a close frame. Panics on a data frame or after [`WAIT`].
    pub async fn expect_close(&mut self) -> Closed {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .unwrap_or_else(|_| panic!("the server did not close the socket within {WAIT:?}"));
            match next {
                Some(Ok(WsMessage::Close(Some(frame)))) => {
                    return Closed::Code(u16::from(frame.code));
                }
                Some(Ok(WsMessage::Close(None))) => {
                    return Closed::Code(u16::from(CloseCode::Status));
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
                Some(Ok(WsMessage::Text(text))) => {
                    let value: serde_json::Value =
                        serde_json::from_str(text.as_str()).unwrap_or_default();
                    if is_ambient(&value) {
                        self.ambient.push(value);
                        continue;
                    }
                    panic!(
                        "expected the socket to close, got a frame: {}",
                        text.as_str()
                    )
                }
                Some(Ok(WsMessage::Binary(bytes))) => {
                    panic!("expected the socket to close, got {bytes:?}")
                }
                Some(Err(_)) | None => return Closed::Ended,
            }
        }
    }
}
