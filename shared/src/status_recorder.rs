//! The status writer the inference pipeline calls: it finds the event's tenant and id on the
//! delivery itself, opens the bucket on first use, and never fails or slows processing (a
//! status that cannot be written is logged and counted, nothing more).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::jetstream::Message;
use chrono::{DateTime, Utc};
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

    /// Marks the delivery's event as being processed, without waiting for the stream. The
    /// pipeline calls it only for a delivery still running after a moment, or one that will
    /// be retried: a quick event's final record carries its start instead, one write less.
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

    /// Records that the delivery's intelligence is stored; its processing began at `started`.
    pub async fn completed(&self, msg: &Message, started: DateTime<Utc>) {
        self.finished(msg, Phase::Completed, None, started).await;
    }

    /// Records that the delivery's event is stored in LEAD_DLQ, and why.
    pub async fn dead_lettered(&self, msg: &Message, kind: RejectKind, started: DateTime<Utc>) {
        let reason = serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        self.finished(msg, Phase::DeadLettered, reason, started)
            .await;
    }

    /// Sends a final phase, carrying when processing began, and leaves the wait for the
    /// stream's acknowledgement to a task of its own: the event's ack does not wait on it.
    async fn finished(
        &self,
        msg: &Message,
        phase: Phase,
        reason: Option<String>,
        started: DateTime<Utc>,
    ) {
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
            started_at: Some(started),
            ..PhaseRecord::now()
        };
        let ack = match store.send(&tenant, &id, phase, &record).await {
            Ok(ack) => ack,
            Err(error) => return write_failed(&error.to_string(), &id, phase),
        };
        tokio::spawn(async move {
            match tokio::time::timeout(WRITE_WAIT, ack).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => write_failed(&error.to_string(), &id, phase),
                Err(_) => write_failed(&format!("not stored within {WRITE_WAIT:?}"), &id, phase),
            }
        });
    }
}

fn write_failed(error: &str, event_id: &str, phase: Phase) {
    warn!(%error, %event_id, phase = phase.as_str(), "event status not written");
    metrics::counter!("leadbus_status_write_failures_total").increment(1);
}
