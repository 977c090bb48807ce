//! The scenarios. `direct` and `fanout` share one traffic engine: every sender keeps at most
//! `window` messages in flight (sent, not yet acknowledged), sending as fast as the window
//! allows or, given a rate, on a fixed schedule; every reader records, for each message it
//! receives, the time since it was sent (carried in the body), and which seqs it has had, to
//! count duplicates. After the sending period the tool waits for every acknowledged message to
//! reach every recipient, or a deadline: what did not arrive by then is reported as lost.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use confab_api::Session;
use confab_api::ws::{ClientFrame, ServerFrame};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::{Semaphore, TryAcquireError, watch};
use tokio::time::{Instant, MissedTickBehavior};
use uuid::Uuid;

use crate::client::{Api, Receiver, Result, Sender, next_frame, next_text, send_frame, send_text};
use crate::procfs::Sample;
use crate::report::{Report, histogram};
use crate::seen::Seen;
use crate::wire::{self, Incoming};

/// How long delivery may take after sending stops before a message counts as lost.
const DRAIN: Duration = Duration::from_secs(5);
/// Signups and connections made at once while setting up.
const SETUP_CONCURRENCY: usize = 16;

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    acked: AtomicU64,
    /// Distinct messages received, summed over the sockets.
    deliveries: AtomicU64,
    duplicates: AtomicU64,
    /// Scheduled sends that found the window full and waited for an ack.
    window_waits: AtomicU64,
}

/// `count` users with names unique to this run.
async fn users(api: &Api, count: usize) -> Result<Vec<Session>> {
    let run = Uuid::now_v7().simple().to_string();
    let run = &run[run.len() - 10..];
    let signups = futures_util::stream::iter(0..count)
        .map(|i| async move { api.signup(&format!("l{run}_{i}")).await })
        .buffered(SETUP_CONCURRENCY);
    signups.collect::<Vec<_>>().await.into_iter().collect()
}

async fn connect_all(api: &Api, users: &[Session]) -> Result<Vec<(Sender, Receiver)>> {
    let connections = futures_util::stream::iter(users)
        .map(|user| api.connect(user, None))
        .buffered(SETUP_CONCURRENCY);
    connections.collect::<Vec<_>>().await.into_iter().collect()
}

/// µs since `epoch`.
fn micros_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Reads one socket until told to stop: acks free a place in the sender's window, messages
/// are timed and checked off by seq. Frames are read only as far as that needs (see
/// [`wire`]). Returns the latencies, if any message carried a send time.
async fn read(
    mut receiver: Receiver,
    window: Option<Arc<Semaphore>>,
    counters: Arc<Counters>,
    epoch: Instant,
    mut stop: watch::Receiver<bool>,
) -> Result<Option<Histogram<u64>>> {
    // Made on the first timed message: idle sockets never need one.
    let mut latency: Option<Histogram<u64>> = None;
    let mut seen = Seen::default();
    let stopped = stop.wait_for(|stop| *stop);
    tokio::pin!(stopped);
    loop {
        let text = tokio::select! {
            biased;
            _ = &mut stopped => return Ok(latency),
            text = next_text(&mut receiver) => text?,
        };
        let Some(text) = text else {
            return Err("a socket closed during the run".into());
        };
        match wire::classify(text.as_str())? {
            Incoming::Accepted => {
                counters.acked.fetch_add(1, Ordering::Relaxed);
                if let Some(window) = &window {
                    window.add_permits(1);
                }
            }
            Incoming::Message {
                conversation,
                seq,
                sent_at,
            } => match seen.insert(conversation, seq) {
                Some(true) => {
                    counters.deliveries.fetch_add(1, Ordering::Relaxed);
                    if let Some(sent_at) = sent_at {
                        let latency = match &mut latency {
                            Some(latency) => latency,
                            None => latency.insert(histogram()?),
                        };
                        let took = micros_since(epoch).saturating_sub(sent_at).max(1);
                        latency.saturating_record(took);
                    }
                }
                Some(false) => {
                    counters.duplicates.fetch_add(1, Ordering::Relaxed);
                }
                None => return Err(format!("seq {seq} is beyond any this run sends").into()),
            },
            Incoming::Error => {
                return Err(match serde_json::from_str(text.as_str())? {
                    ServerFrame::Error { code, message, .. } => {
                        format!("the server refused a frame: {code:?}: {message}")
                    }
                    _ => format!("the server refused a frame: {text}"),
                }
                .into());
            }
            Incoming::Other => {}
        }
    }
}

