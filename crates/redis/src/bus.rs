use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use confab_app::Event;
use confab_app::ports::EventPublisher;
use confab_domain::UserId;
use confab_realtime::{Hub, Interest, deliver, deliver_to};
use fred::prelude::{EventInterface, PubsubInterface};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::RedisConnection;

/// What travels on a user's channel: the event's copy for that channel (see
/// [`Event::into_channel_copies`]).
#[derive(Debug, Serialize, Deserialize)]
struct Envelope<O = String, E = Event> {
    /// The instance that published it, which delivered it locally already.
    origin: O,
    event: E,
}

impl Envelope {
    /// How the serialized envelopes of `origin` begin: `origin` is the first field.
    fn prefix_of(origin: &str) -> String {
        let origin = serde_json::to_string(origin).unwrap_or_default();
        format!("{{\"origin\":{origin},")
    }
}

fn user_channel(connection: &RedisConnection, user: UserId) -> String {
    connection.key(&format!("user:{user}"))
}

/// Keeps this instance subscribed to exactly the users it has sockets for.
pub struct RedisSubscriptions {
    connection: RedisConnection,
    counts: Mutex<HashMap<UserId, usize>>,
    /// Serializes subscribe and unsubscribe calls, so that a user who leaves and comes back at
    /// once ends subscribed.
    changes: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RedisSubscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSubscriptions").finish_non_exhaustive()
    }
}

impl RedisSubscriptions {
    /// Subscriptions on `connection`.
    pub fn new(connection: RedisConnection) -> Self {
        Self {
            connection,
            counts: Mutex::default(),
            changes: tokio::sync::Mutex::new(()),
        }
    }

    fn count(&self, user: UserId, change: isize) -> (usize, usize) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = counts.get(&user).copied().unwrap_or(0);
        let after = before.saturating_add_signed(change);
        if after == 0 {
            counts.remove(&user);
        } else {
            counts.insert(user, after);
        }
        (before, after)
    }

    fn wanted(&self, user: UserId) -> bool {
        let counts = self
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        counts.contains_key(&user)
    }
}

#[async_trait]
impl Interest for RedisSubscriptions {
    async fn arrive(&self, user: UserId) {
        let (before, _) = self.count(user, 1);
        if before > 0 {
            return;
        }
        let _change = self.changes.lock().await;
        if self.wanted(user)
            && let Err(error) = self
                .connection
                .subscriber
                .subscribe(user_channel(&self.connection, user))
                .await
        {
            // Live events from other instances will not reach this user's socket until the
            // subscription is restored; the socket still fills gaps from storage and `sync`.
            tracing::warn!(%error, %user, "could not subscribe to the user's channel");
        }
    }

    async fn leave(&self, user: UserId) {
        let (_, after) = self.count(user, -1);
        if after > 0 {
            return;
        }
        let _change = self.changes.lock().await;
        if !self.wanted(user)
            && let Err(error) = self
                .connection
                .subscriber
                .unsubscribe(user_channel(&self.connection, user))
                .await
        {
            tracing::warn!(%error, %user, "could not unsubscribe from the user's channel");
        }
    }
}

/// Fan-out across instances: each event is delivered to this instance's sockets at once, then
/// published, serialized once, on the channel of each recipient. Other instances deliver what
/// arrives on a channel to that user's sockets there.
///
/// Publishing to Redis happens off the caller's path: [`EventPublisher::publish`] delivers
/// locally, hands the event to one publisher task and returns, so a sender's ack never waits
/// for a Redis round trip, nor for the event's copies to be serialized (a copy per member for
/// `conversation.updated`). The task sends whatever has queued up in one pipeline, in order,
/// so under load many events share one write.
#[derive(Debug, Clone)]
pub struct RedisBus {
    connection: RedisConnection,
    hub: Arc<Hub>,
    outgoing: mpsc::Sender<Event>,
}

/// Events waiting for the publisher task. Beyond this (Redis unreachable for a while) new
/// events are dropped from the bus, not from storage: other instances' clients recover them
/// with gap filling and `sync`, and senders are never held up.
const OUTGOING_CAPACITY: usize = 65_536;

/// The most events sent in one pipeline.
const BATCH: usize = 512;

