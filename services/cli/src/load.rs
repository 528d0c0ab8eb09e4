//! `leadbus load`: the main job on real input. Every row of a leads CSV becomes events
//! (a `lead_created`, then the `interaction_recorded` its activity columns describe); they
//! are published to LEAD_EVENTS, the intelligence is received over the gateway's WebSocket
//! as the tenant, and the run is summed up: counts, lead-score ROC AUC against the
//! `Converted` column, and latency from publish to receipt.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream::{self, consumer};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use leadbus_shared::auth::mint_token;
use leadbus_shared::client::{MAX_UNACKED_PUBLISHES, Producer};
use leadbus_shared::subjects::DLQ_STREAM;
use leadbus_shared::{Config, Priority, TenantId};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

use crate::load_prep::{PreparedLead, offline_auc, prepare, roc_auc};

/// Arguments of `leadbus load`.
#[derive(Debug, clap::Args)]
pub(crate) struct LoadArgs {
    /// The leads CSV (the X Education shape, with a `Converted` column).
    #[arg(long)]
    leads: PathBuf,
    /// Tenant the leads belong to and the WebSocket listens as.
    #[arg(long)]
    tenant: TenantId,
    /// Priority of the published events.
    #[arg(long, default_value = "medium")]
    priority: Priority,
    /// Gateway WebSocket URL; defaults to the configured gateway address.
    #[arg(long)]
    gateway: Option<String>,
    /// Prefix of the lead ids of this run, so runs never merge into each other's profiles;
    /// random when not given.
    #[arg(long)]
    run_id: Option<String>,
    /// Publish at this many events per second (open loop); 0 publishes as fast as the stream
    /// acknowledges, so latency then includes the time queued behind the burst.
    #[arg(long, default_value_t = 0)]
    rate: u32,
    /// Give up when nothing arrives for this many seconds.
    #[arg(long, default_value_t = 60)]
    idle_timeout_secs: u64,
    /// Exit non-zero unless every event is accounted for and the AUC through the bus equals
    /// the offline AUC (to 3 decimals).
    #[arg(long)]
    check: bool,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    intel_type: Option<String>,
    data: Option<Complete>,
}

#[derive(Debug, Deserialize)]
struct Complete {
    event_id: String,
    lead_id: String,
    revision: u64,
    lead_score: Option<Score>,
}

#[derive(Debug, Deserialize)]
struct Score {
    score: f64,
}

#[derive(Debug, Default)]
struct Received {
    /// event id -> latency in microseconds
    completes: HashMap<String, u64>,
    /// lead id -> (revision, score) of the newest intelligence
    newest: HashMap<String, (u64, Option<f64>)>,
    duplicates: u64,
    last_arrival: Option<Instant>,
}

