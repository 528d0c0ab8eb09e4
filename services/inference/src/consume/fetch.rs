//! One task per priority pulls that priority's messages into a small bounded channel. The
//! pull stream uses a short idle heartbeat; on a missed heartbeat, a deleted consumer or any
//! other stream error it is re-created with backoff. It never ends silently.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::Message;
use async_nats::jetstream::consumer::pull::MessagesErrorKind;
use async_nats::jetstream::stream::Stream;
use backon::{BackoffBuilder, ExponentialBuilder};
use futures::StreamExt;
use leadbus_shared::{Config, Priority};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Health;
use super::consumers::ensure_consumer;

/// Idle heartbeat asked of the server for each pull.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Pulls one priority's events into `tx` until `shutdown`.
pub async fn run_fetcher(
    stream: Stream,
    priority: Priority,
    config: Config,
    batch: usize,
    tx: mpsc::Sender<Message>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) {
    let mut backoff = new_backoff();
    while !shutdown.is_cancelled() {
        let messages = match ensure_consumer(&stream, priority, &config).await {
            Ok(consumer) => consumer
                .stream()
                .max_messages_per_batch(batch)
                .heartbeat(HEARTBEAT)
                .expires(Duration::from_secs(30))
                .messages()
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        let mut messages = match messages {
            Ok(m) => {
                health.set_consuming(priority, true);
                m
            }
            Err(error) => {
                health.set_consuming(priority, false);
                let delay = backoff.next().unwrap_or(Duration::from_secs(10));
                warn!(%priority, %error, delay_ms = delay.as_millis() as u64, "cannot open pull stream; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => continue,
                }
            }
        };
        info!(%priority, "consuming");

        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                next = messages.next() => next,
            };
            match next {
                Some(Ok(msg)) => {
                    backoff = new_backoff();
                    // Waits while the scheduler is busy: this is the prefetch bound.
                    if tx.send(msg).await.is_err() {
                        return;
                    }
                }
                Some(Err(error)) => {
                    health.set_consuming(priority, false);
                    match error.kind() {
                        MessagesErrorKind::MissingHeartbeat => {
                            warn!(%priority, "missed heartbeat; re-creating pull stream")
                        }
                        MessagesErrorKind::ConsumerDeleted => {
                            warn!(%priority, "consumer deleted; re-creating it")
                        }
                        _ => warn!(%priority, %error, "pull stream error; re-creating it"),
                    }
                    break;
                }
                None => {
                    warn!(%priority, "pull stream ended; re-creating it");
                    break;
                }
            }
        }
        let delay = backoff.next().unwrap_or(Duration::from_secs(10));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

fn new_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build()
}
