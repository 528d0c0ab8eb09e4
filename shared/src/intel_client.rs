//! Receiving intelligence over NATS: process one event and await its result, or run a
//! handler on every update of a tenant. Both use core subscriptions on the tenant's own intel
//! subjects, which is what a tenant's NATS user may read (see `nats/auth.conf`). For a feed
//! that survives disconnections without gaps, use the gateway's WebSocket with `resume_from`.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::client::{Producer, PublishError};
use crate::event::LeadEvent;
use crate::ids::TenantId;
use crate::intel::{IntelType, Intelligence};
use crate::subjects::{INTEL_STREAM, intel_subject, parse_intel_subject};

/// Processing an event and waiting for its result failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The event was not stored.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The subscription for the result could not be made.
    #[error("cannot subscribe for the result: {0}")]
    Subscribe(String),
    /// No `intelligence_complete` for the event within the wait; it may still come (or the
    /// event was dead-lettered: ask the gateway for its status).
    #[error("no intelligence for event {event_id} within {waited:?}")]
    Timeout {
        /// The event.
        event_id: String,
        /// How long was waited.
        waited: Duration,
    },
}

impl Producer {
    /// Publishes `event`, then waits up to `wait` for its `intelligence_complete`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use leadbus_shared::{EventType, LeadEvent, LeadId, TenantId, client::Producer};
    /// let nats = async_nats::connect("nats://127.0.0.1:4222").await?;
    /// let producer = Producer::new(async_nats::jetstream::new(nats));
    /// let event = LeadEvent::new(EventType::LeadCreated, TenantId::new("acme")?, LeadId::new("c_1")?);
    /// let intel = producer.process(&event, Duration::from_secs(5)).await?;
    /// if let Some(score) = intel.lead_score {
    ///     println!("{} scores {:.2} ({:?})", intel.lead_id, score.score, score.band);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn process(
        &self,
        event: &LeadEvent,
        wait: Duration,
    ) -> Result<Intelligence, ProcessError> {
        let client = self.js.client();
        let subject = intel_subject(
            &event.tenant_id,
            &event.lead_id,
            IntelType::IntelligenceComplete,
        );
        // Subscribed (and known to the server) before publishing, so the result cannot slip by.
        let mut results = client
            .subscribe(subject.clone())
            .await
            .map_err(|e| ProcessError::Subscribe(e.to_string()))?;
        client
            .flush()
            .await
            .map_err(|e| ProcessError::Subscribe(e.to_string()))?;
        let stored = self.publish(event).await?;
        if stored.duplicate
            && let Some(intel) = self.stored_result(&subject, &event.event_id).await
        {
            return Ok(intel);
        }
        let arrived = tokio::time::timeout(wait, async {
            while let Some(msg) = results.next().await {
                match serde_json::from_slice::<Intelligence>(&msg.payload) {
                    Ok(intel) if intel.event_id == event.event_id => return Some(intel),
                    Ok(_) => {}
                    Err(error) => debug!(%error, "unreadable intelligence skipped"),
                }
            }
            None
        })
        .await;
        arrived.ok().flatten().ok_or_else(|| ProcessError::Timeout {
            event_id: event.event_id.clone(),
            waited: wait,
        })
    }

    /// The stored result of a retried event, when the stream's last one on `subject` is it.
    async fn stored_result(&self, subject: &str, event_id: &str) -> Option<Intelligence> {
        let stream = self.js.get_stream(INTEL_STREAM).await.ok()?;
        let msg = stream.get_last_raw_message_by_subject(subject).await.ok()?;
        serde_json::from_slice::<Intelligence>(&msg.payload)
            .ok()
            .filter(|intel| intel.event_id == event_id)
    }
}

/// One intelligence message, as a handler receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct IntelUpdate {
    /// Which message of the event it is.
    pub intel_type: IntelType,
    /// The intelligence.
    pub intelligence: Intelligence,
}

/// A running subscription; dropping it stops the handler.
#[derive(Debug)]
pub struct IntelSubscription {
    task: JoinHandle<()>,
}

impl IntelSubscription {
    /// Stops the handler.
    pub fn stop(self) {}
}

impl Drop for IntelSubscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs `handler` on every intelligence message of `tenant` (only those of `intel_type` when
/// given), one at a time, in arrival order, until the returned subscription is dropped.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use leadbus_shared::{IntelType, TenantId};
/// use leadbus_shared::intel_client::subscribe_intelligence;
/// let nats = async_nats::connect("nats://127.0.0.1:4222").await?;
/// let tenant = TenantId::new("acme")?;
/// let _subscription = subscribe_intelligence(
///     &nats,
///     &tenant,
///     Some(IntelType::ChurnRiskAlert),
///     |update| async move {
///         if let Some(churn) = update.intelligence.churn {
///             println!("{} churn risk {:.2}", update.intelligence.lead_id, churn.risk);
///         }
///     },
/// )
/// .await?;
/// # Ok(()) }
/// ```
pub async fn subscribe_intelligence<F, Fut>(
    nats: &async_nats::Client,
    tenant: &TenantId,
    intel_type: Option<IntelType>,
    mut handler: F,
) -> Result<IntelSubscription, async_nats::SubscribeError>
where
    F: FnMut(IntelUpdate) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let subject = match intel_type {
        Some(t) => format!("leads.intel.{tenant}.*.{t}"),
        None => format!("leads.intel.{tenant}.>"),
    };
    let mut messages = nats.subscribe(subject).await?;
    let task = tokio::spawn(async move {
        while let Some(msg) = messages.next().await {
            let Some(intel_type) = parse_intel_subject(&msg.subject)
                .and_then(|s| s.intel_type.parse::<IntelType>().ok())
            else {
                continue;
            };
            match serde_json::from_slice::<Intelligence>(&msg.payload) {
                Ok(intelligence) => {
                    handler(IntelUpdate {
                        intel_type,
                        intelligence,
                    })
                    .await
                }
                Err(error) => {
                    debug!(%error, subject = %msg.subject, "unreadable intelligence skipped")
                }
            }
        }
    });
    Ok(IntelSubscription { task })
}
