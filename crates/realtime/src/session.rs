use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{
    AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError, Session,
};
use bytestring::ByteString;
use confab_api::ErrorBody;
use confab_api::ws::{AckResult, ClientEnvelope, ClientFrame, ServerFrame};
use confab_app::{AppError, SendInput, Services, SessionId};
use confab_domain::{ConversationId, UserId};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::Hub;
use crate::hub::SocketHandle;

/// Limits of each socket.
#[derive(Debug, Clone, Copy)]
pub struct SocketConfig {
    /// How often the server pings; a socket silent for two intervals is closed.
    pub heartbeat: Duration,
    /// Frames queued for one socket before it counts as too slow and is closed.
    pub outbound_capacity: usize,
    /// The largest frame a client may send; a larger one closes the socket with 1009.
    pub max_frame_bytes: usize,
}

impl Default for SocketConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(25),
            outbound_capacity: 256,
            max_frame_bytes: 64 * 1024,
        }
    }
}

/// Upgrades an authenticated request to a WebSocket for `user` and serves it in the background
/// until either side leaves.
pub fn start_socket(
    req: &HttpRequest,
    body: web::Payload,
    user: UserId,
    services: Services,
    hub: Arc<Hub>,
    config: SocketConfig,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, session, stream) = actix_ws::handle(req, body)?;
    let stream = stream
        .max_frame_size(config.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(config.max_frame_bytes);
    let id = SessionId::generate();
    let (outbound, queue) = mpsc::channel(config.outbound_capacity);
    let overflow = Arc::new(Notify::new());
    // Registered before the upgrade completes, so nothing committed from now on is missed.
    hub.register(user, id, SocketHandle::new(outbound, overflow.clone()));
    let closing = hub.closing();
    let socket = Socket {
        id,
        user,
        services,
        config,
        session,
    };
    let span = tracing::info_span!("socket", session_id = %id, user_id = %user);
    actix_web::rt::spawn(
        async move {
            tracing::info!("socket connected");
            let reason = socket.run(stream, queue, overflow, closing).await;
            hub.unregister(user, id);
            tracing::info!(reason, "socket closed");
        }
        .instrument(span),
    );
    Ok(response)
}

struct Socket {
    id: SessionId,
    user: UserId,
    services: Services,
    config: SocketConfig,
    session: Session,
}

/// Why the loop stopped and how to tell the client.
enum Exit {
    ClientLeft,
    Close(CloseCode, &'static str),
}

impl Socket {
    async fn run(
        mut self,
        mut stream: AggregatedMessageStream,
        mut queue: mpsc::Receiver<ByteString>,
        overflow: Arc<Notify>,
        mut closing: watch::Receiver<bool>,
    ) -> &'static str {
        let hello = ServerFrame::Hello {
            user_id: self.user.as_uuid(),
            session_id: self.id.as_uuid(),
            heartbeat_interval_ms: u64::try_from(self.config.heartbeat.as_millis())
                .unwrap_or(u64::MAX),
            server_time: chrono::Utc::now(),
        };
        let exit = if self.send(&hello).await.is_err() {
            Exit::ClientLeft
        } else {
            self.serve(&mut stream, &mut queue, &overflow, &mut closing)
                .await
        };
        match exit {
            Exit::ClientLeft => "client left",
            Exit::Close(code, description) => {
                let reason = CloseReason {
                    code,
                    description: Some(description.to_owned()),
                };
                let _ = self.session.close(Some(reason)).await;
                description
            }
        }
    }

