//! `leadbus bench`: starts (or connects to) nats-server and redis-server, runs the inference
//! service and the gateway as child processes of this binary, measures raw JetStream on the
//! same servers, then offers the scenarios of issue 4 and measures latency from publish to
//! WebSocket receipt, throughput, cache hits and peak memory.
//!
//! Layout: `settings` (arguments), `procs` (child processes, peak memory), `raw` (the
//! JetStream yardstick), `events` (what is offered), `offer` (open loop and bursts),
//! `listen` (WebSocket clients), `measure` (matching results to sends), `run_phase`,
//! `scenarios`, `report` (table, JSON, targets) and `plot`.

mod events;
mod listen;
mod measure;
mod offer;
mod plot;
mod procs;
mod raw;
mod report;
mod run_phase;
mod scenarios;
mod settings;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use leadbus_shared::Config;
use leadbus_shared::client::Producer;
use tracing::warn;

pub(crate) use settings::BenchArgs;

use measure::Registry;
use procs::Procs;
use report::{BenchReport, Machine, load_average, targets};
use run_phase::Driver;
use scenarios::{ScenarioResult, Scenarios};
use settings::{Scenario, Settings};

/// Runs the bench, prints the table, writes the JSON and the plot when asked. Fails only
/// when nothing could be measured.
pub(crate) async fn run(config: &Config, args: BenchArgs) -> anyhow::Result<()> {
    let settings = if args.quick {
        args.settings.clone().quick()
    } else {
        args.settings.clone()
    };
    settings.check()?;
    let chosen: Vec<Scenario> = if args.scenario.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        Scenario::ALL
            .into_iter()
            .filter(|s| args.scenario.contains(s))
            .collect()
    };
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339();
    let load_before = load_average();

    let progress = MultiProgress::new();
    let status = progress.add(ProgressBar::new_spinner());
    status.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    status.enable_steady_tick(Duration::from_millis(200));
    status.set_message("starting servers and services");
    let mut procs = Procs::start(config, args.nats_url.clone(), args.redis_url.clone()).await?;
    let procs_versions = procs.server_versions();

    let outcome = measure_all(
        config, &args, &settings, &chosen, &mut procs, &progress, &status,
    )
    .await;
    status.set_message("stopping services");
    let kept = procs.stop(outcome.is_err()).await;
    status.finish_and_clear();
    let (raw, results, failed) = match (outcome, kept) {
        (Ok(measured), _) => measured,
        (Err(error), Some(dir)) => {
            return Err(error.context(format!("service logs kept in {}", dir.display())));
        }
        (Err(error), None) => return Err(error),
    };
    if results.is_empty() && !failed.is_empty() {
        anyhow::bail!("no scenario could run: {}", failed.join("; "));
    }

    let report = BenchReport {
        version: env!("CARGO_PKG_VERSION"),
        started_at,
        elapsed_s: started.elapsed().as_secs_f64(),
        machine: Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_before,
            load_after: load_average(),
        },
        servers: procs_versions,
        settings,
        targets: targets(&results, raw.as_ref()),
        raw,
        scenarios: results,
        failed,
    };
    report.print();
    if let Some(path) = &args.json {
        report.write_json(path)?;
        println!("\nJSON written to {}", path.display());
    }
    if let Some(path) = &args.plot {
        plot::draw(path, &report.scenarios)?;
        println!("plot written to {}", path.display());
    }
    Ok(())
}

type Measured = (Option<raw::RawResult>, Vec<ScenarioResult>, Vec<String>);

