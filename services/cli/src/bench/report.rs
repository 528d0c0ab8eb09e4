//! The result of a run: a table for people, JSON for comparing runs, and the targets of
//! issue 4 checked against what was measured.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::measure::{CacheCounts, PhaseSummary};
use super::raw::RawResult;
use super::scenarios::ScenarioResult;
use super::settings::Settings;

/// Everything a run measured.
#[derive(Debug, Serialize)]
pub(crate) struct BenchReport {
    /// leadbus version.
    pub(crate) version: &'static str,
    /// When the run started (RFC 3339).
    pub(crate) started_at: String,
    /// Seconds the run took.
    pub(crate) elapsed_s: f64,
    /// The machine as it was.
    pub(crate) machine: Machine,
    /// Versions of the servers the run started.
    pub(crate) servers: BTreeMap<String, String>,
    /// Sizes and rates used.
    pub(crate) settings: Settings,
    /// Raw JetStream on the same servers.
    pub(crate) raw: Option<RawResult>,
    /// Each scenario that ran.
    pub(crate) scenarios: Vec<ScenarioResult>,
    /// Scenarios that could not run, with the reason.
    pub(crate) failed: Vec<String>,
    /// Issue 4's targets against this run.
    pub(crate) targets: Vec<Target>,
}

/// The machine, for reading the figures in context.
#[derive(Debug, Serialize)]
pub(crate) struct Machine {
    /// Cores available.
    pub(crate) cores: usize,
    /// 1-minute load average at the start and at the end (other work on the machine).
    pub(crate) load_before: Option<f64>,
    /// At the end.
    pub(crate) load_after: Option<f64>,
}

/// One target of issue 4.
#[derive(Debug, Serialize)]
pub(crate) struct Target {
    /// What is measured.
    pub(crate) name: &'static str,
    /// The goal.
    pub(crate) goal: &'static str,
    /// What this run measured.
    pub(crate) measured: String,
    /// Met, missed, or not measured in this run.
    pub(crate) met: Option<bool>,
}

/// The 1-minute load average.
pub(crate) fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| {
        if v < 10.0 {
            format!("{v:.2}")
        } else {
            format!("{v:.0}")
        }
    })
}

fn fmt_cache(cache: &BTreeMap<String, CacheCounts>) -> String {
    let mut all = CacheCounts::default();
    for c in cache.values() {
        all.l1 += c.l1;
        all.l2 += c.l2;
        all.computed += c.computed;
        all.fallback += c.fallback;
    }
    let total = all.total();
    if total == 0 {
        return "-".into();
    }
    let pct = |n: u64| 100.0 * n as f64 / total as f64;
    format!(
        "{:.1}% (L1 {:.1} L2 {:.1})",
        pct(all.l1 + all.l2),
        pct(all.l1),
        pct(all.l2)
    )
}

fn phase_row(p: &PhaseSummary) -> String {
    format!(
        "{:<32} {:>9} {:>8} {:>8} {:>6} {:>8.0} {:>7} {:>7} {:>7} {:>7}  {}",
        p.label,
        p.offered_rate.map_or("burst".into(), |r| format!("{r:.0}")),
        p.sent,
        p.received,
        p.lost,
        p.throughput,
        fmt_ms(p.p50_ms),
        fmt_ms(p.p95_ms),
        fmt_ms(p.p99_ms),
        fmt_ms(p.max_ms),
        fmt_cache(&p.cache),
    )
}