impl RedisBus {
    /// A bus on `connection` delivering locally through `hub`. Call [`RedisBus::listen`] once
    /// to receive what other instances publish. Must be called within a Tokio runtime: it
    /// starts the publisher task.
    pub fn new(connection: RedisConnection, hub: Arc<Hub>) -> Self {
        let (outgoing, queue) = mpsc::channel(OUTGOING_CAPACITY);
        tokio::spawn(publish_queued(connection.clone(), queue));
        Self {
            connection,
            hub,
            outgoing,
        }
    }

    /// Delivers what other instances publish, until the process ends. A reader that falls
    /// behind loses events, not order: the sockets fill gaps from storage.
    pub fn listen(&self) -> tokio::task::JoinHandle<()> {
        let mut messages = self.connection.subscriber.message_rx();
        let connection = self.connection.clone();
        let hub = self.hub.clone();
        let channel_prefix = connection.key("user:");
        let own_prefix = Envelope::prefix_of(connection.instance_id());
        tokio::spawn(async move {
            loop {
                let message = match messages.recv().await {
                    Ok(message) => message,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "fell behind the Redis bus; sockets will fill the gaps from storage"
                        );
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                let Some(user) = message
                    .channel
                    .strip_prefix(channel_prefix.as_str())
                    .and_then(|id| id.parse().ok())
                else {
                    continue;
                };
                let Some(text) = message.value.as_str() else {
                    continue;
                };
                // This instance delivered its own events when it published them; it hears
                // them back for every local recipient, so it skips them before parsing.
                if text.starts_with(own_prefix.as_str()) {
                    continue;
                }
                let envelope: Envelope = match serde_json::from_str(&text) {
                    Ok(envelope) => envelope,
                    Err(error) => {
                        tracing::warn!(%error, "unreadable event on the Redis bus");
                        continue;
                    }
                };
                if envelope.origin != connection.instance_id() {
                    deliver_to(&hub, &envelope.event.addressed_to(user), Some(user));
                }
            }
        })
    }
}

/// Sends queued events to Redis, in order, as many as have queued up per pipeline: each
/// event's copies (see [`Event::into_channel_copies`]) on the channels of their recipients.
async fn publish_queued(connection: RedisConnection, mut queue: mpsc::Receiver<Event>) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let pipeline = connection.client.pipeline();
        let mut queued = true;
        for (recipients, copy) in batch.drain(..).flat_map(Event::into_channel_copies) {
            let envelope = Envelope {
                origin: connection.instance_id(),
                event: &copy,
            };
            let payload = match serde_json::to_string(&envelope) {
                Ok(payload) => payload,
                Err(error) => {
                    tracing::error!(%error, "could not serialize an event for the bus");
                    continue;
                }
            };
            for user in recipients {
                let result: Result<(), _> = pipeline
                    .publish(user_channel(&connection, user), payload.as_str())
                    .await;
                if let Err(error) = result {
                    tracing::warn!(%error, "could not queue an event for the bus");
                    queued = false;
                }
            }
        }
        // The changes are committed and delivered here; other instances' clients recover
        // what a Redis outage drops with gap filling and `sync`.
        if queued && let Err(error) = pipeline.all::<Vec<fred::types::Value>>().await {
            tracing::warn!(%error, "could not publish events on the Redis bus");
        }
    }
}

#[async_trait]
impl EventPublisher for RedisBus {
    async fn publish(&self, event: Event) {
        deliver(&self.hub, &event);
        if let Err(error) = self.outgoing.try_send(event) {
            tracing::warn!(%error, "the Redis bus is backed up; an event is not published");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_domain::ConversationId;

    fn envelope(origin: &str) -> String {
        serde_json::to_string(&Envelope {
            origin: origin.to_owned(),
            event: Event::Typing {
                conversation_id: ConversationId::generate(),
                user_id: UserId::generate(),
                typing: true,
                recipients: vec![UserId::generate()],
            },
        })
        .unwrap()
    }

    #[test]
    fn an_instance_recognises_its_own_envelopes_and_only_those() {
        let own = Envelope::prefix_of("a");
        assert!(envelope("a").starts_with(&own));
        assert!(!envelope("ab").starts_with(&own));
        assert!(!envelope("b").starts_with(&own));
        // Ids that need escaping are compared escaped.
        assert!(envelope("i\"d").starts_with(&Envelope::prefix_of("i\"d")));
    }
}
