//! Tenants and their lanes. A lane is a durable pull consumer for one tenant at one priority,
//! limited to `tenant_max_ack_pending` unacknowledged events. Because every tenant pulls
//! through its own lanes, a tenant with a large backlog holds at most that many events of a
//! priority in flight, and another tenant's event of the same priority waits behind at most
//! `tenant_max_ack_pending` events of each busy tenant, never behind a whole backlog.
//!
//! Lanes are started for the tenants whose lanes already exist (a restart), and for each new
//! tenant the discovery consumer sees; discovery reads only headers and acks nothing.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::Message;
use async_nats::jetstream::stream::Stream;
use futures::{StreamExt, TryStreamExt};
use leadbus_shared::subjects::parse_event_subject;
use leadbus_shared::{Config, Priority, TenantId};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::Health;
use super::board::Board;
use super::consumers::{ensure_discovery, parse_lane_name};
use super::fetch::{Lane, new_backoff, run_fetcher};
use crate::pipeline::Pipeline;

/// Starts and remembers lanes.
#[derive(Debug, Clone)]
pub struct Lanes {
    stream: Stream,
    config: Config,
    pipeline: Arc<Pipeline>,
    board: Arc<Board<Message>>,
    health: Arc<Health>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    known: Arc<Mutex<HashSet<TenantId>>>,
}

impl Lanes {
    /// A lane manager feeding `board`.
    pub fn new(
        stream: Stream,
        config: Config,
        pipeline: Arc<Pipeline>,
        board: Arc<Board<Message>>,
        health: Arc<Health>,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Lanes {
            stream,
            config,
            pipeline,
            board,
            health,
            tasks,
            shutdown,
            known: Arc::default(),
        }
    }

    /// Starts the four lanes of `tenant` unless they run already; `start` is where new lane
    /// consumers begin.
    pub fn ensure(&self, tenant: TenantId, start: Option<u64>) {
        let fresh = match self.known.lock() {
            Ok(mut known) => known.insert(tenant.clone()),
            Err(_) => false,
        };
        if !fresh {
            return;
        }
        info!(%tenant, "starting tenant lanes");
        metrics::gauge!("leadbus_tenant_lanes").increment(4.0);
        for priority in Priority::ALL {
            let lane = Lane {
                tenant: tenant.clone(),
                priority,
                start,
                queue: self.board.add_lane(priority),
            };
            self.tasks.spawn(run_fetcher(
                self.stream.clone(),
                lane,
                self.config.clone(),
                Arc::clone(&self.health),
                self.shutdown.clone(),
            ));
        }
    }

    /// Starts the lanes of every tenant that has lane consumers already.
    pub async fn resume_existing(&self) -> Result<usize, String> {
        let names: Vec<String> = self
            .stream
            .consumer_names()
            .try_collect()
            .await
            .map_err(|e| e.to_string())?;
        let tenants: HashSet<TenantId> = names
            .iter()
            .filter_map(|n| parse_lane_name(n))
            .map(|(t, _)| t)
            .collect();
        let count = tenants.len();
        for tenant in tenants {
            self.ensure(tenant, None);
        }
        Ok(count)
    }

    /// Follows the discovery consumer until `shutdown`, starting lanes for new tenants.
    pub async fn run_discovery(self) {
        let mut backoff = new_backoff();
        while !self.shutdown.is_cancelled() {
            let opened = match ensure_discovery(&self.stream).await {
                Ok(consumer) => consumer
                    .stream()
                    .max_messages_per_batch(512)
                    .heartbeat(Duration::from_secs(5))
                    .messages()
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            let mut messages = match opened {
                Ok(m) => {
                    self.health.set_discovery(true);
                    m
                }
                Err(error) => {
                    self.health.set_discovery(false);
                    let delay = backoff.next().unwrap_or(Duration::from_secs(10));
                    warn!(%error, delay_ms = delay.as_millis() as u64, "tenant discovery unavailable; retrying");
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => continue,
                    }
                }
            };
            loop {
                let next = tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    next = messages.next() => next,
                };
                match next {
                    Some(Ok(msg)) => {
                        backoff = new_backoff();
                        let seq = msg.info().map(|i| i.stream_sequence).ok();
                        let Some(tokens) = parse_event_subject(&msg.subject) else {
                            // No lane's filter matches a subject of another shape.
                            if let Some(seq) = seq {
                                let reason = "subject is not leads.events.{tenant}.{priority}.{event_type}.{lead}";
                                self.pipeline
                                    .dead_letter_stored(&self.stream, seq, reason)
                                    .await;
                            }
                            continue;
                        };
                        if tokens.priority.parse::<Priority>().is_err() {
                            if let Some(seq) = seq {
                                let reason = format!(
                                    "unknown priority {:?} in the subject",
                                    tokens.priority
                                );
                                self.pipeline
                                    .dead_letter_stored(&self.stream, seq, &reason)
                                    .await;
                            }
                            continue;
                        }
                        match TenantId::new(tokens.tenant) {
                            Ok(tenant) => self.ensure(tenant, seq),
                            // No lane can hold it: dead-letter it from here, so it is not
                            // lost silently.
                            Err(error) => {
                                debug!(subject = %msg.subject, %error, "event with an invalid tenant token");
                                if let Some(seq) = seq {
                                    let reason =
                                        format!("subject tenant is not a valid id: {error}");
                                    self.pipeline
                                        .dead_letter_stored(&self.stream, seq, &reason)
                                        .await;
                                }
                            }
                        }
                    }
                    Some(Err(error)) => {
                        self.health.set_discovery(false);
                        warn!(%error, "tenant discovery stream error; re-creating it");
                        break;
                    }
                    None => {
                        self.health.set_discovery(false);
                        warn!("tenant discovery stream ended; re-creating it");
                        break;
                    }
                }
            }
            let delay = backoff.next().unwrap_or(Duration::from_secs(10));
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
}
