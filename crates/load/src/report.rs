//! Results: counted while the scenario runs, printed as one JSON line and a table.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::procfs::Sample;

/// Latencies in microseconds, 1 µs to 60 s at three significant digits.
pub(crate) fn histogram() -> crate::client::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

/// What a scenario measured.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) scenario: &'static str,
    pub(crate) params: Value,
    pub(crate) elapsed: Duration,
    pub(crate) sent: u64,
    pub(crate) acked: u64,
    /// Distinct messages received: a message that came twice to one socket counts once here
    /// and once in `duplicates`.
    pub(crate) deliveries: u64,
    pub(crate) expected_deliveries: u64,
    /// Messages a socket received again after it already had them.
    pub(crate) duplicates: u64,
    pub(crate) latency: Histogram<u64>,
    pub(crate) extra: Value,
    pub(crate) server: (Option<Sample>, Option<Sample>),
    pub(crate) own: (Option<Sample>, Option<Sample>),
}

impl Report {
    /// Acknowledged deliveries that never arrived: expected less the distinct ones received.
    pub(crate) fn lost(&self) -> u64 {
        self.expected_deliveries.saturating_sub(self.deliveries)
    }

    /// Whether the run broke the delivery guarantee: anything lost or duplicated.
    pub(crate) fn failed(&self) -> bool {
        self.lost() > 0 || self.duplicates > 0
    }

    fn to_json(&self) -> Value {
        let seconds = self.elapsed.as_secs_f64().max(f64::EPSILON);
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        let cpu = |pair: &(Option<Sample>, Option<Sample>)| match pair {
            (Some(start), Some(end)) => {
                json!({"cpu_cores": end.cpu_since(start), "rss_kib": end.rss_kib, "rss_kib_start": start.rss_kib})
            }
            _ => Value::Null,
        };
        json!({
            "scenario": self.scenario,
            "params": self.params,
            "seconds": seconds,
            "sent": self.sent,
            "acked": self.acked,
            "accepted_per_s": self.acked as f64 / seconds,
            "deliveries": self.deliveries,
            "deliveries_per_s": self.deliveries as f64 / seconds,
            "lost": self.lost(),
            "duplicates": self.duplicates,
            "latency_ms": if self.latency.is_empty() { Value::Null } else { json!({
                "p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "max": self.latency.max() as f64 / 1000.0,
            }) },
            "server": cpu(&self.server),
            "load_tool": cpu(&self.own),
            "extra": self.extra,
        })
    }

    /// One JSON line (for scripts), then a table (for people).
    #[allow(clippy::print_stdout)]
    pub(crate) fn print(&self) {
        let json = self.to_json();
        println!("{json}");
        println!("{:<24} {}", "scenario", self.scenario);
        for key in [
            "seconds",
            "sent",
            "acked",
            "accepted_per_s",
            "deliveries",
            "deliveries_per_s",
            "lost",
            "duplicates",
        ] {
            println!("{key:<24} {}", format_number(&json[key]));
        }
        if let Some(latency) = json["latency_ms"].as_object() {
            for (key, value) in latency {
                println!(
                    "{:<24} {}",
                    format!("latency {key} (ms)"),
                    format_number(value)
                );
            }
        }
        for (name, key) in [("server", "server"), ("load tool", "load_tool")] {
            if let Some(cost) = json[key].as_object() {
                println!(
                    "{:<24} {} cores, {} KiB resident",
                    name,
                    format_number(&cost["cpu_cores"]),
                    cost["rss_kib"]
                );
            }
        }
        if let Some(extra) = self.extra.as_object() {
            for (key, value) in extra {
                println!("{key:<24} {}", format_number(value));
            }
        }
    }
}

fn format_number(value: &Value) -> String {
    match value.as_f64() {
        Some(number) if value.is_f64() => format!("{number:.2}"),
        _ => value.to_string(),
    }
}
