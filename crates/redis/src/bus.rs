use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use confab_app::Event;
use confab_app::ports::EventPublisher;
use confab_domain::UserId;
use confab_realtime::{Hub, deliver};
use fred::prelude::{EventInterface, PubsubInterface};
use fred::types::scripts::Script;
use tokio::sync::mpsc;

use crate::RedisConnection;
use crate::deadline::now_ms;
use crate::routes::route_prefix;

/// The other live instances that hold sockets of some users: for each user that has any, the
/// user and the instance, flattened. The publishing instance is left out: it delivered to its
/// own sockets already.
const ROUTES: &str = r"
local routes = {}
for i = 4, #ARGV do
  local instances = redis.call('ZRANGEBYSCORE', ARGV[3] .. ARGV[i], '(' .. ARGV[1], '+inf')
  for _, instance in ipairs(instances) do
    if instance ~= ARGV[2] then
      routes[#routes + 1] = ARGV[i]
      routes[#routes + 1] = instance
    end
  end
end
return routes
";

/// The channel an instance listens on.
fn instance_channel(connection: &RedisConnection, instance: &str) -> String {
    connection.key(&format!("instance:{instance}"))
}

/// Fan-out across instances: each event is delivered to this instance's sockets at once, then
/// sent to the other instances that hold sockets of its recipients, found in their routes
/// ([`RedisRoutes`](crate::RedisRoutes)). Each instance listens on a channel of its own and
/// gets one copy of each event, addressed to its own recipients only.
///
/// An instance never hears its own events back, and a message to a group costs one publish
/// per other instance holding members' sockets, not one per member. Routes are read after the
/// event's change is committed, and an instance adds itself to a user's routes before a new
/// socket reads its backlog: whatever that backlog misses is published to it.
///
/// Publishing happens off the caller's path: [`EventPublisher::publish`] delivers locally,
/// hands the event to one publisher task and returns, so a sender's ack never waits for
/// Redis. The task handles whatever has queued up together: one route lookup for all of its
/// recipients, then one pipeline of publishes, in order.
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

/// The most events handled together.
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

    /// Subscribes to this instance's channel, then delivers what other instances publish
    /// there until the process ends. Fails when the subscription cannot be made now; it is
    /// restored after any later reconnect. A reader that falls behind loses events, not
    /// order: the sockets fill gaps from storage.
    pub async fn listen(&self) -> Result<tokio::task::JoinHandle<()>, fred::error::Error> {
        let mut messages = self.connection.subscriber.message_rx();
        let channel = instance_channel(&self.connection, self.connection.instance_id());
        self.connection
            .subscriber
            .subscribe(channel.as_str())
            .await?;
        let hub = self.hub.clone();
        Ok(tokio::spawn(async move {
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
                if *message.channel != *channel {
                    continue;
                }
                let Some(text) = message.value.as_str() else {
                    continue;
                };
                match serde_json::from_str::<Event>(&text) {
                    Ok(event) => deliver(&hub, &event),
                    Err(error) => tracing::warn!(%error, "unreadable event on the Redis bus"),
                }
            }
        }))
    }
}

/// Sends queued events to the other instances that hold sockets of their recipients, in
/// order, as many as have queued up at a time.
async fn publish_queued(connection: RedisConnection, mut queue: mpsc::Receiver<Event>) {
    let lookup = Script::from_lua(ROUTES);
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        // The changes are committed and delivered here; other instances' clients recover
        // what a Redis outage drops with gap filling and `sync`.
        if let Err(error) = publish_batch(&connection, &lookup, &batch).await {
            tracing::warn!(%error, "could not publish events on the Redis bus");
        }
        batch.clear();
    }
}

async fn publish_batch(
    connection: &RedisConnection,
    lookup: &Script,
    batch: &[Event],
) -> Result<(), fred::error::Error> {
    let routes = routes_of(connection, lookup, batch).await?;
    if routes.is_empty() {
        return Ok(());
    }
    let pipeline = connection.client.pipeline();
    for event in batch {
        for (instance, users) in by_instance(event, &routes) {
            let payload = match serde_json::to_string(&event.clone().addressed_to(&users)) {
                Ok(payload) => payload,
                Err(error) => {
                    tracing::error!(%error, "could not serialize an event for the bus");
                    continue;
                }
            };
            let () = pipeline
                .publish(instance_channel(connection, instance), payload)
                .await?;
        }
    }
    let _: Vec<fred::types::Value> = pipeline.all().await?;
    Ok(())
}

/// The other instances that hold sockets of each recipient in `batch`.
async fn routes_of(
    connection: &RedisConnection,
    lookup: &Script,
    batch: &[Event],
) -> Result<HashMap<UserId, Vec<String>>, fred::error::Error> {
    let users: HashSet<UserId> = batch.iter().flat_map(Event::recipients).collect();
    if users.is_empty() {
        return Ok(HashMap::new());
    }
    let mut args = vec![
        now_ms().to_string(),
        connection.instance_id().to_owned(),
        route_prefix(connection),
    ];
    args.extend(users.iter().map(ToString::to_string));
    let flat: Vec<String> = lookup
        .evalsha_with_reload(&connection.client, Vec::<String>::new(), args)
        .await?;
    let mut routes: HashMap<UserId, Vec<String>> = HashMap::new();
    for pair in flat.chunks_exact(2) {
        if let Ok(user) = pair[0].parse() {
            routes.entry(user).or_default().push(pair[1].clone());
        }
    }
    Ok(routes)
}

/// `event`'s recipients grouped by the other instances that hold their sockets.
fn by_instance<'a>(
    event: &Event,
    routes: &'a HashMap<UserId, Vec<String>>,
) -> BTreeMap<&'a str, HashSet<UserId>> {
    let mut grouped: BTreeMap<&str, HashSet<UserId>> = BTreeMap::new();
    for user in event.recipients() {
        for instance in routes.get(&user).into_iter().flatten() {
            grouped.entry(instance.as_str()).or_default().insert(user);
        }
    }
    grouped
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

    #[test]
    fn each_instance_gets_the_recipients_it_holds_sockets_of() {
        let (ann, bob, cy, dee) = (
            UserId::generate(),
            UserId::generate(),
            UserId::generate(),
            UserId::generate(),
        );
        let typing = Event::Typing {
            conversation_id: ConversationId::generate(),
            user_id: ann,
            typing: true,
            recipients: vec![ann, bob, cy, dee],
        };
        // Bob has devices on two other instances; Dee is only on the publishing one.
        let routes = HashMap::from([
            (ann, vec!["b".to_owned()]),
            (bob, vec!["b".to_owned(), "c".to_owned()]),
            (cy, vec!["c".to_owned()]),
        ]);
        let grouped = by_instance(&typing, &routes);
        assert_eq!(
            grouped,
            BTreeMap::from([
                ("b", HashSet::from([ann, bob])),
                ("c", HashSet::from([bob, cy])),
            ])
        );
    }
}
