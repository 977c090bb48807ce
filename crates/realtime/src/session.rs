//! One WebSocket: the frames a device sends, the frames it is owed, in order, once each.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse};
use confab_api::ws::{
    AckResult, ClientEnvelope, ClientFrame, PresenceStatus, ServerFrame, SkippedRange, SyncCursor,
    TypingState,
};
use confab_app::{AppError, SendInput, Sent, Services, SessionId};
use confab_domain::{ConversationId, Message, MessageId, Seq, UserId};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage, Utf8Bytes};
use tracing::Instrument;

use crate::deliver::encode;
use crate::hub::SocketHandle;
use crate::sequencer::{Gap, Sequencer};
use crate::{Hub, Outbound};

/// Limits and timings of each socket.
#[derive(Debug, Clone, Copy)]
pub struct SocketConfig {
    /// How often the server pings; a socket silent for two intervals is closed.
    pub heartbeat: Duration,
    /// Frames queued for one socket before it counts as too slow and is closed.
    pub outbound_capacity: usize,
    /// The largest frame a client may send; a larger one closes the socket with 1009.
    pub max_frame_bytes: usize,
    /// How long one write may wait for a client that does not read before it is cut off.
    pub write_timeout: Duration,
    /// A `typing start` not renewed within this time is ended by the server (`stop`).
    pub typing_timeout: Duration,
    /// The most messages per conversation sent in the backlog on connect; the rest is paged.
    pub backlog_per_conversation: u32,
    /// How long a message that arrived early waits for the ones before it before the socket
    /// fetches them from storage.
    pub gap_patience: Duration,
}

impl Default for SocketConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(25),
            outbound_capacity: 1024,
            max_frame_bytes: 64 * 1024,
            write_timeout: Duration::from_secs(10),
            typing_timeout: Duration::from_secs(6),
            backlog_per_conversation: 100,
            gap_patience: Duration::from_millis(500),
        }
    }
}

/// What an idle socket's read buffer starts at, in bytes. A read fills the buffer's whole
/// capacity, so this is what every socket keeps resident; client frames are small, and a larger
/// frame grows the buffer for as long as it takes to read it.
const READ_BUFFER: usize = 1024;

/// Frames a socket collects before it writes them; a flush writes whatever is collected. A
/// burst of frames for one client (a backlog, a gap fill) goes out in few writes.
const WRITE_BUFFER: usize = 8 * 1024;

/// Answers a WebSocket handshake for `user`: the `101 Switching Protocols` response, carrying
/// the [`SocketUpgrade`] that serves the socket once the HTTP server hands over the connection
/// (see `confab_http::serve`).
///
/// The WebSocket is served by tokio-tungstenite on the bare TCP stream rather than by the HTTP
/// server: an HTTP/1 connection keeps an 8 KiB read buffer and an 8 KiB write buffer for its
/// whole life, and most sockets spend theirs idle.
pub fn start_socket(
    req: &HttpRequest,
    user: UserId,
    services: Services,
    hub: Arc<Hub>,
    config: SocketConfig,
) -> Result<HttpResponse, actix_http::ws::HandshakeError> {
    let mut response: HttpResponse = actix_http::ws::handshake(req.head())?
        .finish()
        .map_into_boxed_body()
        .into();
    response.extensions_mut().insert(SocketUpgrade {
        user,
        services,
        hub,
        config,
    });
    Ok(response)
}

/// A socket admitted by its handshake, waiting for its connection: the HTTP server takes it
/// from the `101` response and calls [`SocketUpgrade::serve`] with the TCP stream.
pub struct SocketUpgrade {
    user: UserId,
    services: Services,
    hub: Arc<Hub>,
    config: SocketConfig,
}

