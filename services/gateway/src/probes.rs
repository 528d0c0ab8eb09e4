//! Dependency checks for `/readyz` and `/v1/metrics`: NATS, Redis, the models, and the depth
//! of the inference service's queue per priority. Results are cached for a second, so many
//! dashboards polling at once cost one round of checks.
//!
//! The gateway does not load the models itself. It counts them ready when the inference
//! service's priority consumers are being pulled (a pull waiting, or work in flight), since
//! that service starts pulling only once its models are loaded. Shortcoming: an inference
//! service whose models later fail still pulls, and shows up in `degraded` results instead.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use leadbus_shared::Priority;
use leadbus_shared::subjects::EVENTS_STREAM;
use serde::{Deserialize, Serialize};
use tracing::debug;

const CACHE_FOR: Duration = Duration::from_secs(1);
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
const CONSUMER_TEMPLATE: &str = include_str!("../../../nats/consumers/inference.json");

/// The inference service's queue of one priority.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    /// Events stored and not yet delivered to the inference service.
    pub pending: u64,
    /// Events delivered and not yet acknowledged (being processed).
    pub in_flight: u64,
    /// Pull requests the inference service has waiting.
    pub waiting_pulls: u64,
}

/// One round of checks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Checks {
    /// The gateway's NATS connection is up.
    pub nats: bool,
    /// Redis answered PING.
    pub redis: bool,
    /// An inference service with loaded models is pulling (see the module docs).
    pub models: bool,
    /// Queue depth per priority; empty when the consumers could not be read.
    pub queues: BTreeMap<&'static str, QueueDepth>,
}

#[derive(Deserialize)]
struct Template {
    lane_prefix: String,
    discovery_name: String,
}

/// The checks and their cache.
#[derive(Debug)]
pub struct Probes {
    nats: async_nats::Client,
    js: jetstream::Context,
    redis: Option<redis::Client>,
    redis_timeout: Duration,
    lane_prefix: String,
    discovery_name: String,
    cached: Mutex<Option<(Instant, Arc<Checks>)>>,
}

impl Probes {
    /// Checks against these connections; `redis_url` that does not parse counts as down.
    pub fn new(
        nats: async_nats::Client,
        js: jetstream::Context,
        redis_url: &str,
        redis_timeout: Duration,
    ) -> Probes {
        let template = serde_json::from_str::<Template>(CONSUMER_TEMPLATE).unwrap_or(Template {
            lane_prefix: "inference-t".into(),
            discovery_name: "inference-discovery".into(),
        });
        Probes {
            nats,
            js,
            redis: redis::Client::open(redis_url).ok(),
            redis_timeout,
            lane_prefix: template.lane_prefix,
            discovery_name: template.discovery_name,
            cached: Mutex::new(None),
        }
    }

    /// The latest checks, at most a second old.
    pub async fn checks(&self) -> Arc<Checks> {
        if let Some((at, checks)) = &*self.cached.lock().unwrap_or_else(PoisonError::into_inner)
            && at.elapsed() < CACHE_FOR
        {
            return Arc::clone(checks);
        }
        let nats = self.nats.connection_state() == async_nats::connection::State::Connected;
        let (redis, (queues, discovery_pulling)) = tokio::join!(self.redis_ok(), self.queues());
        let models = discovery_pulling
            || queues
                .values()
                .any(|q| q.waiting_pulls > 0 || q.in_flight > 0);
        let checks = Arc::new(Checks {
            nats,
            redis,
            models,
            queues,
        });
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), Arc::clone(&checks)));
        checks
    }

    async fn redis_ok(&self) -> bool {
        let Some(client) = &self.redis else {
            return false;
        };
        let ping = async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        match tokio::time::timeout(self.redis_timeout.max(CHECK_TIMEOUT), ping).await {
            Ok(Ok(_)) => true,
            Ok(Err(error)) => {
                debug!(%error, "redis check failed");
                false
            }
            Err(_) => false,
        }
    }

    /// Queue depth per priority, summed over every tenant's lane, and whether the
    /// inference service's tenant discovery is being pulled.
    async fn queues(&self) -> (BTreeMap<&'static str, QueueDepth>, bool) {
        let mut queues: BTreeMap<&'static str, QueueDepth> = Priority::ALL
            .iter()
            .map(|p| (p.as_str(), QueueDepth::default()))
            .collect();
        let Ok(Ok(stream)) =
            tokio::time::timeout(CHECK_TIMEOUT, self.js.get_stream(EVENTS_STREAM)).await
        else {
            return (queues, false);
        };
        let mut discovery = false;
        let mut infos = stream.consumers();
        let prefix = format!("{}-", self.lane_prefix);
        loop {
            let next = tokio::time::timeout(CHECK_TIMEOUT, infos.next()).await;
            let Ok(Some(Ok(info))) = next else { break };
            if info.name == self.discovery_name {
                discovery = info.num_waiting > 0;
                continue;
            }
            let Some(rest) = info.name.strip_prefix(&prefix) else {
                continue;
            };
            let Some(priority) = rest
                .rsplit('-')
                .next()
                .and_then(|p| p.parse::<Priority>().ok())
            else {
                continue;
            };
            if let Some(q) = queues.get_mut(priority.as_str()) {
                q.pending += info.num_pending;
                q.in_flight += info.num_ack_pending as u64;
                q.waiting_pulls += info.num_waiting as u64;
            }
        }
        (queues, discovery)
    }
}
