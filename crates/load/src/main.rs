//! `confab-load`: drives a running Confab through its public API only, like real clients:
//! it signs users up, opens conversations and WebSockets, sends real frames, and measures what
//! comes back. Each scenario is bounded in time and count and prints one JSON line of results
//! followed by a readable table.
//!
//! The server must allow the load: start it with generous limits, e.g.
//! `CONFAB_RATE_DIRECT_PER_MIN=1000000 CONFAB_RATE_GROUP_PER_MIN=1000000
//! CONFAB_RATE_CONNECT_PER_MIN=1000000 CONFAB_MAX_SOCKETS_PER_USER=1000`.

mod client;
mod procfs;
mod report;
mod scenarios;
mod seen;
mod wire;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// A load generator for Confab.
#[derive(Debug, Parser)]
#[command(name = "confab-load", version)]
struct Cli {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// The server's process id, to report its memory and CPU (read from /proc).
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Many pairs chatting in direct conversations, each sender keeping a window of messages
    /// in flight: accepted messages/s and send→receive latency.
    Direct {
        /// Pairs of users.
        #[arg(long, default_value_t = 50)]
        pairs: usize,
        /// Messages each sender may have sent but not yet acknowledged.
        #[arg(long, default_value_t = 4)]
        window: usize,
        /// How long to send, in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Messages per second offered in total, spread evenly over the senders, each on a
        /// fixed schedule (the window still bounds what is in flight); 0 sends as fast as the
        /// window allows.
        #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
        rate: f64,
    },
    /// One group of `members`, `senders` of whom send with a window in flight: deliveries/s and
    /// latency at every recipient.
    Fanout {
        /// Members of the group.
        #[arg(long, default_value_t = 100)]
        members: usize,
        /// Members who send.
        #[arg(long, default_value_t = 4)]
        senders: usize,
        /// Messages each sender may have in flight.
        #[arg(long, default_value_t = 4)]
        window: usize,
        /// How long to send, in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Messages per second offered in total, spread evenly over the senders, each on a
        /// fixed schedule (the window still bounds what is in flight); 0 sends as fast as the
        /// window allows.
        #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
        rate: f64,
    },
    /// Clients drop, messages arrive meanwhile, all reconnect at once and sync: the time until
    /// every client holds every message, and any loss or duplicate (both must be 0). The
    /// latency figures are each client's time to catch up.
    Reconnect {
        /// Clients (users with one socket each).
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// Messages sent to each group while the clients are away.
        #[arg(long, default_value_t = 50)]
        messages: usize,
    },
    /// Many idle authenticated sockets: connect rate, failures, and server memory per socket.
    Idle {
        /// Sockets to open.
        #[arg(long, default_value_t = 1000)]
        sockets: usize,
        /// Sockets per user (the server's per-user cap applies).
        #[arg(long, default_value_t = 10)]
        per_user: usize,
        /// Local source addresses to spread sockets over, past one address's port range
        /// (e.g. `127.0.0.1,127.0.0.2`).
        #[arg(long, value_delimiter = ',', default_value = "127.0.0.1")]
        sources: Vec<std::net::IpAddr>,
        /// How long to hold the sockets open once connected, in seconds.
        #[arg(long, default_value_t = 5)]
        hold: u64,
    },
}

/// A rate in messages per second: finite and not negative.
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
        Ok(_) => Err("must be a finite number of messages per second, 0 or more".into()),
        Err(error) => Err(error.to_string()),
    }
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("confab-load: {error}");
            return ExitCode::FAILURE;
        }
    };
    let api = client::Api::new(&cli.url);
    let result = runtime.block_on(async {
        match cli.scenario {
            Scenario::Direct {
                pairs,
                window,
                seconds,
                rate,
            } => {
                scenarios::direct(
                    &api,
                    cli.server_pid,
                    pairs,
                    window,
                    Duration::from_secs(seconds),
                    rate,
                )
                .await
            }
            Scenario::Fanout {
                members,
                senders,
                window,
                seconds,
                rate,
            } => {
                scenarios::fanout(
                    &api,
                    cli.server_pid,
                    members,
                    senders,
                    window,
                    Duration::from_secs(seconds),
                    rate,
                )
                .await
            }
            Scenario::Reconnect { clients, messages } => {
                scenarios::reconnect(&api, cli.server_pid, clients, messages).await
            }
            Scenario::Idle {
                sockets,
                per_user,
                sources,
                hold,
            } => {
                scenarios::idle(
                    &api,
                    cli.server_pid,
                    sockets,
                    per_user,
                    &sources,
                    Duration::from_secs(hold),
                )
                .await
            }
        }
    });
    match result {
        Ok(report) => {
            report.print();
            if report.failed() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            eprintln!("confab-load: {error}");
            ExitCode::FAILURE
        }
    }
}
