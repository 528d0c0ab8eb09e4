//! A small client for Rust producers: validates an event, then publishes it with its id as
//! `Nats-Msg-Id` and waits for the stream to store it.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture};
use chrono::Utc;
use tokio::sync::{Semaphore, oneshot};

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
    /// The task awaiting the stream's ack ended without an answer (the runtime is stopping).
    #[error("publish not acknowledged: the producer stopped waiting")]
    AckLost,
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
    /// Places for publishes awaiting their ack; `None` leaves the bound to the context.
    window: Option<Arc<Semaphore>>,
}

impl Producer {
    /// A producer with at most [`MAX_UNACKED_PUBLISHES`] publishes waiting for their ack: a
    /// further [`send`](Self::send) waits until the stream acknowledges an earlier one. The way
    /// to publish a burst without holding up other producers' events. A place frees when its
    /// ack arrives, whether or not the caller has awaited the [`Pending`] yet, so a caller
    /// holding any number of them never stalls its own sends.
    pub fn connect(nats: async_nats::Client) -> Self {
        Producer {
            window: Some(Arc::new(Semaphore::new(MAX_UNACKED_PUBLISHES))),
            ..Self::new(jetstream::new(nats))
        }
    }

    /// Wraps a JetStream context, with that context's bound on publishes awaiting an ack.
    pub fn new(js: jetstream::Context) -> Self {
        Producer {
            js,
            max_payload: crate::validate::DEFAULT_MAX_PAYLOAD,
            window: None,
        }
    }

    /// Refuses events whose encoding is over `bytes` (the consumers' `max_payload_bytes`;
    /// 64 KiB unless set), as the inference service would dead-letter them.
    pub fn with_max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Sends an event without waiting for the stream; await the returned [`Pending`] for the
    /// ack. Invalid events are refused here and never reach NATS. On a producer from
    /// [`connect`](Self::connect) this first waits for a place in its window.
    ///
    /// On a producer from [`new`](Self::new) the context's own bound applies, and async-nats
    /// frees its places only when the ack future is awaited or dropped: a caller holding that
    /// many unawaited would wait forever on the next send.
    pub async fn send(&self, event: &LeadEvent) -> Result<Pending, PublishError> {
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
        // The place is taken before the publish, so at most the window's size are unacknowledged.
        let place = match &self.window {
            Some(window) => Some(
                Arc::clone(window)
                    .acquire_owned()
                    .await
                    .map_err(|_| PublishError::AckLost)?,
            ),
            None => None,
        };
        let ack = self
            .js
            .publish_with_headers(subject, headers, payload.into())
            .await?;
        Ok(match place {
            None => Pending::direct(ack),
            Some(place) => {
                // Awaited here, not by the caller: the place frees as soon as the ack is in.
                let (tx, rx) = oneshot::channel();
                tokio::spawn(async move {
                    let stored = ack.await.map(Stored::from).map_err(PublishError::from);
                    drop(place);
                    let _ = tx.send(stored);
                });
                Pending(Inner::Awaited(rx))
            }
        })
    }

    /// Publishes an event and waits until the stream has stored it.
    pub async fn publish(&self, event: &LeadEvent) -> Result<Stored, PublishError> {
        self.send(event).await?.await
    }
}

impl From<async_nats::jetstream::publish::PublishAck> for Stored {
    fn from(ack: async_nats::jetstream::publish::PublishAck) -> Self {
        Stored {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        }
    }
}

/// The stream's answer to one [`Producer::send`], to await.
pub struct Pending(Inner);

/// The client's ack future, as `into_future` hands it over (already boxed and pinned).
type AckFuture = <PublishAckFuture as IntoFuture>::IntoFuture;

enum Inner {
    /// The client's own ack future, awaited by the caller.
    Direct(AckFuture),
    /// Awaited by a task of the producer, which sends the result here.
    Awaited(oneshot::Receiver<Result<Stored, PublishError>>),
}

impl Pending {
    fn direct(ack: PublishAckFuture) -> Self {
        Pending(Inner::Direct(ack.into_future()))
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pending")
    }
}

impl Future for Pending {
    type Output = Result<Stored, PublishError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Inner::Direct(ack) => ack
                .as_mut()
                .poll(cx)
                .map(|r| r.map(Stored::from).map_err(PublishError::from)),
            Inner::Awaited(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(PublishError::AckLost))),
        }
    }
}
