//! Where each event is in its life: accepted (stored in LEAD_EVENTS by the gateway's ingest),
//! processing (picked up by an inference service), completed (its `intelligence_complete` is
//! stored) or dead-lettered (stored in LEAD_DLQ with a reason).
//!
//! The store is a JetStream key-value bucket, `LEAD_STATUS`, with one key per event and
//! phase: `{tenant}.{event id}.{phase}`. Every writer only ever puts its own phase, so
//! writers never race and a status never goes backwards; a read takes the furthest phase
//! present. The tenant leads the key, so one tenant's lookup can never find another's event.

use std::time::Duration;

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::{self, kv};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::TenantId;

/// Bucket name.
pub const STATUS_BUCKET: &str = "LEAD_STATUS";
const BUCKET_STREAM: &str = "KV_LEAD_STATUS";
const BUCKET_DEFINITION: &str = include_str!("../../nats/streams/kv_lead_status.json");

/// A phase of an event's life, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Stored in LEAD_EVENTS by the gateway.
    Accepted,
    /// An inference service has started on it.
    Processing,
    /// Its intelligence is stored in LEAD_INTEL.
    Completed,
    /// It is stored in LEAD_DLQ with a reason.
    DeadLettered,
}

impl Phase {
    /// Every phase, earliest first.
    pub const ALL: [Phase; 4] = [
        Phase::Accepted,
        Phase::Processing,
        Phase::Completed,
        Phase::DeadLettered,
    ];

    /// The key token of this phase.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Accepted => "accepted",
            Phase::Processing => "processing",
            Phase::Completed => "completed",
            Phase::DeadLettered => "dead_lettered",
        }
    }
}

/// What one writer records about one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseRecord {
    /// When the phase was reached.
    pub at: DateTime<Utc>,
    /// The lead, when the writer knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<String>,
    /// Sequence in LEAD_EVENTS, when the writer knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_sequence: Option<u64>,
    /// Why, for a dead letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// On a final phase: when processing of the delivery that reached it began (a quick
    /// event has no `processing` record of its own; see `status_recorder`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
}

impl PhaseRecord {
    /// A record stamped now.
    pub fn now() -> Self {
        PhaseRecord {
            at: Utc::now(),
            lead_id: None,
            stream_sequence: None,
            reason: None,
            started_at: None,
        }
    }
}

/// The status of one event, as `GET /v1/events/{event_id}` answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventStatus {
    /// The event.
    pub event_id: String,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its lead, when known.
    pub lead_id: Option<String>,
    /// The furthest phase reached.
    pub status: Phase,
    /// Sequence in LEAD_EVENTS, when known.
    pub stream_sequence: Option<u64>,
    /// When the gateway stored it (absent for events published straight to NATS).
    pub accepted_at: Option<DateTime<Utc>>,
    /// When processing started (the latest delivery).
    pub processing_at: Option<DateTime<Utc>>,
    /// When its intelligence was stored.
    pub completed_at: Option<DateTime<Utc>>,
    /// When it was dead-lettered.
    pub dead_lettered_at: Option<DateTime<Utc>>,
    /// Why it was dead-lettered.
    pub reason: Option<String>,
}

impl EventStatus {
    /// Folds the phase records of one event; `None` when there are none.
    pub fn from_records(
        tenant: &TenantId,
        event_id: &str,
        records: &[(Phase, PhaseRecord)],
    ) -> Option<EventStatus> {
        let furthest = records.iter().map(|(p, _)| *p).max()?;
        let find = |phase: Phase| records.iter().find(|(p, _)| *p == phase).map(|(_, r)| r);
        let any = |f: fn(&PhaseRecord) -> Option<_>| records.iter().find_map(|(_, r)| f(r));
        Some(EventStatus {
            event_id: event_id.to_owned(),
            tenant_id: tenant.clone(),
            lead_id: records.iter().find_map(|(_, r)| r.lead_id.clone()),
            status: furthest,
            stream_sequence: any(|r| r.stream_sequence),
            accepted_at: find(Phase::Accepted).map(|r| r.at),
            // The final phase's start is the latest delivery's; else the processing record.
            processing_at: [Phase::Completed, Phase::DeadLettered]
                .into_iter()
                .find_map(|p| find(p).and_then(|r| r.started_at))
                .or_else(|| find(Phase::Processing).map(|r| r.at)),
            completed_at: find(Phase::Completed).map(|r| r.at),
            dead_lettered_at: find(Phase::DeadLettered).map(|r| r.at),
            reason: find(Phase::DeadLettered).and_then(|r| r.reason.clone()),
        })
    }
}

/// A status read or write failed.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The bucket could not be created or opened.
    #[error("status bucket unavailable: {0}")]
    Bucket(String),
    /// Reading failed.
    #[error("status read failed: {0}")]
    Read(String),
    /// Writing failed.
    #[error("status write failed: {0}")]
    Write(String),
}

/// The status bucket.
#[derive(Debug, Clone)]
pub struct StatusStore {
    js: jetstream::Context,
    kv: kv::Store,
}