impl std::fmt::Debug for SocketUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketUpgrade")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl SocketUpgrade {
    /// Serves the WebSocket on `io`, in the background on `runtime`, until either side leaves.
    /// `read_ahead` is whatever the client sent after its handshake that the HTTP server had
    /// already read.
    ///
    /// The socket moves to `runtime` (the one its storage, Redis and fan-out tasks run on)
    /// rather than staying on the HTTP worker that accepted it: every frame's work then wakes
    /// tasks on its own runtime instead of crossing between runtimes, each crossing a system
    /// call and a thread switch.
    ///
    /// # Errors
    /// If `io` cannot be taken off the runtime it was accepted on; nothing has been registered.
    pub fn serve(
        self,
        runtime: &tokio::runtime::Handle,
        io: TcpStream,
        read_ahead: Vec<u8>,
    ) -> std::io::Result<()> {
        let io = io.into_std()?;
        let Self {
            user,
            services,
            hub,
            config,
        } = self;
        let id = SessionId::generate();
        let (outbound, queue) = mpsc::channel(config.outbound_capacity);
        let overflow = Arc::new(Notify::new());
        // Registered before the backlog is read, so nothing committed from now on is missed: it
        // is either in the backlog or in the queue (or both, and sent once).
        hub.register(user, id, SocketHandle::new(outbound, overflow.clone()));
        let closing = hub.closing();
        let interest = hub.interest();
        let span = tracing::info_span!("socket", session_id = %id, user_id = %user);
        runtime.spawn(
            async move {
                // Registers the stream with this runtime's I/O driver; that cannot fail for a
                // connected socket once the runtime is running.
                let io = match TcpStream::from_std(io) {
                    Ok(io) => io,
                    Err(error) => {
                        tracing::warn!(%error, "could not move the socket to its runtime");
                        hub.unregister(user, id);
                        return;
                    }
                };
                let ws_config = WebSocketConfig::default()
                    .read_buffer_size(READ_BUFFER)
                    .write_buffer_size(WRITE_BUFFER)
                    .max_frame_size(Some(config.max_frame_bytes))
                    .max_message_size(Some(config.max_frame_bytes));
                let ws = WebSocketStream::from_partially_read(
                    io,
                    read_ahead,
                    Role::Server,
                    Some(ws_config),
                )
                .await;
                let socket = Box::new(Socket {
                    id,
                    user,
                    services,
                    config,
                    ws,
                    sequencer: Sequencer::default(),
                    typing: HashMap::new(),
                });
                tracing::info!("socket connected");
                // Subscribed before the backlog is read: whatever is committed elsewhere from
                // now on reaches this socket live, or is in the backlog, or both (and is sent
                // once).
                interest.arrive(user).await;
                let reason = socket.run(queue, overflow, closing).await;
                hub.unregister(user, id);
                interest.leave(user).await;
                tracing::info!(reason, "socket closed");
            }
            .instrument(span),
        );
        Ok(())
    }
}

/// The typing indicator this socket keeps up for one conversation.
#[derive(Debug, Clone, Copy)]
struct Typing {
    forwarded_at: Instant,
    expires_at: Instant,
}

struct Socket {
    id: SessionId,
    user: UserId,
    services: Services,
    config: SocketConfig,
    ws: WebSocketStream<TcpStream>,
    sequencer: Sequencer,
    typing: HashMap<ConversationId, Typing>,
}

/// Why the socket stops.
enum Exit {
    /// The client went away; nothing more can be said.
    ClientLeft,
    /// The client stopped reading; a close frame would not get through either.
    Stalled,
    /// Close with this code.
    Close(CloseCode, &'static str),
}

/// A write did not go through.
type Written = Result<(), Exit>;

/// The most cursors one `sync` may name.
const MAX_SYNC_CURSORS: usize = 1000;
/// The most queued frames written with one flush: each write of a socket is a system call, and
/// a busy conversation queues several frames per socket at once.
const FORWARD_BATCH: usize = 64;
/// Messages fetched from storage per query while syncing.
const SYNC_PAGE: u32 = 200;

impl Socket {
    async fn run(
        mut self: Box<Self>,
        mut queue: mpsc::Receiver<Arc<Outbound>>,
        overflow: Arc<Notify>,
        mut closing: watch::Receiver<bool>,
    ) -> &'static str {
        // The greeting and each answer are boxed: a socket's task is as big as the biggest
        // state it can be in, and most sockets sit idle between frames. Boxed, the rare big
        // states (a send, a sync, the backlog) cost memory only while they run.
        let exit = match Box::pin(self.greet()).await {
            Ok(()) => self.serve(&mut queue, &overflow, &mut closing).await,
            Err(exit) => exit,
        };
        Box::pin(self.leave()).await;
        match exit {
            Exit::ClientLeft => "client left",
            Exit::Stalled => "client stopped reading",
            Exit::Close(code, description) => {
                let frame = CloseFrame {
                    code,
                    reason: Utf8Bytes::from_static(description),
                };
                let _ = tokio::time::timeout(self.config.write_timeout, self.ws.close(Some(frame)))
                    .await;
                description
            }
        }
    }

