//! Offering events: open loop at a fixed rate (event `i` is due at `t0 + i / rate` and is
//! sent then, whatever happened to the ones before, so a stall shows up as latency and not
//! as a lower send rate), or a burst as fast as the stream takes them. Stream acks are
//! awaited on a separate task, so waiting for them never delays the schedule.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use leadbus_shared::LeadEvent;
use leadbus_shared::client::Pending;
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
    let (ack_tx, ack_rx) = mpsc::channel::<(usize, Pending)>(8192);
    let acks = tokio::spawn(settle(ack_rx, Arc::clone(&phase)));
    let mut max_lag = Duration::ZERO;
    // Open loop: due times come from a pacer thread; a burst takes the next index at once.
    let mut paced = rate.map(|r| pace(count, r));
    let mut next_burst = 0..count;
    loop {
        let (i, offered_at) = match &mut paced {
            Some(due) => match due.recv().await {
                Some((i, due)) => {
                    max_lag = max_lag.max(Instant::now().saturating_duration_since(due));
                    (i, due)
                }
                None => break,
            },
            None => match next_burst.next() {
                Some(i) => (i, Instant::now()),
                None => break,
            },
        };
        let mut event = make(i);
        event.event_id = phase.event_id(i);
        phase.offered(i, offered_at.into_std());
        match producer.send(&event).await {
            Ok(ack) => {
                if ack_tx.send((i, ack)).await.is_err() {
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

/// The due times of `count` events at `rate` per second, each handed over when it falls due.
/// An OS thread keeps the schedule with the system's high-resolution sleep: tokio's timer
/// rounds every sleep up to the next millisecond, and that error would be charged to the
/// platform as latency (about half a millisecond on every event).
fn pace(count: usize, rate: f64) -> mpsc::UnboundedReceiver<(usize, Instant)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let start = std::time::Instant::now();
    std::thread::spawn(move || {
        for i in 0..count {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            let now = std::time::Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            // The phase stopped listening: nothing more is due.
            if tx.send((i, Instant::from_std(due))).is_err() {
                break;
            }
        }
    });
    rx
}

/// Awaits acks as they come, counting each in the phase with the time it took to be stored.
async fn settle(mut rx: mpsc::Receiver<(usize, Pending)>, phase: Arc<Phase>) {
    let mut pending = FuturesUnordered::new();
    let mut open = true;
    while open || !pending.is_empty() {
        tokio::select! {
            next = rx.recv(), if open => match next {
                Some((index, ack)) => {
                    let ack = ack.into_future();
                    pending.push(async move { (index, ack.await) });
                }
                None => open = false,
            },
            Some((index, result)) = pending.next(), if !pending.is_empty() => {
                if let Err(error) = &result {
                    warn!(%error, "publish not acknowledged");
                } else {
                    phase.stored(index, std::time::Instant::now());
                }
                phase.publish_result(result.is_ok());
            }
        }
    }
}
