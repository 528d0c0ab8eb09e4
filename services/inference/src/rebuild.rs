//! Rebuild: lead profiles and the Redis cache, from LEAD_EVENTS, after the profile bucket or
//! Redis was emptied.
//!
//! Every event that decodes (replay copies excluded) is merged into its lead's profile in
//! stream order; the merge is order-independent and keyed by event id, so the result is the
//! profile live processing would have built. Profiles are written over whatever is stored;
//! then each lead's model outputs are computed and written to both cache levels.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use leadbus_shared::subjects::{
    EVENTS_STREAM, MSG_ID_HEADER, REPLAY_HEADER, event_id_from_msg_id, parse_event_subject,
};
use leadbus_shared::validate::decode_event;
use leadbus_shared::{LeadId, TenantId};
use tracing::{info, warn};

use crate::cache::IntelCache;
use crate::models::{Model, Models};
use crate::pipeline::ProfileStore;
use crate::profile::LeadProfile;

/// Figures of a rebuild.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RebuildProgress {
    /// Events read from LEAD_EVENTS.
    pub events_read: u64,
    /// Events that did not decode (they are in LEAD_DLQ) or were replay copies.
    pub events_skipped: u64,
    /// Events in the stream in all.
    pub events_total: u64,
    /// Profiles written.
    pub profiles_written: u64,
    /// Model outputs written to Redis.
    pub cache_entries: u64,
    /// Model outputs Redis did not take.
    pub cache_failures: u64,
}

/// A rebuild could not run.
#[derive(Debug, thiserror::Error)]
#[error("rebuild failed: {0}")]
pub struct RebuildError(String);

fn err(e: impl std::fmt::Display) -> RebuildError {
    RebuildError(e.to_string())
}

/// True when an inference service is consuming LEAD_EVENTS: its discovery consumer holds a
/// waiting pull (a live service always keeps one). Looked at a few times over half a second,
/// so the moment between two pulls does not hide a running service.
pub async fn inference_running(js: &jetstream::Context) -> Result<bool, RebuildError> {
    let stream = js.get_stream(EVENTS_STREAM).await.map_err(err)?;
    let name = crate::consume::discovery_name();
    for attempt in 0..5 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
        match stream.consumer_info(&name).await {
            Ok(info) if info.num_waiting > 0 => return Ok(true),
            Ok(_) => {}
            // No discovery consumer: no service has ever run here.
            Err(e) if matches!(e.kind(), ConsumerInfoErrorKind::NotFound) => return Ok(false),
            Err(e) => return Err(err(e)),
        }
    }
    Ok(false)
}

/// Rebuilds profiles and cache. Run it with the inference service stopped (see
/// [`inference_running`]): events processed during a rebuild could be overwritten by an older
/// profile.
// Holds every profile in memory at once; a stream with millions of leads needs a per-lead pass.
pub async fn run_rebuild(
    js: &jetstream::Context,
    profiles: &ProfileStore,
    models: &Arc<Models>,
    cache: &IntelCache,
    max_payload: usize,
    mut on_progress: impl FnMut(RebuildProgress),
) -> Result<RebuildProgress, RebuildError> {
    let stream = js.get_stream(EVENTS_STREAM).await.map_err(err)?;
    let ordered = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: "leads.events.>".into(),
            ..Default::default()
        })
        .await
        .map_err(err)?;
    let mut progress = RebuildProgress {
        events_total: ordered.cached_info().num_pending,
        ..Default::default()
    };
    let mut messages = ordered.messages().await.map_err(err)?;
    let mut leads: HashMap<(TenantId, LeadId), LeadProfile> = HashMap::new();

    while progress.events_read + progress.events_skipped < progress.events_total {
        let msg = match tokio::time::timeout(Duration::from_secs(10), messages.next()).await {
            Ok(Some(Ok(msg))) => msg,
            Ok(Some(Err(e))) => return Err(err(e)),
            Ok(None) | Err(_) => return Err(RebuildError("LEAD_EVENTS stopped delivering".into())),
        };
        let headers = msg.headers.as_ref();
        if headers.and_then(|h| h.get(REPLAY_HEADER)).is_some() {
            progress.events_skipped += 1;
            continue;
        }
        let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
        let subject = parse_event_subject(&msg.subject);
        let tenant_token = subject.map_or("", |s| s.tenant);
        let fallback = || {
            headers.and_then(|h| h.get(MSG_ID_HEADER)).map_or_else(
                || format!("seq-{seq}"),
                |v| event_id_from_msg_id(tenant_token, v.as_str()).to_owned(),
            )
        };
        match decode_event(subject, &msg.payload, max_payload, fallback) {
            Ok(event) => {
                let key = (event.tenant_id.clone(), event.lead_id.clone());
                leads
                    .entry(key)
                    .or_insert_with(|| {
                        LeadProfile::new(event.tenant_id.clone(), event.lead_id.clone())
                    })
                    .apply(&event);
                progress.events_read += 1;
            }
            Err(_) => progress.events_skipped += 1,
        }
        if (progress.events_read + progress.events_skipped).is_multiple_of(1000) {
            on_progress(progress);
        }
    }
    on_progress(progress);

    for ((tenant, _), profile) in &leads {
        profiles.put(profile).await.map_err(err)?;
        progress.profiles_written += 1;
        let mut count = |stored: Result<bool, crate::models::ModelError>| match stored {
            Ok(true) => progress.cache_entries += 1,
            Ok(false) => progress.cache_failures += 1,
            Err(error) => warn!(%error, "model failed during rebuild"),
        };
        count(warm(cache, tenant, models.lead_score.as_ref(), profile).await);
        count(warm(cache, tenant, models.churn.as_ref(), profile).await);
        if profile.preferences().is_some() {
            count(warm(cache, tenant, models.matcher.as_ref(), profile).await);
        }
        if progress.profiles_written.is_multiple_of(200) {
            on_progress(progress);
        }
    }
    on_progress(progress);
    info!(?progress, "rebuild finished");
    Ok(progress)
}

async fn warm<M: Model>(
    cache: &IntelCache,
    tenant: &TenantId,
    model: &M,
    profile: &LeadProfile,
) -> Result<bool, crate::models::ModelError> {
    cache.warm(tenant, model, &model.input(profile)).await
}