    /// `hello`; the presence of contacts who are online; every conversation's backlog (seq
    /// above the user's delivery cursor, bounded); `sync.done`.
    async fn greet(&mut self) -> Written {
        let hello = ServerFrame::Hello {
            user_id: self.user.as_uuid(),
            session_id: self.id.as_uuid(),
            heartbeat_interval_ms: u64::try_from(self.config.heartbeat.as_millis())
                .unwrap_or(u64::MAX),
            server_time: chrono::Utc::now(),
        };
        self.send(&hello).await?;
        match self.services.presence.connected(self.user, self.id).await {
            Ok(online) => {
                for contact in online {
                    let frame = ServerFrame::Presence {
                        user_id: contact.as_uuid(),
                        status: PresenceStatus::Online,
                        last_seen_at: None,
                    };
                    self.send(&frame).await?;
                }
            }
            Err(error) => log_failure(&error, "presence on connect"),
        }
        let mut skipped = Vec::new();
        match self
            .services
            .messages
            .backlog(self.user, self.config.backlog_per_conversation)
            .await
        {
            Ok(backlogs) => {
                for backlog in backlogs {
                    let conversation = backlog.conversation_id;
                    let start = backlog
                        .messages
                        .first()
                        .map_or(backlog.last_seq, |m| Seq::new(m.seq.value() - 1));
                    self.sequencer.start_at(conversation, start);
                    if let Some((after, before)) = backlog.skipped {
                        skipped.push(SkippedRange {
                            conversation_id: conversation.as_uuid(),
                            after_seq: after.value(),
                            before_seq: before.value(),
                        });
                    }
                    for message in &backlog.messages {
                        self.offer_message(message).await?;
                    }
                }
            }
            Err(error) => {
                log_failure(&error, "backlog on connect");
                self.send(&ServerFrame::error(None, &error)).await?;
            }
        }
        self.send(&ServerFrame::SyncDone {
            reference: None,
            skipped,
        })
        .await
    }

    async fn serve(
        &mut self,
        queue: &mut mpsc::Receiver<Arc<Outbound>>,
        overflow: &Notify,
        closing: &mut watch::Receiver<bool>,
    ) -> Exit {
        let mut heartbeat = tokio::time::interval(self.config.heartbeat);
        heartbeat.tick().await;
        let mut last_heard = Instant::now();
        // At most one frame's call at a time: frames are answered in the order they came, and
        // the next frame is not read until this one is answered.
        let mut in_flight: Option<InFlight> = None;
        loop {
            let gap_deadline = self.sequencer.next_deadline(self.config.gap_patience);
            let typing_deadline = self.typing.values().map(|t| t.expires_at).min();
            let far = Instant::now() + Duration::from_secs(3600);
            // Biased, in this order: a socket told to close closes at once; frames already
            // queued for the client go out before the answer to a frame read after them, so a
            // client's `ping` is answered only once everything queued before it was sent.
            let step: Written = tokio::select! {
                biased;
                // Mapped to a bool: the borrow `wait_for` returns must not live across the
                // other branches' awaits.
                true = async { closing.wait_for(|closing| *closing).await.is_ok() } => {
                    return Exit::Close(CloseCode::Away, "server shutting down");
                }
                () = overflow.notified() => {
                    return Exit::Close(CloseCode::Policy, "too slow: outbound queue full");
                }
                Some(outbound) = queue.recv() => self.forward(outbound, queue).await,
                answer = async {
                    match in_flight.as_mut() {
                        Some(call) => call.await,
                        None => std::future::pending().await,
                    }
                }, if in_flight.is_some() => {
                    in_flight = None;
                    // What the client sent while the call ran is read from now on.
                    last_heard = Instant::now();
                    Box::pin(self.reply(answer)).await
                }
                incoming = self.ws.next(), if in_flight.is_none() => {
                    let message = match incoming {
                        None => return Exit::ClientLeft,
                        Some(Ok(message)) => message,
                        Some(Err(error)) => return Self::read_failed(error),
                    };
                    last_heard = Instant::now();
                    match message {
                        WsMessage::Text(text) => match Box::pin(self.answer(&text)).await {
                            Ok(call) => {
                                in_flight = call;
                                Ok(())
                            }
                            Err(exit) => Err(exit),
                        },
                        WsMessage::Binary(_) => {
                            let reply = ServerFrame::from(confab_api::ws::FrameError {
                                reference: None,
                                code: confab_api::ErrorCode::BadRequest,
                                message: "binary frames are not supported; send JSON text frames".into(),
                            });
                            self.send(&reply).await
                        }
                        // tungstenite queues the pong itself; the next read sends it.
                        WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => Ok(()),
                        WsMessage::Close(_) => return Exit::Close(CloseCode::Normal, "client closed"),
                    }
                }
                _ = heartbeat.tick() => {
                    // While a call is in flight the socket does not read, so it cannot have
                    // heard the client: silence then is not the client's.
                    if in_flight.is_none() && last_heard.elapsed() >= self.config.heartbeat * 2 {
                        return Exit::Close(CloseCode::Policy, "heartbeat timeout");
                    }
                    self.flushed(vec![WsMessage::Ping(Default::default())]).await
                }
                () = tokio::time::sleep_until(gap_deadline.unwrap_or(far)), if gap_deadline.is_some() => {
                    Box::pin(self.fill_gaps()).await
                }
                () = tokio::time::sleep_until(typing_deadline.unwrap_or(far)), if typing_deadline.is_some() => {
                    self.expire_typing().await;
                    Ok(())
                }
            };
            if let Err(exit) = step {
                return exit;
            }
        }
    }

