use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use confab_app::SessionId;
use confab_domain::{ConversationId, Seq, UserId};
use tokio::sync::{Notify, mpsc, watch};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::{Interest, NoInterest};

/// One serialized frame on its way to a socket. Cloning shares the bytes.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The frame.
    pub text: Utf8Bytes,
    /// For `message.new`: the message's place, so the socket keeps each conversation in order
    /// and sends each message once.
    pub position: Option<(ConversationId, Seq)>,
    /// For `conversation.updated`: the conversation's newest seq, so the socket notices a
    /// message it never received.
    pub newest: Option<(ConversationId, Seq)>,
}

/// This instance's connected sockets, by user.
///
/// Only short critical sections run under the lock (no await, no I/O): delivering is a
/// non-blocking `try_send` per socket.
pub struct Hub {
    sockets: RwLock<HashMap<UserId, HashMap<SessionId, SocketHandle>>>,
    /// Flips to true when the server shuts down; every socket watches it.
    closing: watch::Sender<bool>,
    /// Who to tell which users have sockets here (a shared bus subscribes for them).
    interest: Arc<dyn Interest>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("sockets", &self.total_sockets())
            .finish_non_exhaustive()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::with_interest(Arc::new(NoInterest))
    }
}

/// A socket attached with [`Hub::attach`]: the receiving end of what the hub queues for it,
/// with no WebSocket behind it.
///
/// It gets exactly what a connected device of its user would get from this instance, through
/// the same bounded queue, so an in-process consumer (a test that watches deliveries, a
/// benchmark of fan-out, an embedded client) sees the real behaviour, overflow included.
#[derive(Debug)]
pub struct LocalSocket {
    /// The id the hub knows this socket by: the `origin` of events it causes, and what
    /// [`Hub::detach`] takes.
    pub session: SessionId,
    /// The frames queued for this socket, in order. Drain it: once it is full, the next frame
    /// is dropped and `overflow` is notified.
    pub queue: mpsc::Receiver<Arc<Outbound>>,
    /// Notified when a frame did not fit in `queue`; a WebSocket closes at that point and its
    /// client resyncs on reconnect.
    pub overflow: Arc<Notify>,
}

/// The hub's end of one socket.
#[derive(Debug, Clone)]
pub(crate) struct SocketHandle {
    outbound: mpsc::Sender<Arc<Outbound>>,
    /// Rung when the socket fell too far behind; the socket then closes itself.
    overflow: Arc<Notify>,
}

impl SocketHandle {
    pub(crate) fn new(outbound: mpsc::Sender<Arc<Outbound>>, overflow: Arc<Notify>) -> Self {
        Self { outbound, overflow }
    }
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty hub that tells `interest` which users have sockets here.
    pub fn with_interest(interest: Arc<dyn Interest>) -> Self {
        Self {
            sockets: RwLock::default(),
            closing: watch::Sender::new(false),
            interest,
        }
    }

    /// Who hears which users have sockets here.
    pub(crate) fn interest(&self) -> Arc<dyn Interest> {
        self.interest.clone()
    }

    pub(crate) fn register(&self, user: UserId, session: SessionId, handle: SocketHandle) {
        let mut sockets = self
            .sockets
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sockets.entry(user).or_default().insert(session, handle);
    }

    /// Attaches a socket for `user` whose queue holds `capacity` frames, and returns its
    /// receiving end. From now on [`fan_out`](Self::fan_out) (and so [`deliver`](crate::deliver))
    /// reaches it like any WebSocket of `user` on this instance, until
    /// [`detach`](Self::detach).
    ///
    /// It does not tell the hub's [`Interest`]: with a shared bus, call
    /// [`Interest::arrive`] for `user` too if events published by other instances should
    /// reach it.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0, like [`mpsc::channel`].
    pub fn attach(&self, user: UserId, capacity: usize) -> LocalSocket {
        let (outbound, queue) = mpsc::channel(capacity);
        let overflow = Arc::new(Notify::new());
        let session = SessionId::generate();
        self.register(user, session, SocketHandle::new(outbound, overflow.clone()));
        LocalSocket {
            session,
            queue,
            overflow,
        }
    }

    /// Detaches the socket `session` of `user`, attached with [`attach`](Self::attach): the
    /// hub stops queueing frames for it. Detaching a socket that is not attached does nothing.
    pub fn detach(&self, user: UserId, session: SessionId) {
        self.unregister(user, session);
    }

    pub(crate) fn unregister(&self, user: UserId, session: SessionId) {
        let mut sockets = self
            .sockets
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(sessions) = sockets.get_mut(&user) {
            sessions.remove(&session);
            if sessions.is_empty() {
                sockets.remove(&user);
            }
        }
    }