/// Runs the load and prints the summary.
pub(crate) async fn run(config: &Config, args: LoadArgs) -> anyhow::Result<()> {
    let run_id = args.run_id.clone().unwrap_or_else(uuid_prefix);
    // The reader's error names the file already.
    let leads = prepare(&args.leads, &args.tenant, args.priority, &run_id)?;
    let total_events: usize = leads.iter().map(|l| l.events.len()).sum();
    eprintln!(
        "{} leads, {total_events} events (run {run_id})",
        leads.len()
    );

    let nats = async_nats::connect(&config.nats_url)
        .await
        .with_context(|| format!("cannot connect to NATS at {}", config.nats_url))?;
    let js = jetstream::new(nats.clone());

    // Count dead letters of this tenant published from now on.
    let dlq_count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let dlq_task = {
        let stream = js
            .get_stream(DLQ_STREAM)
            .await
            .context("LEAD_DLQ missing: is the platform running?")?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: format!("leads.dlq.{}.>", args.tenant),
                deliver_policy: consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        let count = Arc::clone(&dlq_count);
        tokio::spawn(async move {
            while let Some(Ok(_)) = messages.next().await {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };

    // Listen before publishing.
    let url = args
        .gateway
        .clone()
        .unwrap_or_else(|| format!("ws://{}/v1/ws", config.gateway_listen));
    let token = mint_token(
        &config.jwt_secret,
        "leadbus-load",
        &args.tenant,
        Duration::from_secs(3600),
    )?;
    let (ws, _) = tokio_tungstenite::connect_async(format!("{url}?access_token={token}"))
        .await
        .with_context(|| {
            format!("cannot open the gateway WebSocket at {url}: is `leadbus run` up?")
        })?;
    let (mut ws_tx, mut ws_rx) = ws.split();
    wait_ready(&mut ws_rx).await?;
    ws_tx
        .send(Message::text(
            r#"{"type":"subscribe","intel_types":["intelligence_complete"]}"#,
        ))
        .await?;

    let published: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let received: Arc<Mutex<Received>> = Arc::default();
    let reader = {
        let published = Arc::clone(&published);
        let received = Arc::clone(&received);
        tokio::spawn(async move {
            while let Some(Ok(msg)) = ws_rx.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(env) = serde_json::from_str::<Envelope>(&text) else {
                    continue;
                };
                if env.kind != "intel" || env.intel_type.as_deref() != Some("intelligence_complete")
                {
                    continue;
                }
                let Some(c) = env.data else { continue };
                let now = Instant::now();
                let sent = published.lock().await.get(&c.event_id).copied();
                let mut r = received.lock().await;
                r.last_arrival = Some(now);
                let Some(sent) = sent else { continue };
                let latency = now.saturating_duration_since(sent).as_micros() as u64;
                if r.completes.insert(c.event_id, latency).is_some() {
                    r.duplicates += 1;
                }
                let score = c.lead_score.map(|s| s.score);
                let entry = r.newest.entry(c.lead_id).or_insert((0, None));
                if c.revision >= entry.0 {
                    *entry = (c.revision, score);
                }
            }
        })
    };

    let started = Instant::now();
    let producer = Producer::connect(nats);
    let mut acks = futures::stream::FuturesUnordered::new();
    for (i, event) in leads.iter().flat_map(|l| l.events.iter()).enumerate() {
        if args.rate > 0 {
            let due = started + Duration::from_secs_f64(i as f64 / f64::from(args.rate));
            tokio::time::sleep_until(due.into()).await;
        }
        published
            .lock()
            .await
            .insert(event.event_id.clone(), Instant::now());
        // Sent now; its acknowledgement is awaited with the others.
        let ack = producer
            .send(event)
            .await
            .with_context(|| format!("publishing {}", event.event_id))?;
        acks.push(ack.into_future());
        // The producer bounds the publishes awaiting their ack; this bounds the results
        // kept here before they are checked.
        while acks.len() >= MAX_UNACKED_PUBLISHES {
            if let Some(result) = acks.next().await {
                result.context("the stream did not store an event")?;
            }
        }
    }
    while let Some(result) = acks.next().await {
        result.context("the stream did not store an event")?;
    }
    let publish_secs = started.elapsed().as_secs_f64();
    eprintln!("published {total_events} events in {publish_secs:.1} s; waiting for intelligence");

    let idle = Duration::from_secs(args.idle_timeout_secs);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r = received.lock().await;
        let dead = dlq_count.load(std::sync::atomic::Ordering::Relaxed) as usize;
        if r.completes.len() + dead >= total_events {
            break;
        }
        let last = r.last_arrival.unwrap_or(started).max(started);
        if last.elapsed() > idle {
            eprintln!("nothing arrived for {} s; giving up", idle.as_secs());
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    reader.abort();
    dlq_task.abort();

    let r = received.lock().await;
    let dead = dlq_count.load(std::sync::atomic::Ordering::Relaxed) as usize;
    let report = Report::build(&leads, &r, dead, total_events, elapsed, &args, config)?;
    report.print();
    if args.check {
        report.check()?;
    }
    Ok(())
}

async fn wait_ready<S>(rx: &mut S) -> anyhow::Result<()>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let first = tokio::time::timeout(Duration::from_secs(10), rx.next()).await;
    match first {
        Ok(Some(Ok(Message::Text(t)))) if t.contains("\"ready\"") => Ok(()),
        Ok(other) => bail!("gateway did not say ready: {other:?}"),
        Err(_) => bail!("gateway did not say ready within 10 s"),
    }
}

fn uuid_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("r{:x}", (nanos as u64) & 0xff_ffff)
}

struct Report {
    leads: usize,
    leads_with_intel: usize,
    published: usize,
    received: usize,
    dead: usize,
    lost: usize,
    duplicates: u64,
    auc_bus: Option<f64>,
    auc_offline: Option<f64>,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    elapsed: f64,
}

impl Report {
    fn build(
        leads: &[PreparedLead],
        r: &Received,
        dead: usize,
        published: usize,
        elapsed: f64,
        args: &LoadArgs,
        config: &Config,
    ) -> anyhow::Result<Report> {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
        for &us in r.completes.values() {
            hist.record(us.max(1))?;
        }
        let mut scores = Vec::new();
        let mut labels = Vec::new();
        let mut with_intel = 0;
        for lead in leads {
            if let Some((_, score)) = r.newest.get(lead.lead_id.as_str()) {
                with_intel += 1;
                if let (Some(s), Some(label)) = (score, lead.converted) {
                    scores.push(*s);
                    labels.push(label);
                }
            }
        }
        let received = r.completes.len();
        Ok(Report {
            leads: leads.len(),
            leads_with_intel: with_intel,
            published,
            received,
            dead,
            lost: published.saturating_sub(received + dead),
            duplicates: r.duplicates,
            auc_bus: roc_auc(&scores, &labels),
            auc_offline: offline_auc(&args.leads, config).ok(),
            p50_ms: hist.value_at_quantile(0.50) as f64 / 1000.0,
            p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
            max_ms: hist.max() as f64 / 1000.0,
            elapsed,
        })
    }

    fn print(&self) {
        let auc = |v: Option<f64>| v.map_or("n/a".to_owned(), |a| format!("{a:.4}"));
        println!("leads                      {}", self.leads);
        println!("leads with intelligence    {}", self.leads_with_intel);
        println!("events published           {}", self.published);
        println!("intelligence received      {}", self.received);
        println!("events dead-lettered       {}", self.dead);
        println!("events lost                {}", self.lost);
        println!("duplicate results          {}", self.duplicates);
        println!("lead-score ROC AUC (bus)   {}", auc(self.auc_bus));
        println!("lead-score ROC AUC (model) {}", auc(self.auc_offline));
        println!(
            "latency publish->websocket p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            self.p50_ms, self.p99_ms, self.max_ms
        );
        println!(
            "throughput                 {:.0} events/s over {:.1} s",
            self.received as f64 / self.elapsed.max(1e-9),
            self.elapsed
        );
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.lost > 0 || self.leads_with_intel < self.leads {
            bail!(
                "{} events lost, {} of {} leads without intelligence",
                self.lost,
                self.leads - self.leads_with_intel,
                self.leads
            );
        }
        if self.duplicates > 0 {
            bail!("{} duplicate results", self.duplicates);
        }
        match (self.auc_bus, self.auc_offline) {
            (Some(bus), Some(model)) if (bus * 1000.0).round() == (model * 1000.0).round() => {
                Ok(())
            }
            (bus, model) => bail!("AUC through the bus {bus:?} differs from the model's {model:?}"),
        }
    }
}