impl BenchReport {
    /// Prints the tables.
    pub(crate) fn print(&self) {
        println!();
        println!(
            "{:<32} {:>9} {:>8} {:>8} {:>6} {:>8} {:>7} {:>7} {:>7} {:>7}  cache hits",
            "scenario / phase",
            "offered/s",
            "sent",
            "results",
            "lost",
            "thr/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms"
        );
        for s in &self.scenarios {
            for p in &s.phases {
                println!("{}", phase_row(p));
            }
        }
        println!();
        println!("peak memory (VmHWM, MiB) during each scenario");
        let names: Vec<&String> = self
            .scenarios
            .iter()
            .flat_map(|s| s.peak_memory_kib.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        print!("{:<10}", "");
        for n in &names {
            print!(" {n:>13}");
        }
        println!();
        for s in &self.scenarios {
            print!("{:<10}", s.name);
            for n in &names {
                let v = s
                    .peak_memory_kib
                    .get(*n)
                    .map_or("-".into(), |k| format!("{:.0}", *k as f64 / 1024.0));
                print!(" {v:>13}");
            }
            println!();
        }
        println!();
        println!("where the latency goes, ms (p50 / p99 of each part)");
        println!(
            "  stored: scheduled publish to the stream's ack; inference: its receipt to results stored; delivery: results stored to the client (LEAD_INTEL, the gateway's feed, the WebSocket); the rest of the total is the wait in the event's lane"
        );
        println!(
            "  {:<32} {:>15}  {:>15}  {:>15}",
            "", "stored", "inference", "delivery"
        );
        for s in &self.scenarios {
            for p in &s.phases {
                println!(
                    "  {:<32} {:>7} {:>7}  {:>7} {:>7}  {:>7} {:>7}",
                    p.label,
                    fmt_ms(p.ingest_p50_ms),
                    fmt_ms(p.ingest_p99_ms),
                    fmt_ms(p.processing_p50_ms),
                    fmt_ms(p.processing_p99_ms),
                    fmt_ms(p.delivery_p50_ms),
                    fmt_ms(p.delivery_p99_ms)
                );
            }
        }
        println!();
        println!("CPU time per event, ms (user + system, over the whole scenario)");
        for s in &self.scenarios {
            let parts: Vec<String> = s
                .cpu_ms_per_event
                .iter()
                .map(|(name, ms)| format!("{name} {ms:.3}"))
                .collect();
            let total: f64 = s.cpu_ms_per_event.values().sum();
            println!("  {:<10} {}; total {total:.3}", s.name, parts.join(", "));
        }
        println!();
        println!(
            "JetStream messages written per event (and stored bytes kept per event: a key-value \
             bucket keeps one value per key, so its figure is net growth)"
        );
        for s in &self.scenarios {
            let parts: Vec<String> = s
                .jetstream_writes
                .iter()
                .filter(|(_, w)| w.messages_per_event > 0.0)
                .map(|(name, w)| {
                    format!(
                        "{name} {:.2} ({:.0} B)",
                        w.messages_per_event, w.stored_bytes_per_event
                    )
                })
                .collect();
            let total: f64 = s
                .jetstream_writes
                .values()
                .map(|w| w.messages_per_event)
                .sum();
            println!("  {:<10} {}; total {total:.2}", s.name, parts.join(", "));
        }
        println!();
        for s in &self.scenarios {
            for note in &s.notes {
                println!("{}: {note}", s.name);
            }
        }
        for (name, version) in &self.servers {
            println!("{name}: {version}");
        }
        if let Some(raw) = &self.raw {
            println!(
                "raw JetStream: async publish {:.0} msgs/s, pull + ack {:.0} msgs/s ({} messages of {} bytes)",
                raw.publish_per_s, raw.consume_per_s, raw.messages, raw.payload_bytes
            );
        }
        for f in &self.failed {
            println!("could not run: {f}");
        }
        println!();
        if self.settings.quick {
            println!(
                "targets of issue 4: not judged on a --quick run (smoke sizes: steady at {:.0}/s, \
                 max capped at {:.0}/s, backlog and flood of {}); run without --quick to compare",
                self.settings.rate, self.settings.max_limit, self.settings.backlog
            );
            return;
        }
        println!(
            "targets of issue 4 (2-core machine; load average {} at start, {} at end)",
            self.machine
                .load_before
                .map_or("?".into(), |l| format!("{l:.1}")),
            self.machine
                .load_after
                .map_or("?".into(), |l| format!("{l:.1}")),
        );
        for t in &self.targets {
            let verdict = match t.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "not measured",
            };
            println!(
                "  {:<34} {:<28} {:<34} {verdict}",
                t.name, t.goal, t.measured
            );
        }
    }

