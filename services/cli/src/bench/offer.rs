//! Offering events: open loop at a fixed rate (event `i` is due at `t0 + i / rate` and is
//! sent then, whatever happened to the ones before, so a stall shows up as latency and not
//! as a lower send rate), or a burst as fast as the stream takes them. Stream acks are
//! awaited on a separate task, so waiting for them never delays the schedule.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::PublishAckFuture;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use leadbus_shared::LeadEvent;
use leadbus_shared::client::Producer;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::warn;

use super::measure::Phase;

/// How a send loop went.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Sent {
    /// Longest the loop ran behind its schedule.
    pub(crate) max_lag: Duration,
}

/// Publishes `count` events from `make` at `rate` per second (open loop), or as fast as the
/// stream acknowledges when `rate` is `None`. Each event gets the phase's id for its index.
pub(crate) async fn offer<F>(
    producer: Producer,
    phase: Arc<Phase>,
    count: usize,
    rate: Option<f64>,
    mut make: F,
) -> Sent
where
    F: FnMut(usize) -> LeadEvent,
{
    let count = count.min(phase.capacity());
    let (ack_tx, ack_rx) = mpsc::channel::<PublishAckFuture>(8192);
    let acks = tokio::spawn(settle(ack_rx, Arc::clone(&phase)));
    let start = Instant::now();
    let mut max_lag = Duration::ZERO;
    for i in 0..count {
        let due = rate.map(|r| start + Duration::from_secs_f64(i as f64 / r));
        let offered_at = match due {
            Some(due) => {
                let now = Instant::now();
                if due > now {
                    tokio::time::sleep_until(due).await;
                } else {
                    max_lag = max_lag.max(now - due);
                }
                due
            }
            None => Instant::now(),
        };
        let mut event = make(i);
        event.event_id = phase.event_id(i);
        phase.offered(i, offered_at.into_std());
        match producer.send(&event).await {
            Ok(ack) => {
                if ack_tx.send(ack).await.is_err() {
                    break;
                }
            }
            Err(error) => {
                warn!(%error, "publish failed");
                phase.publish_result(false);
            }
        }
    }
    drop(ack_tx);
    // The settle task only ends when every ack is in; a panic there is a bug, not input.
    let _ = acks.await;
    Sent { max_lag }
}

/// Awaits acks as they come, counting each in the phase.
async fn settle(mut rx: mpsc::Receiver<PublishAckFuture>, phase: Arc<Phase>) {
    let mut pending = FuturesUnordered::new();
    let mut open = true;
    while open || !pending.is_empty() {
        tokio::select! {
            next = rx.recv(), if open => match next {
                Some(ack) => pending.push(ack.into_future()),
                None => open = false,
            },
            Some(result) = pending.next(), if !pending.is_empty() => {
                if let Err(error) = &result {
                    warn!(%error, "publish not acknowledged");
                }
                phase.publish_result(result.is_ok());
            }
        }
    }
}
