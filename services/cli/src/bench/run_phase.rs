//! Running one phase: progress bar, offering, and waiting for the results to come back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use leadbus_inference::consume::parse_lane_name;
use leadbus_shared::client::Producer;
use leadbus_shared::subjects::EVENTS_STREAM;
use leadbus_shared::{LeadEvent, Priority};
use tokio::task::JoinHandle;

use super::measure::{Phase, PhaseSummary};
use super::offer::{Sent, offer};

/// What every phase needs.
#[derive(Debug, Clone)]
pub(crate) struct Driver {
    /// JetStream on the bench's server.
    pub(crate) js: jetstream::Context,
    /// Publishes events (validated, with `Nats-Msg-Id`).
    pub(crate) producer: Producer,
    /// Publishes bursts (backlog, flood), on a connection of its own.
    pub(crate) burst_producer: Producer,
    /// Progress display.
    pub(crate) progress: MultiProgress,
}

/// A phase being offered in the background.
#[derive(Debug)]
pub(crate) struct Running {
    /// The phase.
    pub(crate) phase: Arc<Phase>,
    rate: Option<f64>,
    sender: JoinHandle<Sent>,
    bar: ProgressBar,
    ticker: JoinHandle<()>,
}

impl Driver {
    /// Starts offering `count` events of `phase` at `rate` (open loop) or as a burst.
    pub(crate) fn start<F>(
        &self,
        phase: Arc<Phase>,
        count: usize,
        rate: Option<f64>,
        make: F,
    ) -> Running
    where
        F: FnMut(usize) -> LeadEvent + Send + 'static,
    {
        let bar = self.progress.add(ProgressBar::new(count as u64));
        bar.set_style(
            ProgressStyle::with_template("{prefix:30} [{bar:30}] {pos}/{len} results {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(phase.label.clone());
        let ticker = {
            let (bar, phase) = (bar.clone(), Arc::clone(&phase));
            tokio::spawn(async move {
                loop {
                    bar.set_position(phase.received());
                    bar.set_message(format!("({} sent)", phase.sent()));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        };
        let producer = match rate {
            Some(_) => self.producer.clone(),
            None => self.burst_producer.clone(),
        };
        let sender = tokio::spawn(offer(producer, Arc::clone(&phase), count, rate, make));
        Running {
            phase,
            rate,
            sender,
            bar,
            ticker,
        }
    }

    /// Offers a phase and waits for its results (see [`Running::finish`]).
    pub(crate) async fn run<F>(
        &self,
        phase: Arc<Phase>,
        count: usize,
        rate: Option<f64>,
        make: F,
    ) -> PhaseSummary
    where
        F: FnMut(usize) -> LeadEvent + Send + 'static,
    {
        self.start(phase, count, rate, make).finish(IDLE).await
    }

    /// Events waiting in (or delivered and unacknowledged by) a priority's lanes, summed over
    /// every tenant.
    pub(crate) async fn queued(&self, priority: Priority) -> Option<u64> {
        let stream = self.js.get_stream(EVENTS_STREAM).await.ok()?;
        let mut infos = stream.consumers();
        let mut queued = 0;
        while let Some(Ok(info)) = infos.next().await {
            if parse_lane_name(&info.name).is_some_and(|(_, p)| p == priority) {
                queued += info.num_pending + info.num_ack_pending as u64;
            }
        }
        Some(queued)
    }

    /// Waits until no priority has queued events, up to `cap`; returns what is still queued.
    pub(crate) async fn drain(&self, cap: Duration) -> u64 {
        let deadline = Instant::now() + cap;
        loop {
            let mut queued = 0;
            for p in Priority::ALL {
                queued += self.queued(p).await.unwrap_or(0);
            }
            if queued == 0 || Instant::now() >= deadline {
                return queued;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// How long a phase may go without a new result before it is given up.
pub(crate) const IDLE: Duration = Duration::from_secs(15);

impl Running {
    /// Waits until the sender is done and every accepted event has its result, or until no
    /// result arrived for `idle`.
    pub(crate) async fn finish(self, idle: Duration) -> PhaseSummary {
        let sent = self.sender.await.unwrap_or_default();
        let phase = &self.phase;
        let mut last = (phase.received(), Instant::now());
        while phase.received() < phase.sent() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = phase.received();
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() >= idle {
                break;
            }
        }
        self.ticker.abort();
        self.bar.set_position(phase.received());
        self.bar
            .finish_with_message(format!("({} sent)", phase.sent()));
        let mut summary = phase.summary();
        summary.offered_rate = self.rate;
        if self.rate.is_some() {
            summary.max_send_lag_ms = Some(sent.max_lag.as_secs_f64() * 1000.0);
        }
        summary
    }

    /// True once the sender has offered everything.
    pub(crate) fn sender_done(&self) -> bool {
        self.sender.is_finished()
    }
}