    /// Frames fanned out to this socket: `first` and whatever else is queued behind it (up to
    /// [`FORWARD_BATCH`]), written together with one flush, as the queue's order allows.
    async fn forward(
        &mut self,
        first: Arc<Outbound>,
        queue: &mut mpsc::Receiver<Arc<Outbound>>,
    ) -> Written {
        let mut frames = self.ready(&first);
        for _ in 1..FORWARD_BATCH {
            match queue.try_recv() {
                Ok(next) => frames.extend(self.ready(&next)),
                Err(_) => break,
            }
        }
        self.write_all(frames).await
    }

    /// What a fanned-out frame lets this socket send now: messages go through the sequencer,
    /// the rest as is.
    fn ready(&mut self, outbound: &Outbound) -> Vec<Utf8Bytes> {
        if let Some((conversation, newest)) = outbound.newest {
            self.sequencer
                .heard_of(conversation, newest, Instant::now());
        }
        match outbound.position {
            Some((conversation, seq)) => {
                self.sequencer
                    .offer(conversation, seq, outbound.text.clone(), Instant::now())
            }
            None => vec![outbound.text.clone()],
        }
    }

    /// Reads one text frame. What this socket answers from its own state (`ping`, `typing`,
    /// `sync`, a frame it cannot read) is answered now. What needs the use cases is returned as
    /// an [`InFlight`] call, which runs while the socket goes on forwarding frames to its
    /// client: a slow send must not hold up the messages that arrive meanwhile.
    async fn answer(&mut self, text: &str) -> Result<Option<InFlight>, Exit> {
        let envelope = match ClientEnvelope::parse(text) {
            Ok(envelope) => envelope,
            Err(error) => return self.send(&error.into()).await.map(|()| None),
        };
        let reference = envelope.reference;
        let user = self.user;
        let id = self.id;
        let services = self.services.clone();
        let call: InFlight = match envelope.frame {
            ClientFrame::Ping {} => {
                return self
                    .send(&ServerFrame::Pong { reference })
                    .await
                    .map(|()| None);
            }
            ClientFrame::Typing {
                conversation_id,
                state,
            } => {
                return match self
                    .typing(ConversationId::from_uuid(conversation_id), state)
                    .await
                {
                    Ok(()) => Ok(None),
                    Err(error) => self.fail(reference, &error).await.map(|()| None),
                };
            }
            ClientFrame::Sync { cursors } => {
                return self.sync(reference, cursors).await.map(|()| None);
            }
            ClientFrame::MessageSend {
                conversation_id,
                body,
                client_msg_id,
            } => {
                let conversation = ConversationId::from_uuid(conversation_id);
                // Sending ends typing, as it does in every chat app.
                let was_typing = self.typing.remove(&conversation).is_some();
                Box::pin(async move {
                    if was_typing {
                        let _ = services
                            .conversations
                            .typing(user, conversation, false)
                            .await;
                    }
                    let input = SendInput {
                        conversation_id: conversation,
                        body,
                        client_msg_id,
                    };
                    Answer::Sent {
                        reference,
                        result: services.messages.send(user, input, Some(id)).await,
                    }
                })
            }
            ClientFrame::MessageRead {
                conversation_id,
                seq,
            } => Box::pin(async move {
                let result = services
                    .conversations
                    .mark_read(user, ConversationId::from_uuid(conversation_id), seq)
                    .await
                    .map(|state| cursors(conversation_id, state));
                Answer::Done { reference, result }
            }),
            ClientFrame::Delivered {
                conversation_id,
                seq,
            } => Box::pin(async move {
                let result = services
                    .conversations
                    .mark_delivered(user, ConversationId::from_uuid(conversation_id), seq)
                    .await
                    .map(|state| cursors(conversation_id, state));
                Answer::Done { reference, result }
            }),
            ClientFrame::MessageEdit { message_id, body } => Box::pin(async move {
                let result = services
                    .messages
                    .edit(user, MessageId::from_uuid(message_id), &body, None)
                    .await
                    .map(|message| AckResult::Sent {
                        message: (&message).into(),
                    });
                Answer::Done { reference, result }
            }),
            ClientFrame::MessageDelete { message_id } => Box::pin(async move {
                let result = services
                    .messages
                    .delete(user, MessageId::from_uuid(message_id), None)
                    .await
                    .map(|message| AckResult::Sent {
                        message: (&message).into(),
                    });
                Answer::Done { reference, result }
            }),
        };
        Ok(Some(call))
    }