    async fn serve(
        &mut self,
        stream: &mut AggregatedMessageStream,
        queue: &mut mpsc::Receiver<ByteString>,
        overflow: &Notify,
        closing: &mut watch::Receiver<bool>,
    ) -> Exit {
        let mut heartbeat = tokio::time::interval(self.config.heartbeat);
        heartbeat.tick().await;
        let mut last_heard = Instant::now();
        loop {
            // Biased, in this order: a socket told to close closes at once; frames already
            // queued for the client go out before the answer to a frame read after them, so a
            // client's `ping` is answered only once everything queued before it was sent.
            tokio::select! {
                biased;
                Ok(_) = closing.wait_for(|closing| *closing) => {
                    return Exit::Close(CloseCode::Away, "server shutting down");
                }
                () = overflow.notified() => {
                    return Exit::Close(CloseCode::Policy, "too slow: outbound queue full");
                }
                Some(frame) = queue.recv() => {
                    if self.session.text(frame).await.is_err() {
                        return Exit::ClientLeft;
                    }
                }
                incoming = stream.recv() => {
                    let message = match incoming {
                        None => return Exit::ClientLeft,
                        Some(Ok(message)) => message,
                        Some(Err(ProtocolError::Overflow)) => return Exit::Close(CloseCode::Size, "frame too large"),
                        Some(Err(error)) => {
                            tracing::debug!(%error, "websocket protocol error");
                            return Exit::Close(CloseCode::Protocol, "protocol error");
                        }
                    };
                    last_heard = Instant::now();
                    let sent = match message {
                        AggregatedMessage::Text(text) => {
                            let reply = self.answer(&text).await;
                            self.send(&reply).await
                        }
                        AggregatedMessage::Binary(_) => {
                            let reply = ServerFrame::Error {
                                reference: None,
                                code: confab_api::ErrorCode::BadRequest,
                                message: "binary frames are not supported; send JSON text frames".into(),
                                details: None,
                            };
                            self.send(&reply).await
                        }
                        AggregatedMessage::Ping(bytes) => self.session.pong(&bytes).await,
                        AggregatedMessage::Pong(_) => Ok(()),
                        AggregatedMessage::Close(_) => return Exit::Close(CloseCode::Normal, "client closed"),
                    };
                    if sent.is_err() {
                        return Exit::ClientLeft;
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() >= self.config.heartbeat * 2 {
                        return Exit::Close(CloseCode::Policy, "heartbeat timeout");
                    }
                    if self.session.ping(b"").await.is_err() {
                        return Exit::ClientLeft;
                    }
                }
            }
        }
    }

    /// The reply to one text frame: an `ack`, a `pong`, or an `error`; never a dropped socket.
    async fn answer(&self, text: &str) -> ServerFrame {
        let envelope = match ClientEnvelope::parse(text) {
            Ok(envelope) => envelope,
            Err(error) => return error.into(),
        };
        let reference = envelope.reference;
        let result = match envelope.frame {
            ClientFrame::Ping {} => return ServerFrame::Pong { reference },
            ClientFrame::MessageSend {
                conversation_id,
                body,
                client_msg_id,
            } => {
                let input = SendInput {
                    conversation_id: ConversationId::from_uuid(conversation_id),
                    body,
                    client_msg_id,
                };
                self.services
                    .messages
                    .send(self.user, input, Some(self.id))
                    .await
                    .map(|sent| AckResult::Sent {
                        message: (&sent.message).into(),
                    })
            }
            ClientFrame::MessageRead {
                conversation_id,
                seq,
            } => self
                .services
                .conversations
                .mark_read(self.user, ConversationId::from_uuid(conversation_id), seq)
                .await
                .map(|state| AckResult::Read {
                    conversation_id,
                    read_seq: state.read_seq.value(),
                    unread_count: state.unread_count,
                }),
        };
        match result {
            Ok(result) => ServerFrame::Ack { reference, result },
            Err(error) => {
                if let AppError::Internal(cause) = &error {
                    tracing::error!(error = %cause, "frame failed");
                }
                ServerFrame::error(reference, ErrorBody::from_app_error(&error))
            }
        }
    }

    async fn send(&mut self, frame: &ServerFrame) -> Result<(), actix_ws::Closed> {
        match serde_json::to_string(frame) {
            Ok(text) => self.session.text(text).await,
            Err(error) => {
                tracing::error!(%error, "could not serialize a frame");
                Ok(())
            }
        }
    }
}
