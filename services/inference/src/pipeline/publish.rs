//! Writes to LEAD_INTEL and LEAD_DLQ, each with a `Nats-Msg-Id` so a redelivered event never
//! yields a second copy, and each waited on until the stream has stored it.

use std::collections::BTreeMap;

use async_nats::HeaderMap;
use std::time::Duration;

use async_nats::jetstream::{self, Message, consumer};
use chrono::Utc;
use futures::StreamExt;
use futures::future::try_join_all;
use leadbus_shared::dlq::DeadLetter;
use leadbus_shared::event::SCHEMA_VERSION;
use leadbus_shared::intel::{IntelType, Intelligence};
use leadbus_shared::subjects::{
    EVENTS_STREAM, INTEL_STREAM, MSG_ID_HEADER, dlq_subject, intel_msg_id, intel_subject,
    parse_event_subject,
};
use leadbus_shared::validate::Rejection;
use leadbus_shared::{LeadId, TenantId};

/// Largest dead letter written with its payload; NATS refuses messages over 1 MiB.
const MAX_DEAD_LETTER: usize = 768 * 1024;

/// A publish did not reach the stream.
#[derive(Debug, thiserror::Error)]
#[error("publish to {subject} failed: {reason}")]
pub struct PublishFailed {
    /// Where it was going.
    pub subject: String,
    /// Why.
    pub reason: String,
}

/// Publishes results.
#[derive(Debug, Clone)]
pub struct Publisher {
    js: jetstream::Context,
}

impl Publisher {
    /// A publisher on a JetStream context.
    pub fn new(js: jetstream::Context) -> Self {
        Publisher { js }
    }

    /// Publishes one partial update per part that ran, then `intelligence_complete`, and waits
    /// for every acknowledgement. Each message's `Nats-Msg-Id` is `{id_prefix}:{intel_type}`;
    /// the prefix is the event id, plus the replay name for a replayed event.
    pub async fn intelligence(
        &self,
        intel: &Intelligence,
        id_prefix: &str,
    ) -> Result<(), PublishFailed> {
        // Each partial update carries the shared fields and its own part only.
        let part = |lead_score, churn, matches| Intelligence {
            schema: intel.schema,
            tenant_id: intel.tenant_id.clone(),
            lead_id: intel.lead_id.clone(),
            event_id: intel.event_id.clone(),
            revision: intel.revision,
            lead_score,
            churn,
            matches,
            processing_time_ms: intel.processing_time_ms,
            cache: intel.cache.clone(),
            degraded: intel.degraded,
            replay: intel.replay,
            generated_at: intel.generated_at,
        };
        let mut bodies: Vec<(IntelType, Result<Vec<u8>, serde_json::Error>)> =
            Vec::with_capacity(4);
        if intel.lead_score.is_some() {
            let body = part(intel.lead_score.clone(), None, None);
            bodies.push((IntelType::LeadScoreUpdate, serde_json::to_vec(&body)));
        }
        if intel.churn.is_some() {
            let body = part(None, intel.churn.clone(), None);
            bodies.push((IntelType::ChurnRiskAlert, serde_json::to_vec(&body)));
        }
        if intel.matches.is_some() {
            let body = part(None, None, intel.matches.clone());
            bodies.push((IntelType::PropertyMatchFound, serde_json::to_vec(&body)));
        }
        bodies.push((IntelType::IntelligenceComplete, serde_json::to_vec(intel)));

        let mut acks = Vec::with_capacity(bodies.len());
        for (intel_type, body) in bodies {
            let subject = intel_subject(&intel.tenant_id, &intel.lead_id, intel_type);
            let payload = body.map_err(|e| PublishFailed {
                subject: subject.clone(),
                reason: e.to_string(),
            })?;
            let msg_id = intel_msg_id(&intel.tenant_id, &intel.lead_id, id_prefix, intel_type);
            acks.push(self.send(subject, msg_id, payload).await?);
        }
        try_join_all(acks.into_iter().map(|(subject, ack)| async move {
            ack.await.map_err(|e| PublishFailed {
                subject,
                reason: e.to_string(),
            })
        }))
        .await?;
        Ok(())
    }

    async fn send(
        &self,
        subject: String,
        msg_id: String,
        payload: Vec<u8>,
    ) -> Result<(String, jetstream::context::PublishAckFuture), PublishFailed> {
        let mut headers = HeaderMap::new();
        headers.insert(MSG_ID_HEADER, msg_id.as_str());
        match self
            .js
            .publish_with_headers(subject.clone(), headers, payload.into())
            .await
        {
            Ok(ack) => Ok((subject, ack)),
            Err(e) => Err(PublishFailed {
                subject,
                reason: e.to_string(),
            }),
        }
    }