    /// Replies to a frame whose use-case call has finished: an `ack` or an `error`.
    async fn reply(&mut self, answer: Answer) -> Written {
        match answer {
            Answer::Sent {
                reference,
                result: Ok(sent),
            } => {
                let message = &sent.message;
                let Some(ack) = encode(&ServerFrame::Ack {
                    reference,
                    result: AckResult::Sent {
                        message: message.into(),
                    },
                }) else {
                    return Ok(());
                };
                // The ack stands in for this socket's copy of the message: it takes the
                // message's place in the conversation's order. A resend's ack goes now, and so
                // does an ack whose place a gap fill already took (the send was slow).
                let passed = self
                    .sequencer
                    .position(message.conversation_id)
                    .is_some_and(|(_, next)| next >= message.seq);
                if sent.created && !passed {
                    let ready = self.sequencer.offer(
                        message.conversation_id,
                        message.seq,
                        ack,
                        Instant::now(),
                    );
                    return self.write_all(ready).await;
                }
                self.write(ack).await
            }
            Answer::Sent {
                reference,
                result: Err(error),
            }
            | Answer::Done {
                reference,
                result: Err(error),
            } => self.fail(reference, &error).await,
            Answer::Done {
                reference,
                result: Ok(result),
            } => self.send(&ServerFrame::Ack { reference, result }).await,
        }
    }

    /// Every message above each cursor, in order, each once on this socket, then `sync.done`.
    async fn sync(&mut self, reference: Option<String>, cursors: Vec<SyncCursor>) -> Written {
        if cursors.len() > MAX_SYNC_CURSORS {
            let error = AppError::from(confab_domain::ValidationError::new(
                "cursors",
                format!("at most {MAX_SYNC_CURSORS} per sync"),
            ));
            return self.fail(reference, &error).await;
        }
        for cursor in cursors {
            let conversation = ConversationId::from_uuid(cursor.conversation_id);
            let held = Seq::new(cursor.seq);
            if let Err(error) = self.sync_one(conversation, held).await {
                match error {
                    SyncError::App(error) => self.fail(reference.clone(), &error).await?,
                    SyncError::Write(exit) => return Err(exit),
                }
            }
        }
        self.send(&ServerFrame::SyncDone {
            reference,
            skipped: Vec::new(),
        })
        .await
    }

