//! One task per lane (tenant and priority) pulls that lane's messages into its small queue
//! on the [`Board`](super::board::Board). The pull stream uses a short idle heartbeat; on a missed heartbeat,
//! a deleted consumer or any other stream error it is re-created with backoff. It never ends
//! silently.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::consumer::pull::MessagesErrorKind;
use async_nats::jetstream::stream::Stream;
use async_nats::jetstream::{AckKind, Message};
use backon::{BackoffBuilder, ExponentialBuilder};
use futures::StreamExt;
use leadbus_shared::{Config, Priority, TenantId};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::Health;
use super::board::LaneHandle;
use super::consumers::ensure_lane;

/// Idle heartbeat asked of the server for each pull.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Where a lane starts and what it feeds.
#[derive(Debug)]
pub struct Lane {
    /// The tenant.
    pub tenant: TenantId,
    /// The priority.
    pub priority: Priority,
    /// First stream sequence covered when the consumer is created (an existing one keeps its
    /// position).
    pub start: Option<u64>,
    /// Its queue on the board.
    pub queue: LaneHandle<Message>,
}

/// Pulls one lane's events into its channel until `shutdown`.
pub async fn run_fetcher(
    stream: Stream,
    lane: Lane,
    config: Config,
    health: Arc<Health>,
    shutdown: CancellationToken,
) {
    let Lane {
        tenant,
        priority,
        start,
        queue,
    } = lane;
    let batch = usize::try_from(config.tenant_max_ack_pending)
        .unwrap_or(64)
        .clamp(1, 256);
    let mut up = false;
    let mut set_up = |now: bool| {
        if now != up {
            health.lane_changed(now);
            up = now;
        }
    };
    let mut backoff = new_backoff();
    while !shutdown.is_cancelled() {
        let messages = match ensure_lane(&stream, &tenant, priority, start, &config).await {
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
                set_up(true);
                m
            }
            Err(error) => {
                set_up(false);
                let delay = backoff.next().unwrap_or(Duration::from_secs(10));
                warn!(%tenant, %priority, %error, delay_ms = delay.as_millis() as u64, "cannot open pull stream; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => continue,
                }
            }
        };
        debug!(%tenant, %priority, "consuming");

        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => {
                    give_back(messages, None).await;
                    return;
                }
                next = messages.next() => next,
            };
            match next {
                Some(Ok(msg)) => {
                    backoff = new_backoff();
                    // Waits while the lane's queue is full: this is the prefetch bound.
                    if let Err((msg, _closed)) = queue.push(msg).await {
                        give_back(messages, Some(msg)).await;
                        return;
                    }
                }
                Some(Err(error)) => {
                    set_up(false);
                    match error.kind() {
                        MessagesErrorKind::MissingHeartbeat => {
                            warn!(%tenant, %priority, "missed heartbeat; re-creating pull stream")
                        }
                        MessagesErrorKind::ConsumerDeleted => {
                            warn!(%tenant, %priority, "consumer deleted; re-creating it")
                        }
                        _ => warn!(%tenant, %priority, %error, "pull stream error; re-creating it"),
                    }
                    break;
                }
                None => {
                    warn!(%tenant, %priority, "pull stream ended; re-creating it");
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

/// On shutdown: naks `held` and whatever the client has already pulled for this lane, so
/// the server redelivers them at once (to the next instance) rather than after `ack_wait`.
/// The pull stream is dropped (its inbox unsubscribed) before the naks go out, or the server
/// could hand them straight back to this instance's outstanding pull.
async fn give_back(mut messages: pull::Stream, held: Option<Message>) {
    let mut back: Vec<Message> = held.into_iter().collect();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    // Only what has arrived already: short waits, bounded.
    while back.len() < 1024 {
        let wait = Duration::from_millis(20)
            .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        match tokio::time::timeout(wait, messages.next()).await {
            Ok(Some(Ok(msg))) => back.push(msg),
            _ => break,
        }
    }
    drop(messages);
    for msg in &back {
        if let Err(error) = msg.ack_with(AckKind::Nak(None)).await {
            debug!(%error, "nak on shutdown failed; the server redelivers after ack_wait");
        }
    }
    if !back.is_empty() {
        debug!(given = back.len(), "pulled events handed back on shutdown");
    }
}

pub(crate) fn new_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build()
}
