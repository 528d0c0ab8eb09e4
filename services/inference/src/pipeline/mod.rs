//! What happens to one event: decode and validate, merge into the lead's profile, run the
//! models the event type calls for (concurrently, through the cache), publish the results,
//! and only then acknowledge.

mod locks;
mod profiles;
mod publish;
mod table;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::Message;
use backon::{ExponentialBuilder, Retryable};
use chrono::Utc;
use leadbus_shared::event::SCHEMA_VERSION;
use leadbus_shared::intel::{CacheSource, IntelType, Intelligence};
use leadbus_shared::status_recorder::StatusRecorder;
use leadbus_shared::subjects::{
    MSG_ID_HEADER, REPLAY_HEADER, event_id_from_msg_id, parse_event_subject,
};
use leadbus_shared::validate::{RejectKind, Rejection, decode_event};
use leadbus_shared::{EventType, LeadEvent};
use tracing::{debug, warn};

pub use locks::LeadLocks;
pub use profiles::{PROFILE_BUCKET, ProfileError, ProfileStore};
pub use publish::{PublishFailed, Publisher};
pub use table::{ModelSet, models_for};

use crate::cache::{IntelCache, Lookup};
use crate::models::{Fallback, ModelError, Models};
use crate::profile::LeadProfile;

/// How processing one delivery ended; the consumer loop turns it into an ack or a nak.
#[derive(Debug)]
pub enum Outcome {
    /// Results are stored in LEAD_INTEL.
    Completed,
    /// The event is stored in LEAD_DLQ with its reason.
    DeadLettered(RejectKind),
    /// A transient failure; deliver again later.
    Retry(String),
}

/// Everything processing needs, shared by all in-flight events.
#[derive(Debug)]
pub struct Pipeline {
    models: Arc<Models>,
    cache: IntelCache,
    profiles: ProfileStore,
    publisher: Publisher,
    locks: LeadLocks,
    max_payload: usize,
    max_deliver: i64,
    disabled: HashSet<String>,
    /// Event status records for `GET /v1/events/{id}` (see [`Pipeline::process`]).
    status: StatusRecorder,
}

impl Pipeline {
    /// Wires the parts together.
    pub fn new(
        models: Arc<Models>,
        cache: IntelCache,
        profiles: ProfileStore,
        publisher: Publisher,
        max_payload: usize,
        max_deliver: i64,
        disabled: &[String],
    ) -> Self {
        Pipeline {
            models,
            cache,
            profiles,
            publisher,
            locks: LeadLocks::new(4096),
            max_payload,
            max_deliver,
            disabled: disabled.iter().cloned().collect(),
            status: StatusRecorder::default(),
        }
    }

    /// The cache, for health reporting.
    pub fn cache(&self) -> &IntelCache {
        &self.cache
    }

    /// Processes one delivery of an event. Never panics on input; every path ends in an
    /// [`Outcome`].
    pub async fn process(&self, msg: &Message) -> Outcome {
        // -- event status hook (gateway, issue 5): records the phases; it never changes the
        // -- outcome. A quick event gets one record, its final phase with its start time; the
        // -- `processing` record is written only for one still running after a moment, or
        // -- one that will be retried.
        let started = Utc::now();
        let work = self.process_event(msg);
        tokio::pin!(work);
        let (outcome, marked) = tokio::select! {
            outcome = &mut work => (outcome, false),
            () = tokio::time::sleep(MARK_PROCESSING_AFTER) => {
                let ((), outcome) = tokio::join!(self.status.processing(msg), &mut work);
                (outcome, true)
            }
        };
        match &outcome {
            Outcome::Completed => self.status.completed(msg, started).await,
            Outcome::DeadLettered(kind) => self.status.dead_lettered(msg, *kind, started).await,
            Outcome::Retry(_) if !marked => self.status.processing(msg).await,
            Outcome::Retry(_) => {}
        }
        outcome
        // -- end of the event status hook
    }

    async fn process_event(&self, msg: &Message) -> Outcome {
        let started = Instant::now();
        let (stream_seq, delivered) = match msg.info() {
            Ok(info) => (info.stream_sequence, info.delivered),
            Err(_) => (0, 1),
        };
        let subject = parse_event_subject(&msg.subject);
        let header_id = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(MSG_ID_HEADER))
            .map(|v| v.as_str().to_owned());
        let tenant_token = subject.map_or("", |s| s.tenant);
        let fallback = || match header_id {
            Some(id) => event_id_from_msg_id(tenant_token, &id).to_owned(),
            None => format!("seq-{stream_seq}"),
        };