    async fn sync_one(&mut self, conversation: ConversationId, held: Seq) -> Result<(), SyncError> {
        let (origin, next) = match self.sequencer.position(conversation) {
            Some(position) => position,
            None => {
                // Not yet followed (the check of membership comes with the first page).
                self.sequencer.start_at(conversation, held);
                (held, held)
            }
        };
        // What the client lacks below the range this socket already sent: straight out,
        // ascending (the client asked for it).
        if held < origin {
            let mut after = held;
            loop {
                let page = self
                    .services
                    .messages
                    .since(self.user, conversation, after, SYNC_PAGE)
                    .await?;
                let mut reached_origin = false;
                for message in page.messages.iter() {
                    if message.seq > origin {
                        reached_origin = true;
                        break;
                    }
                    self.send(&ServerFrame::MessageNew {
                        message: message.into(),
                    })
                    .await?;
                    after = message.seq;
                }
                if reached_origin || !page.has_more || after >= origin {
                    break;
                }
            }
            self.sequencer.extend_back(conversation, held);
        }
        // Everything above what the socket sent, through the sequencer (so that what the live
        // queue also brings goes out once).
        let mut after = next.max(held);
        loop {
            let page = self
                .services
                .messages
                .since(self.user, conversation, after, SYNC_PAGE)
                .await?;
            for message in &page.messages {
                self.offer_message(message).await?;
                after = message.seq;
            }
            if !page.has_more {
                break;
            }
        }
        Ok(())
    }

    /// Fills gaps that stayed open too long from storage, then lets through what waited.
    async fn fill_gaps(&mut self) -> Written {
        for gap in self
            .sequencer
            .overdue(Instant::now(), self.config.gap_patience)
        {
            match self.fill_gap(gap).await {
                Ok(()) => {
                    let ready = self.sequencer.skip_gap(gap, Instant::now());
                    self.write_all(ready).await?;
                }
                Err(SyncError::App(error)) => {
                    log_failure(&error, "filling a gap");
                    self.sequencer
                        .retry_later(gap.conversation_id, Instant::now());
                }
                Err(SyncError::Write(exit)) => return Err(exit),
            }
        }
        Ok(())
    }

    /// Offers what storage holds from the gap up to the newest seq the socket knows of, a page
    /// at a time: one pass fills every gap of the conversation that storage can fill. It reads
    /// to the end on purpose: whatever of the gap is still missing afterwards is given up on.
    async fn fill_gap(&mut self, gap: Gap) -> Result<(), SyncError> {
        let mut after = gap.after;
        while after < gap.until {
            let wanted = u32::try_from(gap.until.value() - after.value()).unwrap_or(u32::MAX);
            let page = self
                .services
                .messages
                .since(self.user, gap.conversation_id, after, wanted)
                .await
                .map_err(SyncError::App)?;
            let Some(last) = page.messages.last().map(|m| m.seq) else {
                break;
            };
            for message in &page.messages {
                self.offer_message(message)
                    .await
                    .map_err(SyncError::Write)?;
            }
            if !page.has_more {
                break;
            }
            after = last;
        }
        Ok(())
    }

