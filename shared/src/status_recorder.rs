//! The status writer the inference pipeline calls: it finds the event's tenant and id on the
//! delivery itself, opens the bucket on first use, and never fails or slows processing (a
//! status that cannot be written is logged and counted, nothing more).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::jetstream::Message;
use serde::Deserialize;
use tokio::sync::OnceCell;
use tracing::{debug, warn};

use crate::ids::TenantId;
use crate::status::{Phase, PhaseRecord, StatusStore};
use crate::subjects::{MSG_ID_HEADER, parse_event_subject};
use crate::validate::RejectKind;

/// How long a bucket that could not be opened is left alone before the next attempt.
const REOPEN_AFTER: Duration = Duration::from_secs(30);
/// Longest wait for the stream to store a final phase.
const WRITE_WAIT: Duration = Duration::from_secs(2);
/// Entry lifetime when this writer creates the bucket (the gateway normally has).
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Records `processing`, `completed` and `dead_lettered` for deliveries of LEAD_EVENTS.
#[derive(Debug, Default)]
pub struct StatusRecorder {
    store: OnceCell<StatusStore>,
    failed_at: Mutex<Option<Instant>>,
}

#[derive(Deserialize)]
struct IdOnly {
    event_id: Option<String>,
}

/// Tenant and event id of a delivery, found the way the pipeline finds them.
fn identify(msg: &Message) -> Option<(TenantId, String, Option<u64>, String)> {
    let subject = parse_event_subject(&msg.subject)?;
    let tenant = TenantId::new(subject.tenant).ok()?;
    let seq = msg.info().ok().map(|i| i.stream_sequence);
    let header = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(MSG_ID_HEADER))
        .map(|v| v.as_str().to_owned());
    let id = match header {
        Some(id) => crate::subjects::event_id_from_msg_id(tenant.as_str(), &id).to_owned(),
        None => serde_json::from_slice::<IdOnly>(&msg.payload)
            .ok()
            .and_then(|b| b.event_id)
            .unwrap_or_else(|| format!("seq-{}", seq.unwrap_or(0))),
    };
    Some((tenant, id, seq, subject.lead.to_owned()))
}

impl StatusRecorder {
    async fn store(&self, msg: &Message) -> Option<&StatusStore> {
        if let Some(store) = self.store.get() {
            return Some(store);
        }
        if let Ok(failed) = self.failed_at.lock()
            && failed.is_some_and(|at| at.elapsed() < REOPEN_AFTER)
        {
            return None;
        }
        match self
            .store
            .get_or_try_init(|| StatusStore::open(&msg.context, DEFAULT_MAX_AGE))
            .await
        {
            Ok(store) => Some(store),
            Err(error) => {
                warn!(%error, "event status bucket unavailable; statuses are not recorded");
                if let Ok(mut failed) = self.failed_at.lock() {
                    *failed = Some(Instant::now());
                }
                None
            }
        }
    }

    /// Marks the delivery's event as being processed, without waiting for the stream.
    pub async fn processing(&self, msg: &Message) {
        let Some((tenant, id, seq, lead)) = identify(msg) else {
            return;
        };
        let Some(store) = self.store(msg).await else {
            return;
        };
        let record = PhaseRecord {
            lead_id: Some(lead),
            stream_sequence: seq,
            ..PhaseRecord::now()
        };
        // The ack is not awaited: this phase is informative, and the final one follows.
        if let Err(error) = store.send(&tenant, &id, Phase::Processing, &record).await {
            debug!(%error, event_id = %id, "processing status not written");
            metrics::counter!("leadbus_status_write_failures_total").increment(1);
        }
    }

    /// Records that the delivery's intelligence is stored.
    pub async fn completed(&self, msg: &Message) {
        self.finished(msg, Phase::Completed, None).await;
    }

    /// Records that the delivery's event is stored in LEAD_DLQ, and why.
    pub async fn dead_lettered(&self, msg: &Message, kind: RejectKind) {
        let reason = serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        self.finished(msg, Phase::DeadLettered, reason).await;
    }

    /// Records a final phase and waits, briefly, for the stream to store it.
    async fn finished(&self, msg: &Message, phase: Phase, reason: Option<String>) {
        let Some((tenant, id, seq, lead)) = identify(msg) else {
            return;
        };
        let Some(store) = self.store(msg).await else {
            return;
        };
        let record = PhaseRecord {
            lead_id: Some(lead),
            stream_sequence: seq,
            reason,
            ..PhaseRecord::now()
        };
        let write = store.record(&tenant, &id, phase, &record);
        let failed = match tokio::time::timeout(WRITE_WAIT, write).await {
            Ok(Ok(())) => return,
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("not stored within {WRITE_WAIT:?}"),
        };
        warn!(error = %failed, event_id = %id, phase = phase.as_str(), "event status not written");
        metrics::counter!("leadbus_status_write_failures_total").increment(1);
    }
}
