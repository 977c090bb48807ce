//! A Confab client over the public API, on the very wire types the server uses.

use std::net::{IpAddr, SocketAddr};

use confab_api::ws::{ClientFrame, ServerFrame};
use confab_api::{Conversation, Session};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Any failure of the tool: it reports it and stops.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type Result<T> = std::result::Result<T, Error>;

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub(crate) type Sender = SplitSink<Stream, WsMessage>;
pub(crate) type Receiver = SplitStream<Stream>;

/// The REST side, and the address of the socket.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub(crate) fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: serde_json::Value,
    ) -> Result<reqwest::Response> {
        let mut request = self
            .http
            .post(format!("{}/api/v1{path}", self.base))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        if !response.status().is_success() {
            let status = response.status();
            return Err(format!(
                "POST {path}: {status}: {}",
                response.text().await.unwrap_or_default()
            )
            .into());
        }
        Ok(response)
    }

    /// A new user with a unique name.
    pub(crate) async fn signup(&self, name: &str) -> Result<Session> {
        let body = serde_json::json!({"username": name, "email": format!("{name}@load.example"), "password": "load-test-password"});
        Ok(self.post("/auth/signup", None, body).await?.json().await?)
    }

    pub(crate) async fn direct(&self, user: &Session, with: &Session) -> Result<Conversation> {
        let path = format!("/conversations/direct/{}", with.user.username);
        Ok(self
            .post(&path, Some(&user.access_token), serde_json::json!({}))
            .await?
            .json()
            .await?)
    }

    /// Posts over REST.
    pub(crate) async fn send(
        &self,
        user: &Session,
        conversation: uuid::Uuid,
        body: &str,
    ) -> Result<()> {
        let path = format!("/conversations/{conversation}/messages");
        self.post(
            &path,
            Some(&user.access_token),
            serde_json::json!({"body": body}),
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn group(&self, owner: &Session, members: &[Session]) -> Result<Conversation> {
        let names: Vec<&str> = members.iter().map(|m| m.user.username.as_str()).collect();
        let body = serde_json::json!({"name": "load", "members": names});
        Ok(self
            .post("/conversations/groups", Some(&owner.access_token), body)
            .await?
            .json()
            .await?)
    }

    /// Opens a socket as `user`, from `source` when given, and reads up to the end of its
    /// greeting (`sync.done`).
    pub(crate) async fn connect(
        &self,
        user: &Session,
        source: Option<IpAddr>,
    ) -> Result<(Sender, Receiver)> {
        let (sender, receiver, _) = self.connect_greeted(user, source).await?;
        Ok((sender, receiver))
    }

    /// Like [`Api::connect`], and returns the greeting's frames (the backlog among them).
    pub(crate) async fn connect_greeted(
        &self,
        user: &Session,
        source: Option<IpAddr>,
    ) -> Result<(Sender, Receiver, Vec<ServerFrame>)> {
        let url = format!(
            "{}/api/v1/ws?token={}",
            self.base.replacen("http", "ws", 1),
            user.access_token
        );
        let host = self
            .base
            .trim_start_matches("http://")
            .trim_start_matches("https://");
        let server: SocketAddr = tokio::net::lookup_host(host)
            .await?
            .next()
            .ok_or("the server's address does not resolve")?;
        let socket = if server.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(source) = source {
            socket.bind(SocketAddr::new(source, 0))?;
        }
        let tcp = socket.connect(server).await?;
        // Like any chat client: a frame goes out now, not when the previous one is ACKed.
        tcp.set_nodelay(true)?;
        let (stream, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp)).await?;
        let (sender, mut receiver) = stream.split();
        let mut greeting = Vec::new();
        loop {
            match next_frame(&mut receiver).await? {
                Some(ServerFrame::SyncDone { .. }) => return Ok((sender, receiver, greeting)),
                Some(frame) => greeting.push(frame),
                None => return Err("the socket closed during its greeting".into()),
            }
        }
    }
}

/// The next frame the server sends, or `None` when the socket ends.
pub(crate) async fn next_frame(receiver: &mut Receiver) -> Result<Option<ServerFrame>> {
    match next_text(receiver).await? {
        Some(text) => Ok(Some(serde_json::from_str(text.as_str())?)),
        None => Ok(None),
    }
}

/// The text of the next frame the server sends, unparsed, or `None` when the socket ends.
pub(crate) async fn next_text(receiver: &mut Receiver) -> Result<Option<Utf8Bytes>> {
    while let Some(message) = receiver.next().await {
        if let WsMessage::Text(text) = message? {
            return Ok(Some(text));
        }
    }
    Ok(None)
}

pub(crate) async fn send_frame(sender: &mut Sender, frame: &ClientFrame) -> Result<()> {
    send_text(sender, serde_json::to_string(frame)?).await
}

/// Sends a frame already written as text (the socket takes the buffer as it is).
pub(crate) async fn send_text(sender: &mut Sender, text: String) -> Result<()> {
    sender.send(WsMessage::text(text)).await?;
    Ok(())
}
