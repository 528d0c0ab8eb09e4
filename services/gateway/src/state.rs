//! What every handler shares.

use std::sync::Arc;

use leadbus_shared::Config;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::feed::{FeedHealth, FeedItem};

/// Shared state of the gateway.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Settings.
    pub config: Arc<Config>,
    /// NATS connection (for health).
    pub nats: async_nats::Client,
    /// The fan-out of LEAD_INTEL.
    pub feed: broadcast::Sender<Arc<FeedItem>>,
    /// Feed status.
    pub feed_health: Arc<FeedHealth>,
    /// Every open WebSocket, so shutdown can close them.
    pub sockets: TaskTracker,
    /// Fires on shutdown.
    pub shutdown: CancellationToken,
}