    /// Starts, renews or ends this socket's typing indicator in a conversation. Renewals are
    /// forwarded at most every half timeout, so a client may send `start` on every keystroke.
    async fn typing(
        &mut self,
        conversation: ConversationId,
        state: TypingState,
    ) -> Result<(), AppError> {
        let now = Instant::now();
        match state {
            TypingState::Start => {
                let renew_after = self.config.typing_timeout / 2;
                let previous = self.typing.get(&conversation).copied();
                let forward =
                    previous.is_none_or(|t| now.duration_since(t.forwarded_at) >= renew_after);
                if forward {
                    self.services
                        .conversations
                        .typing(self.user, conversation, true)
                        .await?;
                }
                let forwarded_at = match previous {
                    Some(t) if !forward => t.forwarded_at,
                    _ => now,
                };
                self.typing.insert(
                    conversation,
                    Typing {
                        forwarded_at,
                        expires_at: now + self.config.typing_timeout,
                    },
                );
            }
            TypingState::Stop => {
                if self.typing.remove(&conversation).is_some() {
                    self.services
                        .conversations
                        .typing(self.user, conversation, false)
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn expire_typing(&mut self) {
        let now = Instant::now();
        let expired: Vec<ConversationId> = self
            .typing
            .iter()
            .filter(|(_, t)| t.expires_at <= now)
            .map(|(c, _)| *c)
            .collect();
        for conversation in expired {
            self.typing.remove(&conversation);
            if let Err(error) = self
                .services
                .conversations
                .typing(self.user, conversation, false)
                .await
            {
                log_failure(&error, "ending typing");
            }
        }
    }

    /// The device is gone: its typing indicators end, and the user may go offline.
    async fn leave(&mut self) {
        for (conversation, _) in std::mem::take(&mut self.typing) {
            let _ = self
                .services
                .conversations
                .typing(self.user, conversation, false)
                .await;
        }
        if let Err(error) = self
            .services
            .presence
            .disconnected(self.user, self.id)
            .await
        {
            log_failure(&error, "presence on disconnect");
        }
    }

    /// A stored message for this socket, through the sequencer.
    async fn offer_message(&mut self, message: &Message) -> Written {
        let Some(text) = encode(&ServerFrame::MessageNew {
            message: message.into(),
        }) else {
            return Ok(());
        };
        let ready =
            self.sequencer
                .offer(message.conversation_id, message.seq, text, Instant::now());
        self.write_all(ready).await
    }

    async fn fail(&mut self, reference: Option<String>, error: &AppError) -> Written {
        log_failure(error, "frame");
        self.send(&ServerFrame::error(reference, error)).await
    }

    async fn send(&mut self, frame: &ServerFrame) -> Written {
        match encode(frame) {
            Some(text) => self.write(text).await,
            None => Ok(()),
        }
    }

    async fn write_all(&mut self, frames: Vec<Utf8Bytes>) -> Written {
        if frames.is_empty() {
            return Ok(());
        }
        self.flushed(frames.into_iter().map(WsMessage::Text).collect())
            .await
    }

    async fn write(&mut self, text: Utf8Bytes) -> Written {
        self.flushed(vec![WsMessage::Text(text)]).await
    }

    /// Writes `messages` and flushes them, within the write timeout: a client that does not
    /// read is cut off rather than left holding this task and its queue.
    async fn flushed(&mut self, messages: Vec<WsMessage>) -> Written {
        let ws = &mut self.ws;
        let written = tokio::time::timeout(self.config.write_timeout, async move {
            for message in messages {
                ws.feed(message).await?;
            }
            ws.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Exit::ClientLeft),
            Err(_) => Err(Exit::Stalled),
        }
    }

    /// How a failed read ends the socket.
    fn read_failed(error: tungstenite::Error) -> Exit {
        use tungstenite::error::{CapacityError, Error};
        match error {
            Error::Capacity(CapacityError::MessageTooLong { .. }) => {
                Exit::Close(CloseCode::Size, "frame too large")
            }
            Error::Protocol(_) | Error::Capacity(_) | Error::Utf8(_) => {
                tracing::debug!(%error, "websocket protocol error");
                Exit::Close(CloseCode::Protocol, "protocol error")
            }
            _ => Exit::ClientLeft,
        }
    }
}

/// A frame's use-case call, running while the socket forwards what arrives meanwhile.
type InFlight = std::pin::Pin<Box<dyn Future<Output = Answer> + Send>>;

/// What a frame's use-case call came to, for [`Socket::reply`].
enum Answer {
    /// `message.send`: the ack takes the message's place in its conversation's order.
    Sent {
        reference: Option<String>,
        result: Result<Sent, AppError>,
    },
    /// Anything else: acknowledged as it finishes.
    Done {
        reference: Option<String>,
        result: Result<AckResult, AppError>,
    },
}

/// A `sync` step failed: a use-case error (answered, then the sync goes on) or a write
/// (the socket is done).
enum SyncError {
    App(AppError),
    Write(Exit),
}

impl From<AppError> for SyncError {
    fn from(error: AppError) -> Self {
        Self::App(error)
    }
}

impl From<Exit> for SyncError {
    fn from(exit: Exit) -> Self {
        Self::Write(exit)
    }
}

fn cursors(conversation_id: uuid::Uuid, state: confab_app::ReadState) -> AckResult {
    AckResult::Read {
        conversation_id,
        read_seq: state.read_seq.value(),
        delivered_seq: state.delivered_seq.value(),
        unread_count: state.unread_count,
    }
}

fn log_failure(error: &AppError, doing: &str) {
    if let AppError::Internal(cause) = error {
        tracing::error!(error = %cause, doing, "socket operation failed");
    }
}
