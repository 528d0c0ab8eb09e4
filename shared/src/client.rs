//! A small client for Rust producers: validates an event, then publishes it with its id as
//! `Nats-Msg-Id` and waits for the stream to store it.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture};
use chrono::Utc;

use crate::event::LeadEvent;
use crate::subjects::{MSG_ID_HEADER, event_msg_id, event_subject};
use crate::validate::{Rejection, check_values};

/// Publishing an event failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The event was refused before it reached NATS.
    #[error("event refused: {0}")]
    Invalid(#[from] Rejection),
    /// The event could not be serialised.
    #[error("event could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    /// NATS did not take it.
    #[error("publish failed: {0}")]
    Publish(#[from] async_nats::jetstream::context::PublishError),
}

/// What the stream said when it stored an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Sequence in LEAD_EVENTS.
    pub sequence: u64,
    /// True when the stream already had this event id (a retried publish).
    pub duplicate: bool,
}

/// Publishes a producer may have waiting for the stream's ack at once (see
/// [`Producer::connect`]). nats-server stores one stream's incoming messages in arrival order,
/// so every event another producer publishes waits behind those already queued: with this
/// bound, behind at most this many of a bursting producer's, about a millisecond of storing,
/// instead of the client's default 5,000.
pub const MAX_UNACKED_PUBLISHES: usize = 256;

/// Publishes lead events to LEAD_EVENTS.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use leadbus_shared::{EventType, LeadEvent, LeadId, TenantId, client::Producer};
/// let nats = async_nats::connect("nats://127.0.0.1:4222").await?;
/// let producer = Producer::connect(nats);
/// let event = LeadEvent::new(EventType::LeadCreated, TenantId::new("acme")?, LeadId::new("c_1")?);
/// let stored = producer.publish(&event).await?;
/// println!("stored at {}", stored.sequence);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Producer {
    pub(crate) js: jetstream::Context,
    max_payload: usize,
}

impl Producer {
    /// A producer on its own JetStream context, with at most [`MAX_UNACKED_PUBLISHES`]
    /// publishes waiting for their ack (a further [`send`](Self::send) waits for room): the
    /// way to publish a burst without holding up other producers' events.
    pub fn connect(nats: async_nats::Client) -> Self {
        let js = jetstream::context::ContextBuilder::new()
            .max_ack_inflight(MAX_UNACKED_PUBLISHES)
            .backpressure_on_inflight(true)
            .build(nats);
        Self::new(js)
    }

    /// Wraps a JetStream context, with that context's bound on publishes awaiting an ack.
    pub fn new(js: jetstream::Context) -> Self {
        Producer {
            js,
            max_payload: crate::validate::DEFAULT_MAX_PAYLOAD,
        }
    }

    /// Refuses events whose encoding is over `bytes` (the consumers' `max_payload_bytes`;
    /// 64 KiB unless set), as the inference service would dead-letter them.
    pub fn with_max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Sends an event without waiting for the stream; await the returned future for the ack.
    /// Invalid events are refused here and never reach NATS.
    ///
    /// The returned future holds one of the context's places for unacknowledged publishes
    /// until it is awaited or dropped. On a producer from [`connect`](Self::connect), a caller
    /// holding [`MAX_UNACKED_PUBLISHES`] of them unawaited makes the next `send` wait for a
    /// place that never frees: await the oldest before sending more.
    pub async fn send(&self, event: &LeadEvent) -> Result<PublishAckFuture, PublishError> {
        crate::validate::check_event_id(&event.event_id)?;
        check_values(event, Utc::now())?;
        let subject = event_subject(
            &event.tenant_id,
            event.priority,
            event.event_type,
            &event.lead_id,
        );
        let payload = serde_json::to_vec(event)?;
        if payload.len() > self.max_payload {
            return Err(crate::validate::Rejection {
                kind: crate::validate::RejectKind::Oversize,
                reason: format!(
                    "payload is {} bytes; the limit is {}",
                    payload.len(),
                    self.max_payload
                ),
                event_id: Some(event.event_id.clone()),
            }
            .into());
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            MSG_ID_HEADER,
            event_msg_id(&event.tenant_id, &event.event_id).as_str(),
        );
        Ok(self
            .js
            .publish_with_headers(subject, headers, payload.into())
            .await?)
    }

    /// Publishes an event and waits until the stream has stored it.
    pub async fn publish(&self, event: &LeadEvent) -> Result<Stored, PublishError> {
        let ack = self.send(event).await?.await?;
        Ok(Stored {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}