/// When a sender sends: as fast as its window allows, or one message every `period` from
/// `start` (a tick that cannot be kept is sent late and the schedule moves on from there).
#[derive(Debug, Clone, Copy)]
enum Pace {
    Window,
    Every { start: Instant, period: Duration },
}

/// Sends into `conversation` until `until`, at `pace`, with at most `window` unacknowledged.
async fn write(
    mut sender: Sender,
    conversation: Uuid,
    window: Arc<Semaphore>,
    counters: Arc<Counters>,
    epoch: Instant,
    until: Instant,
    pace: Pace,
) -> Result<()> {
    let prefix = wire::send_prefix(conversation);
    let mut ticks = match pace {
        Pace::Window => None,
        Pace::Every { start, period } => {
            let mut ticks = tokio::time::interval_at(start, period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            Some(ticks)
        }
    };
    loop {
        if let Some(ticks) = &mut ticks
            && tokio::time::timeout_at(until, ticks.tick()).await.is_err()
        {
            break;
        }
        if Instant::now() >= until {
            break;
        }
        let permit = match window.try_acquire() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => break,
            Err(TryAcquireError::NoPermits) => {
                if ticks.is_some() {
                    counters.window_waits.fetch_add(1, Ordering::Relaxed);
                }
                match tokio::time::timeout_at(until, window.acquire()).await {
                    Ok(Ok(permit)) => permit,
                    _ => break,
                }
            }
        };
        permit.forget();
        // Timed from the moment it is written, not from its scheduled tick.
        send_text(
            &mut sender,
            wire::message_send(&prefix, micros_since(epoch)),
        )
        .await?;
        counters.sent.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// One sending client: its socket, its conversation.
struct Plan {
    connection: (Sender, Receiver),
    sends_to: Option<Uuid>,
}

/// How the traffic is driven.
#[derive(Debug, Clone, Copy)]
struct Load {
    /// Messages each sender may have in flight.
    window: usize,
    /// How long to send.
    seconds: Duration,
    /// Messages per second offered in total over all senders; 0 for as fast as the windows
    /// allow.
    rate: f64,
}

/// Runs the traffic; `fanout` is how many sockets receive each message.
async fn traffic(plans: Vec<Plan>, load: Load, fanout: u64, pid: Option<u32>) -> Result<Report> {
    let counters = Arc::new(Counters::default());
    let (stop, stopped) = watch::channel(false);
    let senders = plans.iter().filter(|plan| plan.sends_to.is_some()).count();
    // Each sender offers an equal share of the rate, its ticks staggered across the period so
    // that the senders together send evenly rather than in bursts.
    let period = (load.rate > 0.0 && senders > 0)
        .then(|| Duration::try_from_secs_f64(senders as f64 / load.rate).ok())
        .flatten()
        .map(|period| period.max(Duration::from_micros(1)));
    let epoch = Instant::now();
    let until = epoch + load.seconds;
    let server_start = Sample::read(pid);
    let own_start = Sample::read(None);
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for plan in plans {
        let (sender, receiver) = plan.connection;
        let permits = plan.sends_to.map(|_| Arc::new(Semaphore::new(load.window)));
        readers.push(tokio::spawn(read(
            receiver,
            permits.clone(),
            counters.clone(),
            epoch,
            stopped.clone(),
        )));
        if let (Some(conversation), Some(permits)) = (plan.sends_to, permits) {
            let pace = match period {
                Some(period) => Pace::Every {
                    start: epoch + period.mul_f64(writers.len() as f64 / senders as f64),
                    period,
                },
                None => Pace::Window,
            };
            writers.push(tokio::spawn(write(
                sender,
                conversation,
                permits,
                counters.clone(),
                epoch,
                until,
                pace,
            )));
        }
    }
    for writer in writers {
        writer.await??;
    }
    let elapsed = epoch.elapsed();
    let server_end = Sample::read(pid);
    let own_end = Sample::read(None);
    // Every acknowledged message should reach every recipient; wait for that, up to DRAIN.
    let drain_until = Instant::now() + DRAIN;
    while Instant::now() < drain_until {
        let expected = counters.acked.load(Ordering::Relaxed) * fanout;
        if counters.deliveries.load(Ordering::Relaxed) >= expected
            && counters.acked.load(Ordering::Relaxed) >= counters.sent.load(Ordering::Relaxed)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(true);
    let mut latency = histogram()?;
    for reader in readers {
        if let Some(reader) = reader.await?? {
            latency.add(reader)?;
        }
    }
    let acked = counters.acked.load(Ordering::Relaxed);
    let extra = if period.is_some() {
        json!({"window_waits": counters.window_waits.load(Ordering::Relaxed)})
    } else {
        json!({})
    };
    Ok(Report {
        scenario: "",
        params: json!({}),
        elapsed,
        sent: counters.sent.load(Ordering::Relaxed),
        acked,
        deliveries: counters.deliveries.load(Ordering::Relaxed),
        expected_deliveries: acked * fanout,
        duplicates: counters.duplicates.load(Ordering::Relaxed),
        latency,
        extra,
        server: (server_start, server_end),
        own: (own_start, own_end),
    })
}

/// Pairs of users in direct conversations, both sides sending; `rate` is the messages per
/// second offered over all senders (0: as fast as the windows allow).
pub(crate) async fn direct(
    api: &Api,
    pid: Option<u32>,
    pairs: usize,
    window: usize,
    seconds: Duration,
    rate: f64,
) -> Result<Report> {
    let people = users(api, pairs * 2).await?;
    let mut conversations = Vec::with_capacity(pairs);
    for pair in people.chunks(2) {
        if let [a, b] = pair {
            conversations.push(api.direct(a, b).await?.id);
        }
    }
    let connections = connect_all(api, &people).await?;
    let plans = connections
        .into_iter()
        .enumerate()
        .map(|(i, connection)| Plan {
            connection,
            sends_to: conversations.get(i / 2).copied(),
        })
        .collect();
    let load = Load {
        window,
        seconds,
        rate,
    };
    let mut report = traffic(plans, load, 1, pid).await?;
    report.scenario = "direct";
    report.params =
        json!({"pairs": pairs, "window": window, "seconds": seconds.as_secs(), "rate": rate});
    Ok(report)
}

/// One group; `senders` of its members send, every other member receives; `rate` is the
/// messages per second offered over all senders (0: as fast as the windows allow).
pub(crate) async fn fanout(
    api: &Api,
    pid: Option<u32>,
    members: usize,
    senders: usize,
    window: usize,
    seconds: Duration,
    rate: f64,
) -> Result<Report> {
    let members = members.max(2);
    let people = users(api, members).await?;
    let (owner, others) = people.split_first().ok_or("no members")?;
    let group = api.group(owner, others).await?.id;
    let connections = connect_all(api, &people).await?;
    let plans = connections
        .into_iter()
        .enumerate()
        .map(|(i, connection)| Plan {
            connection,
            sends_to: (i < senders).then_some(group),
        })
        .collect();
    let load = Load {
        window,
        seconds,
        rate,
    };
    let mut report = traffic(plans, load, (members - 1) as u64, pid).await?;
    report.scenario = "fanout";
    report.params = json!({"members": members, "senders": senders.min(members), "window": window, "seconds": seconds.as_secs(), "rate": rate});
    Ok(report)
}

/// Many idle sockets: how fast they connect, how many fail, what each costs the server.
pub(crate) async fn idle(
    api: &Api,
    pid: Option<u32>,
    sockets: usize,
    per_user: usize,
    sources: &[IpAddr],
    hold: Duration,
) -> Result<Report> {
    let per_user = per_user.max(1);
    let people = users(api, sockets.div_ceil(per_user)).await?;
    let before = Sample::read(pid);
    let own_start = Sample::read(None);
    let started = Instant::now();
    let mut attempts = FuturesUnordered::new();
    let mut open = Vec::with_capacity(sockets);
    let mut failures = 0u64;
    let mut first_error = None;
    // The server's RSS once half the sockets are open: the cost per socket is taken over the
    // second half, so that what the server kept from signing users up, or frees lazily (an
    // allocator returns memory when it gets round to it), counts for neither.
    let mut halfway = None;
    for i in 0..sockets {
        if i == sockets / 2 {
            while let Some(result) = attempts.next().await {
                match result {
                    Ok(connection) => open.push(connection),
                    Err(error) => {
                        failures += 1;
                        first_error.get_or_insert(ToString::to_string(&error));
                    }
                }
            }
            halfway = Sample::read(pid).map(|sample| (sample, open.len()));
        }
        let user = &people[i / per_user];
        let source = (!sources.is_empty()).then(|| sources[i % sources.len()]);
        attempts.push(api.connect(user, source));
        // A bounded number of handshakes at once, like a crowd reconnecting.
        if attempts.len() >= 64
            && let Some(result) = attempts.next().await
        {
            match result {
                Ok(connection) => open.push(connection),
                Err(error) => {
                    failures += 1;
                    first_error.get_or_insert(error.to_string());
                }
            }
        }
    }
    while let Some(result) = attempts.next().await {
        match result {
            Ok(connection) => open.push(connection),
            Err(error) => {
                failures += 1;
                first_error.get_or_insert(error.to_string());
            }
        }
    }
    let connect_time = started.elapsed();
    // Keep every socket read (pings are answered as frames are read) while it is held.
    let (stop, stopped) = watch::channel(false);
    let counters = Arc::new(Counters::default());
    let readers: Vec<_> = open
        .into_iter()
        .map(|(sender, receiver)| {
            let stopped = stopped.clone();
            let counters = counters.clone();
            tokio::spawn(async move {
                let _keep = sender;
                read(receiver, None, counters, Instant::now(), stopped).await
            })
        })
        .collect();
    tokio::time::sleep(hold).await;
    let after = Sample::read(pid);
    let own_end = Sample::read(None);
    let _ = stop.send(true);
    let connected = readers.len() as u64;
    for reader in readers {
        let _ = reader.await;
    }
    let per_socket = match (halfway, after) {
        (Some((halfway, open_then)), Some(after)) if connected > open_then as u64 => json!(
            (after.rss_kib.saturating_sub(halfway.rss_kib)) as f64
                / (connected - open_then as u64) as f64
        ),
        _ => serde_json::Value::Null,
    };
    Ok(Report {
        scenario: "idle",
        params: json!({"sockets": sockets, "per_user": per_user, "sources": sources.len(), "hold_seconds": hold.as_secs()}),
        elapsed: connect_time,
        sent: 0,
        acked: 0,
        deliveries: 0,
        expected_deliveries: 0,
        duplicates: 0,
        latency: histogram()?,
        extra: json!({
            "connected": connected,
            "failures": failures,
            "first_failure": first_error,
            "connects_per_s": connected as f64 / connect_time.as_secs_f64().max(f64::EPSILON),
            "server_rss_kib_per_socket": per_socket,
        }),
        server: (before, after),
        own: (own_start, own_end),
    })
}

/// The most members a group is created with (the server's limit per request).
const GROUP_SIZE: usize = 200;

/// `clients` drop; `messages` arrive in each of their groups meanwhile; all reconnect at once,
/// take their backlog and `sync` from where they were. Measures the time until every client
/// holds every message, and counts what is missing or came twice (both must be 0).
pub(crate) async fn reconnect(
    api: &Api,
    pid: Option<u32>,
    clients: usize,
    messages: usize,
) -> Result<Report> {
    let people = users(api, clients + 1).await?;
    let (sender, receivers) = people.split_first().ok_or("no users")?;
    let mut group_of = Vec::with_capacity(receivers.len());
    for chunk in receivers.chunks(GROUP_SIZE) {
        let group = api.group(sender, chunk).await?.id;
        group_of.extend(std::iter::repeat_n(group, chunk.len()));
    }
    // Connected once, then gone.
    for connection in connect_all(api, receivers).await? {
        drop(connection);
    }
    let mut groups = group_of.clone();
    groups.dedup();
    for group in &groups {
        for i in 0..messages {
            api.send(sender, *group, &format!("while away {i}")).await?;
        }
    }

    let server_start = Sample::read(pid);
    let own_start = Sample::read(None);
    let started = Instant::now();
    let catch_up = receivers
        .iter()
        .zip(&group_of)
        .map(|(user, group)| async move {
            let (mut out, mut incoming, greeting) = api.connect_greeted(user, None).await?;
            let mut seqs: Vec<u64> = greeting
                .iter()
                .filter_map(|f| match f {
                    ServerFrame::MessageNew { message } if message.conversation_id == *group => {
                        Some(message.seq)
                    }
                    _ => None,
                })
                .collect();
            // The client held nothing of the group before it dropped.
            let sync = ClientFrame::Sync {
                cursors: vec![confab_api::ws::SyncCursor {
                    conversation_id: *group,
                    seq: 0,
                }],
            };
            send_frame(&mut out, &sync).await?;
            loop {
                match next_frame(&mut incoming).await? {
                    Some(ServerFrame::MessageNew { message })
                        if message.conversation_id == *group =>
                    {
                        seqs.push(message.seq)
                    }
                    Some(ServerFrame::SyncDone { .. }) => break,
                    Some(_) => {}
                    None => return Err("a socket closed while catching up".into()),
                }
            }
            Ok::<_, crate::client::Error>((seqs, started.elapsed()))
        });
    let results: Vec<Result<(Vec<u64>, Duration)>> = futures_util::stream::iter(catch_up)
        .buffer_unordered(64)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let (mut missing, mut duplicates, mut delivered, mut slowest) =
        (0u64, 0u64, 0u64, Duration::ZERO);
    let mut latency = histogram()?;
    for result in results {
        let (mut seqs, took) = result?;
        slowest = slowest.max(took);
        latency.saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
        delivered += seqs.len() as u64;
        seqs.sort_unstable();
        let before = seqs.len();
        seqs.dedup();
        duplicates += (before - seqs.len()) as u64;
        missing += (1..=messages as u64)
            .filter(|seq| seqs.binary_search(seq).is_err())
            .count() as u64;
    }
    let expected = (clients * messages) as u64;
    Ok(Report {
        scenario: "reconnect",
        params: json!({"clients": clients, "messages_per_group": messages, "groups": groups.len()}),
        elapsed,
        sent: expected,
        acked: expected,
        deliveries: delivered - duplicates,
        expected_deliveries: expected,
        duplicates,
        latency,
        extra: json!({
            "all_caught_up_ms": slowest.as_secs_f64() * 1000.0,
            "missing": missing,
        }),
        server: (server_start, Sample::read(pid)),
        own: (own_start, Sample::read(None)),
    })
}
