//! What the gateway's NATS client tells about itself. A slow consumer there would mean the
//! client dropped messages it could not hand over fast enough: it is logged at error level
//! and counted, and `/readyz` and `/v1/metrics` show the count.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_nats::Event;
use tracing::{error, info, warn};

/// Counters of client events.
#[derive(Debug, Default)]
pub struct NatsEvents {
    /// Slow-consumer events (messages dropped by the client).
    pub slow_consumers: AtomicU64,
    /// Disconnections.
    pub disconnects: AtomicU64,
    /// Errors the server reported (permissions, limits).
    pub server_errors: AtomicU64,
}

impl NatsEvents {
    /// Slow-consumer events so far.
    pub fn slow_consumers(&self) -> u64 {
        self.slow_consumers.load(Ordering::Relaxed)
    }

    /// Handles one client event.
    pub fn on_event(self: &Arc<Self>, event: Event) {
        match event {
            Event::SlowConsumer(sid) => {
                self.slow_consumers.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("leadbus_gateway_nats_slow_consumer_total").increment(1);
                error!(
                    sid,
                    "gateway NATS subscription is a slow consumer: messages were dropped"
                );
            }
            Event::Disconnected => {
                self.disconnects.fetch_add(1, Ordering::Relaxed);
                warn!("gateway disconnected from NATS; reconnecting");
            }
            Event::Connected => info!("gateway connected to NATS"),
            Event::ServerError(err) => {
                self.server_errors.fetch_add(1, Ordering::Relaxed);
                warn!(error = %err, "NATS server reported an error");
            }
            Event::ClientError(err) => warn!(error = %err, "NATS client error"),
            Event::LameDuckMode => warn!("NATS server entering lame duck mode"),
            other => info!(event = %other, "NATS client event"),
        }
    }
}
