//! What every handler shares.

use std::sync::Arc;

use async_nats::jetstream;
use leadbus_shared::Config;
use leadbus_shared::status::StatusStore;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::feed::FeedHealth;
use crate::hub::Hub;
use crate::nats_events::NatsEvents;
use crate::probes::Probes;
use crate::stats::Stats;

/// Shared state of the gateway.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Settings.
    pub config: Arc<Config>,
    /// NATS connection.
    pub nats: async_nats::Client,
    /// JetStream on that connection.
    pub js: jetstream::Context,
    /// The fan-out of LEAD_INTEL.
    pub hub: Arc<Hub>,
    /// Feed status.
    pub feed_health: Arc<FeedHealth>,
    /// Figures derived from the relayed intelligence.
    pub stats: Arc<Stats>,
    /// Event statuses.
    pub status: StatusStore,
    /// Dependency checks (NATS, Redis, models) and queue depths, briefly cached.
    pub probes: Arc<Probes>,
    /// What the NATS client reported (slow consumers, errors).
    pub nats_events: Arc<NatsEvents>,
    /// Replays running at once.
    pub replay_permits: Arc<Semaphore>,
    /// The Prometheus recorder, when this process could install it.
    pub prometheus: Option<PrometheusHandle>,
    /// Every open WebSocket, so shutdown can close them.
    pub sockets: TaskTracker,
    /// Fires on shutdown.
    pub shutdown: CancellationToken,
}