impl StatusStore {
    /// Opens the bucket, creating its stream from `nats/streams/kv_lead_status.json` (entries
    /// kept for `max_age`) when it is missing. Like the profile bucket, the stream is created
    /// directly: the client's bucket helper reads account info nats-server 2.9 does not send.
    pub async fn open(js: &jetstream::Context, max_age: Duration) -> Result<Self, StatusError> {
        if js.get_stream(BUCKET_STREAM).await.is_err() {
            let mut config: jetstream::stream::Config = serde_json::from_str(BUCKET_DEFINITION)
                .map_err(|e| StatusError::Bucket(format!("bad bucket definition: {e}")))?;
            config.max_age = max_age;
            js.get_or_create_stream(config)
                .await
                .map_err(|e| StatusError::Bucket(e.to_string()))?;
        }
        let kv = js
            .get_key_value(STATUS_BUCKET)
            .await
            .map_err(|e| StatusError::Bucket(e.to_string()))?;
        Ok(StatusStore { js: js.clone(), kv })
    }

    /// Sends one phase record without waiting for the stream; await the returned future to
    /// know it is stored. Fails only when the record cannot be sent at all.
    pub async fn send(
        &self,
        tenant: &TenantId,
        event_id: &str,
        phase: Phase,
        record: &PhaseRecord,
    ) -> Result<PublishAckFuture, StatusError> {
        let key = key(tenant, event_id, phase);
        let payload = serde_json::to_vec(record).map_err(|e| StatusError::Write(e.to_string()))?;
        self.js
            .publish(format!("$KV.{STATUS_BUCKET}.{key}"), payload.into())
            .await
            .map_err(|e| StatusError::Write(e.to_string()))
    }

    /// Records one phase and waits until it is stored.
    pub async fn record(
        &self,
        tenant: &TenantId,
        event_id: &str,
        phase: Phase,
        record: &PhaseRecord,
    ) -> Result<(), StatusError> {
        self.send(tenant, event_id, phase, record)
            .await?
            .await
            .map_err(|e| StatusError::Write(e.to_string()))?;
        Ok(())
    }

    /// The record of one phase, if it was reached.
    pub async fn phase(
        &self,
        tenant: &TenantId,
        event_id: &str,
        phase: Phase,
    ) -> Result<Option<PhaseRecord>, StatusError> {
        let entry = self
            .kv
            .get(key(tenant, event_id, phase))
            .await
            .map_err(|e| StatusError::Read(e.to_string()))?;
        // An unreadable record says as much as a missing one: the phase is unknown.
        Ok(entry.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    /// Every phase reached by the event `event_id` of `tenant`; `None` when it is unknown.
    pub async fn get(
        &self,
        tenant: &TenantId,
        event_id: &str,
    ) -> Result<Option<EventStatus>, StatusError> {
        let reads = Phase::ALL.map(|phase| async move {
            self.phase(tenant, event_id, phase)
                .await
                .map(|r| r.map(|r| (phase, r)))
        });
        let mut records = Vec::with_capacity(4);
        for read in futures_join(reads).await {
            if let Some(found) = read? {
                records.push(found);
            }
        }
        Ok(EventStatus::from_records(tenant, event_id, &records))
    }
}

/// Runs the four phase reads concurrently.
async fn futures_join<F: std::future::Future>(reads: [F; 4]) -> [F::Output; 4] {
    let [a, b, c, d] = reads;
    let (a, b, c, d) = tokio::join!(a, b, c, d);
    [a, b, c, d]
}

/// `{tenant}.{event id}.{phase}`, with the characters of an event id that a key may not hold
/// (`.` and `:`) written as `=2E` and `=3A` (event ids never hold `=`).
pub fn key(tenant: &TenantId, event_id: &str, phase: Phase) -> String {
    let mut key = String::with_capacity(tenant.as_str().len() + event_id.len() + 16);
    key.push_str(tenant.as_str());
    key.push('.');
    for c in event_id.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            key.push(c);
        } else {
            key.push_str(&format!("={:02X}", u32::from(c)));
        }
    }
    key.push('.');
    key.push_str(phase.as_str());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hold_only_bucket_characters() {
        let t = TenantId::new("acme").unwrap();
        assert_eq!(
            key(&t, "a.b:c-1_2", Phase::Completed),
            "acme.a=2Eb=3Ac-1_2.completed"
        );
    }

    #[test]
    fn the_furthest_phase_wins_and_times_are_kept() {
        let t = TenantId::new("acme").unwrap();
        let mut accepted = PhaseRecord::now();
        accepted.stream_sequence = Some(4);
        accepted.lead_id = Some("l1".into());
        let processing = PhaseRecord::now();
        let s = EventStatus::from_records(
            &t,
            "e1",
            &[
                (Phase::Processing, processing.clone()),
                (Phase::Accepted, accepted.clone()),
            ],
        )
        .unwrap();
        assert_eq!(s.status, Phase::Processing);
        assert_eq!(s.stream_sequence, Some(4));
        assert_eq!(s.accepted_at, Some(accepted.at));
        assert_eq!(s.processing_at, Some(processing.at));
        assert!(EventStatus::from_records(&t, "e1", &[]).is_none());
    }

    #[test]
    fn a_final_phase_carries_the_start_of_a_quick_event() {
        let t = TenantId::new("acme").unwrap();
        let started = PhaseRecord::now().at;
        let completed = PhaseRecord {
            started_at: Some(started),
            ..PhaseRecord::now()
        };
        let s =
            EventStatus::from_records(&t, "e1", &[(Phase::Completed, completed.clone())]).unwrap();
        assert_eq!(s.status, Phase::Completed);
        assert_eq!(s.processing_at, Some(started));
        assert_eq!(s.completed_at, Some(completed.at));
    }
}