    /// The lead's last stored message of `intel_type`, if any (the fallback for a failing
    /// model). Any failure to read it is `None`: the caller has a fallback of its own.
    pub async fn last_intel(
        &self,
        tenant: &TenantId,
        lead: &LeadId,
        intel_type: IntelType,
    ) -> Option<Intelligence> {
        let stream = self.js.get_stream(INTEL_STREAM).await.ok()?;
        let subject = intel_subject(tenant, lead, intel_type);
        let raw = stream
            .get_last_raw_message_by_subject(&subject)
            .await
            .ok()?;
        serde_json::from_slice(&raw.payload).ok()
    }

    /// True when LEAD_INTEL already holds this event's `intelligence_complete`. Used only for
    /// redeliveries of events the profile already has: the stream's duplicate window covers a
    /// quick redelivery, this covers one that comes later (a service down for minutes).
    pub async fn has_complete(
        &self,
        tenant: &TenantId,
        lead: &LeadId,
        id_prefix: &str,
    ) -> Result<bool, PublishFailed> {
        let subject = intel_subject(tenant, lead, IntelType::IntelligenceComplete);
        let failed = |e: &dyn std::fmt::Display| PublishFailed {
            subject: subject.clone(),
            reason: format!("cannot scan for an earlier result: {e}"),
        };
        let stream = self
            .js
            .get_stream(INTEL_STREAM)
            .await
            .map_err(|e| failed(&e))?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: subject.clone(),
                headers_only: true,
                ..Default::default()
            })
            .await
            .map_err(|e| failed(&e))?;
        let pending = consumer.cached_info().num_pending;
        if pending == 0 {
            return Ok(false);
        }
        let wanted = intel_msg_id(tenant, lead, id_prefix, IntelType::IntelligenceComplete);
        let mut messages = consumer.messages().await.map_err(|e| failed(&e))?;
        for _ in 0..pending {
            let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
            let msg = match next {
                Ok(Some(Ok(msg))) => msg,
                Ok(Some(Err(e))) => return Err(failed(&e)),
                Ok(None) | Err(_) => return Err(failed(&"scan ended early")),
            };
            let id = msg.headers.as_ref().and_then(|h| h.get(MSG_ID_HEADER));
            if id.is_some_and(|v| v.as_str() == wanted) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Writes `msg` to LEAD_DLQ with the reason and everything needed to re-inject it.
    pub async fn dead_letter(
        &self,
        msg: &Message,
        rejection: &Rejection,
    ) -> Result<(), PublishFailed> {
        let (stream_sequence, delivery_count) = match msg.info() {
            Ok(info) => (info.stream_sequence, info.delivered.max(0) as u64),
            Err(_) => (0, 0),
        };
        self.dead_letter_raw(
            &msg.subject,
            msg.headers.as_ref(),
            &msg.payload,
            stream_sequence,
            delivery_count,
            rejection,
        )
        .await
    }

    /// Writes a stored event (subject, headers, payload) to LEAD_DLQ.
    pub async fn dead_letter_raw(
        &self,
        subject: &str,
        headers_in: Option<&async_nats::HeaderMap>,
        payload: &[u8],
        stream_sequence: u64,
        delivery_count: u64,
        rejection: &Rejection,
    ) -> Result<(), PublishFailed> {
        let subject_tokens = parse_event_subject(subject);
        let dlq = dlq_subject(
            subject_tokens.map_or("", |s| s.tenant),
            subject_tokens.map_or("", |s| s.event_type),
        );
        let mut headers = BTreeMap::new();
        if let Some(h) = headers_in {
            for (name, values) in h.iter() {
                headers.insert(
                    name.to_string(),
                    values.iter().map(|v| v.as_str().to_owned()).collect(),
                );
            }
        }
        let letter = DeadLetter {
            schema: SCHEMA_VERSION,
            kind: rejection.kind,
            reason: rejection.reason.clone(),
            event_id: rejection.event_id.clone(),
            subject: subject.to_owned(),
            headers,
            payload: None,
            payload_hex: None,
            payload_len: 0,
            payload_truncated: false,
            stream_sequence,
            delivery_count,
            dead_lettered_at: Utc::now(),
        }
        .with_payload(payload);
        let encode = |letter: &DeadLetter| {
            serde_json::to_vec(letter).map_err(|e| PublishFailed {
                subject: dlq.clone(),
                reason: e.to_string(),
            })
        };
        let mut body = encode(&letter)?;
        if body.len() > MAX_DEAD_LETTER {
            // Escaping can blow a payload up sixfold; the dead letter must still fit in a
            // NATS message, so it keeps the reason and the position, not the bytes.
            let mut slim = letter;
            slim.payload = None;
            slim.payload_hex = None;
            slim.payload_truncated = true;
            slim.reason.push_str(" (payload not kept: too large for a dead letter; read it from LEAD_EVENTS at stream_sequence)");
            body = encode(&slim)?;
        }
        let payload = body;
        // Keyed by the original's stream position: a redelivered poison event is stored once.
        let msg_id = format!("dlq:{EVENTS_STREAM}:{stream_sequence}");
        let (subject, ack) = self.send(dlq, msg_id, payload).await?;
        ack.await.map_err(|e| PublishFailed {
            subject,
            reason: e.to_string(),
        })?;
        Ok(())
    }
}