    /// Tells every socket, present and future, to close with 1001 (going away): the server is
    /// shutting down and clients should reconnect, to another instance if there is one.
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// What a socket watches to learn that the server is shutting down.
    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// How many sockets are open on this instance.
    pub fn total_sockets(&self) -> usize {
        let sockets = self
            .sockets
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sockets.values().map(HashMap::len).sum()
    }

    /// How many sockets `user` has open on this instance.
    pub fn socket_count(&self, user: UserId) -> usize {
        let sockets = self
            .sockets
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sockets.get(&user).map_or(0, HashMap::len)
    }

    /// Queues `frame` on every socket of every user in `recipients`, except `skip`. A socket
    /// whose queue is full is told to close: it will recover with `sync` when it reconnects.
    pub fn fan_out(&self, recipients: &[UserId], skip: Option<SessionId>, frame: &Outbound) {
        let sockets = self
            .sockets
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Queues hold a pointer to one shared frame: a queue slot costs 8 bytes rather than a
        // whole frame, which matters for the memory of ten thousand idle sockets.
        let mut shared: Option<Arc<Outbound>> = None;
        for user in recipients {
            let Some(sessions) = sockets.get(user) else {
                continue;
            };
            for (session, handle) in sessions {
                if Some(*session) == skip {
                    continue;
                }
                let frame = shared.get_or_insert_with(|| Arc::new(frame.clone()));
                if let Err(mpsc::error::TrySendError::Full(_)) =
                    handle.outbound.try_send(frame.clone())
                {
                    tracing::warn!(%session, "outbound queue full; disconnecting slow client");
                    handle.overflow.notify_one();
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn text(text: &str) -> Outbound {
        Outbound {
            text: Utf8Bytes::from(text),
            position: None,
            newest: None,
        }
    }

    fn socket(capacity: usize) -> (SocketHandle, mpsc::Receiver<Arc<Outbound>>, Arc<Notify>) {
        let (tx, rx) = mpsc::channel(capacity);
        let overflow = Arc::new(Notify::new());
        (SocketHandle::new(tx, overflow.clone()), rx, overflow)
    }

    #[tokio::test]
    async fn fan_out_reaches_every_socket_of_every_recipient_but_the_origin() {
        let hub = Hub::new();
        let (ann, bob, eve) = (UserId::generate(), UserId::generate(), UserId::generate());
        let (tab1, tab2, bob_tab, eve_tab) = (
            SessionId::generate(),
            SessionId::generate(),
            SessionId::generate(),
            SessionId::generate(),
        );
        let (h1, mut r1, _) = socket(4);
        let (h2, mut r2, _) = socket(4);
        let (h3, mut r3, _) = socket(4);
        let (h4, mut r4, _) = socket(4);
        hub.register(ann, tab1, h1);
        hub.register(ann, tab2, h2);
        hub.register(bob, bob_tab, h3);
        hub.register(eve, eve_tab, h4);
        hub.fan_out(&[ann, bob], Some(tab1), &text("frame"));
        assert!(
            r1.try_recv().is_err(),
            "origin socket gets an ack, not a copy"
        );
        assert_eq!(r2.try_recv().unwrap().text, "frame");
        assert_eq!(r3.try_recv().unwrap().text, "frame");
        assert!(r4.try_recv().is_err(), "non-recipients get nothing");
    }

    #[tokio::test]
    async fn a_full_queue_asks_the_socket_to_close_instead_of_growing() {
        let hub = Hub::new();
        let user = UserId::generate();
        let (handle, mut rx, overflow) = socket(1);
        hub.register(user, SessionId::generate(), handle);
        hub.fan_out(&[user], None, &text("one"));
        hub.fan_out(&[user], None, &text("two"));
        tokio::time::timeout(std::time::Duration::from_secs(1), overflow.notified())
            .await
            .unwrap();
        assert_eq!(rx.try_recv().unwrap().text, "one");
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn an_attached_socket_gets_fan_out_until_detached() {
        let hub = Hub::new();
        let user = UserId::generate();
        let mut socket = hub.attach(user, 4);
        assert_eq!(hub.socket_count(user), 1);
        hub.fan_out(&[user], None, &text("one"));
        assert_eq!(socket.queue.try_recv().unwrap().text, "one");
        hub.detach(user, socket.session);
        assert_eq!(hub.total_sockets(), 0);
        hub.fan_out(&[user], None, &text("two"));
        assert!(socket.queue.try_recv().is_err());
    }

    #[test]
    fn unregistering_the_last_socket_forgets_the_user() {
        let hub = Hub::new();
        let user = UserId::generate();
        let session = SessionId::generate();
        let (handle, _rx, _) = socket(1);
        hub.register(user, session, handle);
        assert_eq!(hub.socket_count(user), 1);
        hub.unregister(user, session);
        assert_eq!(hub.socket_count(user), 0);
        assert!(hub.sockets.read().unwrap().is_empty());
    }
}
