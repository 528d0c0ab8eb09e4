//! What happens to one event: decode and validate, merge into the lead's profile, run the
//! models the event type calls for (concurrently, through the cache), publish the results,
//! and only then acknowledge.

mod locks;
mod profiles;
mod publish;
mod table;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::Message;
use chrono::Utc;
use leadbus_shared::event::SCHEMA_VERSION;
use leadbus_shared::intel::{CacheSource, Intelligence};
use leadbus_shared::status_recorder::StatusRecorder;
use leadbus_shared::subjects::{MSG_ID_HEADER, parse_event_subject};
use leadbus_shared::validate::{RejectKind, Rejection, decode_event};
use leadbus_shared::{EventType, LeadEvent};
use tracing::{debug, warn};

pub use locks::LeadLocks;
pub use profiles::{PROFILE_BUCKET, ProfileError, ProfileStore};
pub use publish::{PublishFailed, Publisher};
pub use table::{ModelSet, models_for};

use crate::cache::{IntelCache, Lookup};
use crate::models::{Model, Models};
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
    replay: bool,
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
    ) -> Self {
        Pipeline {
            models,
            cache,
            profiles,
            publisher,
            locks: LeadLocks::new(4096),
            max_payload,
            max_deliver,
            replay: false,
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
        // -- event status hook (gateway, issue 5): records processing, then the final phase;
        // -- it never changes the outcome.
        self.status.processing(msg).await;
        let outcome = self.process_event(msg).await;
        match &outcome {
            Outcome::Completed => self.status.completed(msg).await,
            Outcome::DeadLettered(kind) => self.status.dead_lettered(msg, *kind).await,
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
        let fallback = || header_id.unwrap_or_else(|| format!("seq-{stream_seq}"));

        let event = match decode_event(subject, &msg.payload, self.max_payload, fallback) {
            Ok(event) => event,
            Err(rejection) => return self.reject(msg, rejection).await,
        };

        match self.handle(&event, started).await {
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
    async fn handle(&self, event: &LeadEvent, started: Instant) -> Result<(), String> {
        let _guard = self.locks.lock(&event.tenant_id, &event.lead_id).await;

        let profile = if event.event_type == EventType::SystemHealthCheck {
            self.profiles
                .get(&event.tenant_id, &event.lead_id)
                .await
                .map_err(|e| e.to_string())?
                .0
        } else {
            let merged = self
                .profiles
                .merge(event)
                .await
                .map_err(|e| e.to_string())?;
            if !merged.applied {
                debug!(event_id = %event.event_id, "redelivered event; profile already has it");
            }
            merged.profile
        };

        let intel = self.score(event, &profile, started).await;
        self.publisher
            .intelligence(&intel)
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
        let tenant = &event.tenant_id;
        let m = &self.models;
        let (score, churn, matches) = tokio::join!(
            self.maybe_run(set.lead_score, tenant, m.lead_score.as_ref(), profile),
            self.maybe_run(set.churn, tenant, m.churn.as_ref(), profile),
            self.maybe_run(set.matching, tenant, m.matcher.as_ref(), profile),
        );

        let mut cache = BTreeMap::new();
        let mut degraded = false;
        let id = event.event_id.as_str();
        let lead_score = take_part("lead_score", score, &mut cache, &mut degraded, id);
        let churn = take_part("churn", churn, &mut cache, &mut degraded, id);
        let matches = take_part("property_match", matches, &mut cache, &mut degraded, id);

        Intelligence {
            schema: SCHEMA_VERSION,
            tenant_id: event.tenant_id.clone(),
            lead_id: event.lead_id.clone(),
            event_id: event.event_id.clone(),
            revision: profile.revision,
            lead_score,
            churn,
            matches,
            processing_time_ms: started.elapsed().as_secs_f64() * 1000.0,
            cache,
            degraded,
            replay: self.replay,
            generated_at: Utc::now(),
        }
    }

    async fn maybe_run<M: Model>(
        &self,
        wanted: bool,
        tenant: &leadbus_shared::TenantId,
        model: &M,
        profile: &LeadProfile,
    ) -> Option<Lookup<M::Output>> {
        if !wanted {
            return None;
        }
        let input = model.input(profile);
        Some(self.cache.get_or_run(tenant, model, &input).await)
    }
}

/// Records where a part came from; a failed model leaves its part out and marks the result
/// degraded (no fallback value yet).
fn take_part<T>(
    name: &str,
    lookup: Option<Lookup<T>>,
    cache: &mut BTreeMap<String, CacheSource>,
    degraded: &mut bool,
    event_id: &str,
) -> Option<T> {
    let lookup = lookup?;
    match lookup.output {
        Ok(output) => {
            cache.insert(name.to_owned(), lookup.source);
            Some(output)
        }
        Err(error) => {
            warn!(event_id, %error, "model failed");
            *degraded = true;
            cache.insert(name.to_owned(), CacheSource::Fallback);
            None
        }
    }
}

/// The redelivery delay after `delivered` attempts: grows with each attempt, capped, so a
/// failing event never spins.
pub fn retry_delay(delivered: i64) -> Duration {
    let exp = delivered.clamp(1, 7) as u32;
    Duration::from_millis(250 * 2u64.pow(exp - 1)).min(Duration::from_secs(30))
}
