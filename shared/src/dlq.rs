//! The dead-letter record written to LEAD_DLQ: the reason and everything needed to re-inject.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::validate::RejectKind;

/// An event that could not be processed, with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Message shape version.
    pub schema: u32,
    /// Machine-readable class of the failure.
    pub kind: RejectKind,
    /// What was wrong, for a person.
    pub reason: String,
    /// The event id, when one could be read.
    pub event_id: Option<String>,
    /// The subject the event was published on.
    pub subject: String,
    /// Its headers.
    pub headers: BTreeMap<String, Vec<String>>,
    /// The payload, when it is UTF-8 (possibly cut, see `payload_truncated`).
    pub payload: Option<String>,
    /// The payload as lossless hex when it is not UTF-8.
    pub payload_hex: Option<String>,
    /// Bytes of the original payload.
    pub payload_len: usize,
    /// True when only the first part of an oversize payload was kept.
    pub payload_truncated: bool,
    /// Sequence of the event in LEAD_EVENTS.
    pub stream_sequence: u64,
    /// How many times it had been delivered.
    pub delivery_count: u64,
    /// When it was dead-lettered.
    pub dead_lettered_at: DateTime<Utc>,
}

/// Largest payload copied into a dead letter in full; the DLQ must accept what it is given.
pub const MAX_KEPT_PAYLOAD: usize = 256 * 1024;

impl DeadLetter {
    /// Fills the payload fields from raw bytes.
    pub fn with_payload(mut self, payload: &[u8]) -> Self {
        self.payload_len = payload.len();
        let kept = &payload[..payload.len().min(MAX_KEPT_PAYLOAD)];
        self.payload_truncated = kept.len() < payload.len();
        match std::str::from_utf8(kept) {
            Ok(text) => self.payload = Some(text.to_owned()),
            Err(_) => {
                self.payload_hex = Some(kept.iter().map(|b| format!("{b:02x}")).collect());
            }
        }
        self
    }
}
