//! The gateway's one feed: an ordered JetStream consumer on LEAD_INTEL from the live end,
//! fanned out in process by the [`Hub`]. Every message keeps its stream sequence, so a gap is
//! detectable. The consumer is pulled, so the server never pushes more than the client asked
//! for; the fan-out never waits on a WebSocket, so the feed keeps up with the stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use leadbus_shared::subjects::{INTEL_STREAM, parse_intel_subject};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::hub::Hub;
use crate::stats::{Stats, Summary};

/// One intelligence message, ready to send to any client of its tenant.
#[derive(Debug)]
pub struct FeedItem {
    /// LEAD_INTEL stream sequence.
    pub seq: u64,
    /// Tenant token.
    pub tenant: String,
    /// Lead token.
    pub lead: String,
    /// Intel type token.
    pub intel_type: String,
    /// The client message, serialised once for every client.
    pub text: Arc<str>,
}

/// What the feed reports about itself.
#[derive(Debug, Default)]
pub struct FeedHealth {
    live: AtomicBool,
    last_seq: AtomicU64,
    pending: AtomicU64,
}

impl FeedHealth {
    /// True while the consumer is open.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }

    /// Last stream sequence relayed.
    pub fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::Relaxed)
    }

    /// Messages in LEAD_INTEL the feed had not read yet, as of its last message: how far it
    /// is behind the stream.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }
}

/// Feed lag (messages behind the stream) above which the gateway logs a warning.
pub const LAG_WARNING: u64 = 10_000;

/// Builds the client message for one stored intelligence message.
pub fn client_message(seq: u64, lead: &str, intel_type: &str, payload: &[u8]) -> Option<String> {
    // The payload was written by the inference service as JSON; anything else is skipped.
    let data: &serde_json::value::RawValue = serde_json::from_slice(payload).ok()?;
    // Only well-formed tokens (A-Z a-z 0-9 _ -) are relayed, so nothing needs escaping; a
    // message someone published on a malformed intel subject is skipped.
    leadbus_shared::ids::check_token("lead_id", lead).ok()?;
    intel_type.parse::<leadbus_shared::IntelType>().ok()?;
    Some(format!(
        r#"{{"type":"intel","seq":{seq},"intel_type":"{intel_type}","lead_id":"{lead}","data":{}}}"#,
        data.get()
    ))
}

/// Relays LEAD_INTEL to `hub` until `shutdown`, re-creating the consumer after any failure
/// from the sequence after the last one relayed.
pub async fn run_feed(
    js: jetstream::Context,
    hub: Arc<Hub>,
    stats: Arc<Stats>,
    health: Arc<FeedHealth>,
    shutdown: CancellationToken,
) {
    let mut lagging = false;
    let mut delay = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        let opened = async {
            let stream = js
                .get_stream(INTEL_STREAM)
                .await
                .map_err(|e| e.to_string())?;
            // A fresh feed starts at the stream's end, and says so: `ready` and `/healthz`
            // then name a real position from the start, never 0 (which a client would take
            // for "replay everything").
            if health.last_seq() == 0 {
                let end = stream.cached_info().state.last_sequence;
                health.last_seq.store(end, Ordering::Relaxed);
                hub.advance_to(end);
            }
            let deliver_policy = consumer::DeliverPolicy::ByStartSequence {
                start_sequence: health.last_seq() + 1,
            };
            let consumer = stream
                .create_consumer(consumer::pull::OrderedConfig {
                    filter_subject: "leads.intel.>".into(),
                    deliver_policy,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            consumer.messages().await.map_err(|e| e.to_string())
        };
        let mut messages = match opened.await {
            Ok(m) => m,
            Err(error) => {
                health.live.store(false, Ordering::Relaxed);
                warn!(%error, delay_ms = delay.as_millis() as u64, "intel feed unavailable; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        health.live.store(true, Ordering::Relaxed);
        delay = Duration::from_millis(100);
        info!(from_seq = health.last_seq() + 1, "intel feed live");

        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                next = messages.next() => next,
            };
            let msg = match next {
                Some(Ok(msg)) => msg,
                Some(Err(error)) => {
                    warn!(%error, "intel feed error; re-creating the consumer");
                    break;
                }
                None => {
                    warn!("intel feed ended; re-creating the consumer");
                    break;
                }
            };
            let Ok(info) = msg.info() else { continue };
            let seq = info.stream_sequence;
            health.last_seq.store(seq, Ordering::Relaxed);
            health.pending.store(info.pending, Ordering::Relaxed);
            metrics::gauge!("leadbus_gateway_feed_pending").set(info.pending as f64);
            if info.pending > LAG_WARNING && !lagging {
                warn!(
                    pending = info.pending,
                    seq, "intel feed is falling behind LEAD_INTEL"
                );
            }
            lagging = info.pending > LAG_WARNING;
            let Some(tokens) = parse_intel_subject(&msg.subject) else {
                continue;
            };
            let Some(text) = client_message(seq, tokens.lead, tokens.intel_type, &msg.payload)
            else {
                debug!(seq, "intel message is not JSON; skipped");
                continue;
            };
            let complete = (tokens.intel_type == "intelligence_complete")
                .then(|| serde_json::from_slice::<Summary>(&msg.payload).ok())
                .flatten();
            stats.record(tokens.tenant, complete.as_ref());
            metrics::counter!("leadbus_gateway_intel_relayed_total").increment(1);
            let item = FeedItem {
                seq,
                tenant: tokens.tenant.to_owned(),
                lead: tokens.lead.to_owned(),
                intel_type: tokens.intel_type.to_owned(),
                text: text.into(),
            };
            hub.publish(Arc::new(item));
        }
        health.live.store(false, Ordering::Relaxed);
    }
}
