//! Getting events off the stream: durable pull consumers per tenant and priority (lanes), a
//! board of small per-lane queues, a scheduler that serves higher priorities first and tenants
//! in turn within a bound on work in flight, and the ack or nak that closes every delivery.

mod board;
mod consumers;
mod fetch;
mod lanes;
mod shares;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream::{AckKind, Message};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

pub use board::{Board, Closed, LEVEL_CAP_DIVISORS, LaneHandle, Taken};
pub use consumers::{
    discovery_name, ensure_discovery, ensure_lane, lane_config, lane_name, parse_lane_name,
};
pub use fetch::{Lane, run_fetcher};
pub use lanes::Lanes;
pub use shares::{Shares, WEIGHTS};

use crate::pipeline::{Outcome, Pipeline, retry_delay};

/// What the consume side reports about itself.
#[derive(Debug, Default)]
pub struct Health {
    discovery: AtomicBool,
    lanes_up: AtomicUsize,
    lanes_down: AtomicUsize,
}

impl Health {
    /// Marks whether tenant discovery is following the stream.
    pub fn set_discovery(&self, on: bool) {
        self.discovery.store(on, Ordering::Relaxed);
    }

    /// A lane's pull stream opened (`true`) or failed (`false`).
    pub fn lane_changed(&self, up: bool) {
        if up {
            self.lanes_up.fetch_add(1, Ordering::Relaxed);
            // A lane counted down before goes back up.
            let _ = self
                .lanes_down
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| d.checked_sub(1));
        } else {
            self.lanes_down.fetch_add(1, Ordering::Relaxed);
            let _ = self
                .lanes_up
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| u.checked_sub(1));
        }
    }

    /// True while discovery runs.
    pub fn discovery_live(&self) -> bool {
        self.discovery.load(Ordering::Relaxed)
    }

    /// Lanes pulling now, and lanes failing and being re-created.
    pub fn lanes(&self) -> (usize, usize) {
        (
            self.lanes_up.load(Ordering::Relaxed),
            self.lanes_down.load(Ordering::Relaxed),
        )
    }

    /// True when discovery runs and no lane is failing.
    pub fn all_consuming(&self) -> bool {
        self.discovery_live() && self.lanes().1 == 0
    }
}

/// Takes events off the board (by [`Shares`] between priorities, by turn between tenants,
/// within each level's cap) and runs each on its own task while holding one of
/// `max_concurrent` permits. Returns when `shutdown` fires; events still queued are handed back
/// to the server for redelivery.
pub async fn run_scheduler(
    board: Arc<Board<Message>>,
    pipeline: Arc<Pipeline>,
    max_concurrent: usize,
    processing_timeout: Duration,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(max_concurrent));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let taken = tokio::select! {
            _ = shutdown.cancelled() => break,
            taken = board.take() => match taken {
                Ok(t) => t,
                Err(Closed) => break,
            },
        };
        let pipeline = Arc::clone(&pipeline);
        tracker.spawn(async move {
            let msg = &taken.item;
            let outcome = match tokio::time::timeout(processing_timeout, pipeline.process(msg))
                .await
            {
                Ok(outcome) => outcome,
                Err(_) => Outcome::Retry(format!("processing took over {processing_timeout:?}")),
            };
            settle(msg, outcome).await;
            drop(taken);
            drop(permit);
        });
    }

    // Queued but not started: give them back now rather than after ack_wait.
    for msg in board.close() {
        if let Err(error) = msg.ack_with(AckKind::Nak(None)).await {
            debug!(%error, "nak on shutdown failed; the server redelivers after ack_wait");
        }
    }
}

/// Acks, or naks with a delay that grows with the delivery count.
async fn settle(msg: &Message, outcome: Outcome) {
    let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
    let result = match outcome {
        Outcome::Completed | Outcome::DeadLettered(_) => msg.ack().await,
        Outcome::Retry(reason) => {
            let delay = retry_delay(delivered);
            warn!(subject = %msg.subject, delivered, delay_ms = delay.as_millis() as u64, %reason, "event will be retried");
            metrics::counter!("leadbus_events_retried_total").increment(1);
            msg.ack_with(AckKind::Nak(Some(delay))).await
        }
    };
    if let Err(error) = result {
        // The server redelivers; the result's Nats-Msg-Id makes the second run harmless.
        warn!(subject = %msg.subject, %error, "ack failed");
    }
}
