use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use confab_app::Event;
use confab_app::ports::EventPublisher;
use confab_domain::UserId;
use confab_realtime::{Hub, Interest, deliver, deliver_to};
use fred::prelude::{EventInterface, PubsubInterface};
use serde::{Deserialize, Serialize};

use crate::RedisConnection;

/// What travels on a user's channel.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// The instance that published it, which delivered it locally already.
    origin: String,
    event: Event,
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
#[derive(Debug, Clone)]
pub struct RedisBus {
    connection: RedisConnection,
    hub: Arc<Hub>,
}

impl RedisBus {
    /// A bus on `connection` delivering locally through `hub`. Call [`RedisBus::listen`] once
    /// to receive what other instances publish.
    pub fn new(connection: RedisConnection, hub: Arc<Hub>) -> Self {
        Self { connection, hub }
    }

    /// Delivers what other instances publish, until the process ends. A reader that falls
    /// behind loses events, not order: the sockets fill gaps from storage.
    pub fn listen(&self) -> tokio::task::JoinHandle<()> {
        let mut messages = self.connection.subscriber.message_rx();
        let connection = self.connection.clone();
        let hub = self.hub.clone();
        let channel_prefix = connection.key("user:");
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
                let envelope: Envelope = match serde_json::from_str(&text) {
                    Ok(envelope) => envelope,
                    Err(error) => {
                        tracing::warn!(%error, "unreadable event on the Redis bus");
                        continue;
                    }
                };
                if envelope.origin != connection.instance_id() {
                    deliver_to(&hub, &envelope.event, Some(user));
                }
            }
        })
    }
}

#[async_trait]
impl EventPublisher for RedisBus {
    async fn publish(&self, event: Event) {
        deliver(&self.hub, &event);
        let recipients = event.recipients();
        let envelope = Envelope {
            origin: self.connection.instance_id().to_owned(),
            event,
        };
        let payload = match serde_json::to_string(&envelope) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, "could not serialize an event for the bus");
                return;
            }
        };
        let pipeline = self.connection.client.pipeline();
        for user in recipients {
            let queued: Result<(), _> = pipeline
                .publish(user_channel(&self.connection, user), payload.as_str())
                .await;
            if let Err(error) = queued {
                tracing::warn!(%error, "could not queue an event for the bus");
                return;
            }
        }
        // The change is committed and delivered here; other instances' clients recover what
        // a Redis outage drops with `sync`.
        if let Err(error) = pipeline.all::<Vec<fred::types::Value>>().await {
            tracing::warn!(%error, "could not publish an event on the Redis bus");
        }
    }
}