    /// Writes the JSON form.
    pub(crate) fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Issue 4's targets, judged on the scenarios that ran.
pub(crate) fn targets(scenarios: &[ScenarioResult], raw: Option<&RawResult>) -> Vec<Target> {
    let find = |name: &str| scenarios.iter().find(|s| s.name == name);
    let mut out = Vec::new();

    let steady = find("steady").and_then(|s| s.phases.last());
    out.push(Target {
        name: "steady 5,000/s latency",
        goal: "p50 <= 1 ms, p99 <= 5 ms",
        measured: steady.map_or("-".into(), |p| {
            format!("p50 {} ms, p99 {} ms", fmt_ms(p.p50_ms), fmt_ms(p.p99_ms))
        }),
        met: steady.map(|p| {
            p.lost == 0 && p.p50_ms.is_some_and(|v| v <= 1.0) && p.p99_ms.is_some_and(|v| v <= 5.0)
        }),
    });

    let max = find("max").map(|s| s.max_sustained_rate.unwrap_or(0.0));
    out.push(Target {
        name: "max sustained (p99 < 50 ms)",
        goal: ">= 30,000 events/s",
        measured: max.map_or("-".into(), |m| format!("{m:.0} events/s")),
        met: max.map(|m| m >= 30_000.0),
    });
    let ratio = match (max, raw) {
        (Some(m), Some(r)) if r.publish_per_s > 0.0 => Some(m / r.publish_per_s),
        _ => None,
    };
    out.push(Target {
        name: "max / raw JetStream publish",
        goal: ">= 0.3",
        measured: match (ratio, raw) {
            (Some(x), Some(r)) => format!("{x:.3} (raw {:.0}/s)", r.publish_per_s),
            _ => "-".into(),
        },
        met: ratio.map(|x| x >= 0.3),
    });

    let critical = find("priority").and_then(|s| s.phases.first());
    out.push(Target {
        name: "priority: critical over backlog",
        goal: "p99 <= 5 ms",
        measured: critical.map_or("-".into(), |p| format!("p99 {} ms", fmt_ms(p.p99_ms))),
        met: critical.map(|p| p.lost == 0 && p.p99_ms.is_some_and(|v| v <= 5.0)),
    });

    let noisy = find("noisy");
    let alone = noisy.and_then(|s| s.phases.first()).and_then(|p| p.p99_ms);
    let flooded = noisy.and_then(|s| s.phases.get(1)).and_then(|p| p.p99_ms);
    let noisy_ratio = match (alone, flooded) {
        (Some(a), Some(f)) if a > 0.0 => Some(f / a),
        _ => None,
    };
    out.push(Target {
        name: "noisy: quiet tenant's p99",
        goal: "within 2x of alone",
        measured: match (alone, flooded, noisy_ratio) {
            (Some(a), Some(f), Some(r)) => {
                format!("{} -> {} ms ({r:.1}x)", fmt_ms(Some(a)), fmt_ms(Some(f)))
            }
            _ => "-".into(),
        },
        met: noisy.map(|_| noisy_ratio.is_some_and(|r| r <= 2.0)),
    });

    let hits = find("cache").and_then(|s| s.phases.get(1));
    out.push(Target {
        name: "cache: unchanged inputs",
        goal: ">= 99% hits",
        measured: hits
            .and_then(|p| p.hit_rate)
            .map_or("-".into(), |h| format!("{:.2}% hits", h * 100.0)),
        met: hits.map(|p| p.hit_rate.is_some_and(|h| h >= 0.99)),
    });
    out
}
