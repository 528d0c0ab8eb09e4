//! `leadbus replay` and `leadbus rebuild`: reprocess the durable streams, with a progress bar
//! and a summary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use leadbus_inference::cache::{CacheConfig, IntelCache, RedisL2};
use leadbus_inference::models::Models;
use leadbus_inference::pipeline::ProfileStore;
use leadbus_inference::rebuild::{inference_running, run_rebuild};
use leadbus_inference::replay::{ReplaySpec, run_replay};
use leadbus_shared::{Config, EventType, LeadId, TenantId};

/// Arguments of `leadbus replay`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    /// Names the replay; running it again with the same name continues where it stopped.
    #[arg(long)]
    name: String,
    /// Start of the range (RFC 3339, e.g. 2026-12-01T00:00:00Z).
    #[arg(long)]
    from: DateTime<Utc>,
    /// End of the range; now when not given.
    #[arg(long)]
    to: Option<DateTime<Utc>>,
    /// Only this tenant's events.
    #[arg(long)]
    tenant: Option<TenantId>,
    /// Only this lead's events.
    #[arg(long)]
    lead: Option<LeadId>,
    /// Only these event types (comma separated).
    #[arg(long, value_delimiter = ',')]
    types: Vec<EventType>,
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template(&format!(
        "{what} [{{bar:40}}] {{pos}}/{{len}} {{per_sec}} eta {{eta}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

async fn jetstream(config: &Config) -> anyhow::Result<async_nats::jetstream::Context> {
    let nats = async_nats::connect(&config.nats_url)
        .await
        .with_context(|| format!("cannot connect to NATS at {}", config.nats_url))?;
    Ok(async_nats::jetstream::new(nats))
}

/// Copies the selected events for reprocessing at low priority.
pub(crate) async fn replay(config: &Config, args: ReplayArgs) -> anyhow::Result<()> {
    let js = jetstream(config).await?;
    let spec = ReplaySpec {
        name: args.name,
        from: args.from,
        to: args.to.unwrap_or_else(Utc::now),
        tenant: args.tenant,
        lead: args.lead,
        event_types: args.types,
    };
    let started = Instant::now();
    let progress = bar(0, "replay");
    let result = run_replay(&js, &spec, None, |p| {
        progress.set_length(p.replayed + p.skipped + p.remaining);
        progress.set_position(p.replayed + p.skipped);
    })
    .await?;
    progress.finish_and_clear();
    println!(
        "replay {}: {} events queued for reprocessing at low priority, {} skipped, in {:.1} s; \
         results arrive on LEAD_INTEL marked \"replay\": true",
        spec.name,
        result.replayed,
        result.skipped,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Rebuilds lead profiles and the Redis cache from LEAD_EVENTS.
/// Arguments of `leadbus rebuild`.
#[derive(Debug, clap::Args)]
pub(crate) struct RebuildArgs {
    /// Run even though an inference service is consuming (its profile writes may then be
    /// overwritten by the rebuilt, older profile).
    #[arg(long)]
    force: bool,
}

pub(crate) async fn rebuild(config: &Config, args: RebuildArgs) -> anyhow::Result<()> {
    let js = jetstream(config).await?;
    if !args.force && inference_running(&js).await? {
        anyhow::bail!(
            "an inference service is consuming LEAD_EVENTS: stop it first (a profile it writes \
             during the rebuild could be overwritten by an older one), or pass --force"
        );
    }
    let models = Arc::new(
        Models::load(config.models_dir.as_deref(), &config.data_dir)
            .context("cannot load models")?,
    );
    let profiles = ProfileStore::open(&js, config.profile_cache_entries).await?;
    let l2 = RedisL2::new(
        &config.redis_url,
        Duration::from_millis(config.redis_timeout_ms),
    )?;
    let cache = IntelCache::new(&CacheConfig::from(config), Some(l2));
    let started = Instant::now();
    let progress = bar(0, "rebuild");
    let result = run_rebuild(
        &js,
        &profiles,
        &models,
        &cache,
        config.max_payload_bytes,
        |p| {
            progress.set_length(p.events_total);
            progress.set_position(p.events_read + p.events_skipped);
        },
    )
    .await?;
    progress.finish_and_clear();
    println!(
        "rebuild: {} events read ({} skipped), {} profiles written, {} cache entries written \
         ({} refused by Redis), in {:.1} s",
        result.events_read,
        result.events_skipped,
        result.profiles_written,
        result.cache_entries,
        result.cache_failures,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