        let event = match decode_event(subject, &msg.payload, self.max_payload, fallback) {
            Ok(event) => event,
            Err(rejection) => return self.reject(msg, rejection).await,
        };

        // A replayed copy is processed like any event but answers under its own ids.
        let replay = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(REPLAY_HEADER))
            .map(|v| v.as_str().to_owned())
            .filter(|name| leadbus_shared::ids::check_token("replay", name).is_ok());

        match self.handle(&event, replay.as_deref(), started).await {
            Ok(()) => Outcome::Completed,
            Err(error) if delivered >= self.max_deliver => {
                let rejection = Rejection {
                    kind: RejectKind::RetriesExhausted,
                    reason: format!("gave up after {delivered} deliveries: {error}"),
                    event_id: Some(event.event_id.clone()),
                };
                self.reject(msg, rejection).await
            }
            Err(error) => Outcome::Retry(error),
        }
    }

    /// Dead-letters the event stored at `seq` without a delivery (one no lane can take: a
    /// subject of another shape, an unknown priority, a tenant token that is not an id),
    /// retrying until it is stored or the service stops.
    pub async fn dead_letter_stored(
        &self,
        stream: &async_nats::jetstream::stream::Stream,
        seq: u64,
        reason: &str,
    ) {
        let rejection = Rejection {
            kind: RejectKind::SubjectMismatch,
            reason: reason.to_owned(),
            event_id: None,
        };
        let attempt = || async {
            let raw = stream
                .get_raw_message(seq)
                .await
                .map_err(|e| e.to_string())?;
            self.publisher
                .dead_letter_raw(
                    &raw.subject,
                    Some(&raw.headers),
                    &raw.payload,
                    seq,
                    1,
                    &rejection,
                )
                .await
                .map_err(|e| e.to_string())
        };
        let retries = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(10))
            .with_max_times(20);
        match attempt.retry(retries).await {
            Ok(()) => {
                warn!(seq, kind = ?rejection.kind, reason = %rejection.reason, "event dead-lettered");
                metrics::counter!("leadbus_events_dead_lettered_total").increment(1);
            }
            Err(error) => {
                tracing::error!(seq, %error, "event with an invalid tenant could not be dead-lettered")
            }
        }
    }

    async fn reject(&self, msg: &Message, rejection: Rejection) -> Outcome {
        warn!(
            subject = %msg.subject,
            kind = ?rejection.kind,
            reason = %rejection.reason,
            "event dead-lettered"
        );
        match self.publisher.dead_letter(msg, &rejection).await {
            Ok(()) => {
                metrics::counter!("leadbus_events_dead_lettered_total").increment(1);
                Outcome::DeadLettered(rejection.kind)
            }
            Err(e) => Outcome::Retry(e.to_string()),
        }
    }

    /// Merge, score, publish. Holds the lead's lock throughout, so revisions reach LEAD_INTEL
    /// in order.
    async fn handle(
        &self,
        event: &LeadEvent,
        replay: Option<&str>,
        started: Instant,
    ) -> Result<(), String> {
        let id_prefix = match replay {
            Some(name) => format!("{}:replay-{name}", event.event_id),
            None => event.event_id.clone(),
        };
        let _guard = self.locks.lock(&event.tenant_id, &event.lead_id).await;

        let profile = if event.event_type == EventType::SystemHealthCheck {
            let read = || self.profiles.get(&event.tenant_id, &event.lead_id);
            read.retry(quick_retries())
                .await
                .map_err(|e| e.to_string())?
                .0
        } else {
            let merge = || self.profiles.merge(event);
            let merged = merge
                .retry(quick_retries())
                .await
                .map_err(|e| e.to_string())?;
            if !merged.applied {
                debug!(event_id = %event.event_id, "redelivered event; profile already has it");
                let (t, l, id) = (&event.tenant_id, &event.lead_id, id_prefix.as_str());
                let scan = || self.publisher.has_complete(t, l, id);
                if scan
                    .retry(quick_retries())
                    .await
                    .map_err(|e| e.to_string())?
                {
                    debug!(event_id = %event.event_id, "result already stored; nothing to publish");
                    return Ok(());
                }
            }
            merged.profile
        };

        let mut intel = self.score(event, &profile, started).await;
        intel.replay = replay.is_some();
        // Safe to repeat: every message carries its Nats-Msg-Id.
        let publish = || self.publisher.intelligence(&intel, &id_prefix);
        publish
            .retry(quick_retries())
            .await
            .map_err(|e| e.to_string())?;
        metrics::counter!("leadbus_events_processed_total", "event_type" => event.event_type.as_str())
            .increment(1);
        metrics::histogram!("leadbus_processing_seconds").record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Runs the models the event type calls for, concurrently, through the cache.
    async fn score(
        &self,
        event: &LeadEvent,
        profile: &LeadProfile,
        started: Instant,
    ) -> Intelligence {
        let set = models_for(event.event_type);
        let m = &self.models;
        let (score, churn, matches) = tokio::join!(
            self.run_part(set.lead_score, event, m.lead_score.as_ref(), profile, |i| i
                .lead_score),
            self.run_part(set.churn, event, m.churn.as_ref(), profile, |i| i.churn),
            self.run_part(set.matching, event, m.matcher.as_ref(), profile, |i| i
                .matches),
        );

        let mut cache = BTreeMap::new();
        let mut note = |name: &str, source: Option<CacheSource>| {
            if let Some(source) = source {
                cache.insert(name.to_owned(), source);
            }
        };
        note("lead_score", score.as_ref().map(|p| p.1));
        note("churn", churn.as_ref().map(|p| p.1));
        note("property_match", matches.as_ref().map(|p| p.1));
        let degraded = cache.values().any(|s| *s == CacheSource::Fallback);

        Intelligence {
            schema: SCHEMA_VERSION,
            tenant_id: event.tenant_id.clone(),
            lead_id: event.lead_id.clone(),
            event_id: event.event_id.clone(),
            revision: profile.revision,
            lead_score: score.map(|p| p.0),
            churn: churn.map(|p| p.0),
            matches: matches.map(|p| p.0),
            processing_time_ms: started.elapsed().as_secs_f64() * 1000.0,
            cache,
            degraded,
            replay: false,
            generated_at: Utc::now(),
        }
    }

    /// One model's part, and where it came from. A model that fails (or is disabled by
    /// configuration) is replaced by the lead's last published output of that model, else by
    /// the model's documented fallback; either is marked [`CacheSource::Fallback`].
    async fn run_part<M: Fallback>(
        &self,
        wanted: bool,
        event: &LeadEvent,
        model: &M,
        profile: &LeadProfile,
        extract: fn(Intelligence) -> Option<M::Output>,
    ) -> Option<(M::Output, CacheSource)> {
        if !wanted {
            return None;
        }
        let lookup = if self.disabled.contains(model.name()) {
            Lookup {
                output: Err(ModelError {
                    model: model.name(),
                    reason: "disabled by configuration".into(),
                }),
                source: CacheSource::Computed,
            }
        } else {
            let input = model.input(profile);
            self.cache.get_or_run(&event.tenant_id, model, &input).await
        };
        match lookup.output {
            Ok(output) => Some((output, lookup.source)),
            Err(error) => {
                warn!(event_id = %event.event_id, model = model.name(), %error, "model failed; using a fallback");
                metrics::counter!("leadbus_model_failures_total", "model" => model.name())
                    .increment(1);
                let intel_type = match model.name() {
                    "lead_score" => IntelType::LeadScoreUpdate,
                    "churn" => IntelType::ChurnRiskAlert,
                    _ => IntelType::PropertyMatchFound,
                };
                let last = self
                    .publisher
                    .last_intel(&event.tenant_id, &event.lead_id, intel_type)
                    .await
                    .and_then(extract);
                Some((
                    last.unwrap_or_else(|| model.fallback()),
                    CacheSource::Fallback,
                ))
            }
        }
    }
}

/// How long an event runs before its `processing` phase is recorded on its own.
const MARK_PROCESSING_AFTER: Duration = Duration::from_millis(20);

/// In-process retries for a transient NATS hiccup, before falling back to redelivery.
fn quick_retries() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(500))
        .with_max_times(3)
        .with_jitter()
}

/// The redelivery delay after `delivered` attempts: grows with each attempt, capped, so a
/// failing event never spins.
pub fn retry_delay(delivered: i64) -> Duration {
    let exp = delivered.clamp(1, 7) as u32;
    Duration::from_millis(250 * 2u64.pow(exp - 1)).min(Duration::from_secs(30))
}