async fn measure_all(
    config: &Config,
    args: &BenchArgs,
    settings: &Settings,
    chosen: &[Scenario],
    procs: &mut Procs,
    progress: &MultiProgress,
    status: &ProgressBar,
) -> anyhow::Result<Measured> {
    let nats_url = procs.endpoints.nats_url.clone();
    let nats = async_nats::connect(&nats_url)
        .await
        .with_context(|| format!("cannot connect to NATS at {nats_url}"))?;
    let js = jetstream::new(nats.clone());
    // Bursts publish on a connection of their own, as a second producer would: a rate-paced
    // phase running beside a burst must not wait in the burst's client-side write queue.
    let burst_nats = async_nats::connect(&nats_url)
        .await
        .with_context(|| format!("cannot connect to NATS at {nats_url}"))?;
    let run = run_tag();
    let scenarios = Scenarios {
        driver: Driver {
            js: js.clone(),
            producer: Producer::connect(nats),
            burst_producer: Producer::connect(burst_nats),
            progress: progress.clone(),
        },
        registry: Arc::new(Registry::new(&run)),
        gateway: procs.endpoints.gateway,
        secret: config.jwt_secret.clone(),
        run: run.clone(),
        settings: settings.clone(),
    };

    let mut failed = Vec::new();
    let raw = if args.no_raw {
        None
    } else {
        status.set_message("raw JetStream");
        // Payloads as large as the mixed events' on average.
        let pop = events::Population::new(&["t00"], 1, &run)?;
        let total: usize = (0..100)
            .map(|i| serde_json::to_vec(&pop.mixed(i)).map_or(0, |v| v.len()))
            .sum();
        let size = (total / 100).max(1);
        let bar = progress.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("{msg:30} [{bar:30}] {pos}/{len}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let measured = raw::measure(&js, &run, settings.raw_messages, size, &bar).await;
        bar.finish();
        match measured {
            Ok(r) => Some(r),
            Err(error) => {
                warn!(error = %format!("{error:#}"), "raw JetStream measurement failed");
                failed.push(format!("raw: {error:#}"));
                None
            }
        }
    };

    let mut results = Vec::new();
    for scenario in chosen {
        status.set_message(format!("scenario {scenario:?}"));
        procs.reset_peaks();
        let before = stream_writes(&js).await;
        let cpu_before = procs.cpu_seconds();
        let result = match scenario {
            Scenario::Steady => scenarios.steady().await,
            Scenario::Max => scenarios.max().await,
            Scenario::Priority => scenarios.priority().await,
            Scenario::Noisy => scenarios.noisy().await,
            Scenario::Cache => scenarios.cache().await,
        };
        match result {
            Ok(mut r) => {
                r.peak_memory_kib = procs.peak_memory();
                let after = stream_writes(&js).await;
                let events: u64 = r.phases.iter().map(|p| p.sent).sum();
                r.jetstream_writes = writes_per_event(&before, &after, events);
                let cpu_after = procs.cpu_seconds();
                r.cpu_ms_per_event = cpu_after
                    .iter()
                    .map(|(name, secs)| {
                        let used = secs - cpu_before.get(name).copied().unwrap_or(0.0);
                        (name.clone(), 1000.0 * used / events.max(1) as f64)
                    })
                    .collect();
                results.push(r);
            }
            Err(error) => failed.push(format!("{scenario:?}: {error:#}")),
        }
        if let Some(died) = procs.someone_died() {
            anyhow::bail!("a process of the bench died: {died}");
        }
        status.set_message("waiting for the queues to drain");
        let left = scenarios.driver.drain(Duration::from_secs(300)).await;
        if left > 0 {
            warn!(
                left,
                "queues did not drain within 300 s; the next scenario starts on them"
            );
        }
    }
    Ok((raw, results, failed))
}

/// Streams whose writes are counted per event.
const COUNTED_STREAMS: [&str; 5] = [
    "LEAD_EVENTS",
    "LEAD_INTEL",
    "KV_LEAD_PROFILES",
    "KV_LEAD_STATUS",
    "LEAD_DLQ",
];

/// Last sequence and bytes of each counted stream (a stream's last sequence counts every
/// message ever written to it, whatever its limits removed since).
async fn stream_writes(js: &jetstream::Context) -> BTreeMap<&'static str, (u64, u64)> {
    let mut out = BTreeMap::new();
    for name in COUNTED_STREAMS {
        if let Ok(mut stream) = js.get_stream(name).await
            && let Ok(info) = stream.info().await
        {
            out.insert(name, (info.state.last_sequence, info.state.bytes));
        }
    }
    out
}

/// Messages and bytes written to each stream per offered event, between two readings.
fn writes_per_event(
    before: &BTreeMap<&'static str, (u64, u64)>,
    after: &BTreeMap<&'static str, (u64, u64)>,
    events: u64,
) -> BTreeMap<String, scenarios::Writes> {
    let events = events.max(1) as f64;
    after
        .iter()
        .map(|(name, (seq, bytes))| {
            let (seq0, bytes0) = before.get(name).copied().unwrap_or((0, 0));
            let writes = scenarios::Writes {
                messages_per_event: seq.saturating_sub(seq0) as f64 / events,
                stored_bytes_per_event: bytes.saturating_sub(bytes0) as f64 / events,
            };
            ((*name).to_owned(), writes)
        })
        .collect()
}

/// A short tag unique to this run: event ids and lead ids start with it, so runs against the
/// same servers never merge profiles or collide in the duplicate window.
fn run_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("b{:06x}", (nanos as u64 >> 10) & 0xff_ffff)
}
