//! The gateway: relays LEAD_INTEL to WebSocket clients of the right tenant (with resume from
//! a stream sequence), takes events in over HTTP, answers status, intelligence and metrics
//! reads, and serves the live dashboard.
//!
//! Layout: `feed` reads LEAD_INTEL once per process and hands it to the `hub`, which fans it
//! out to each connection's bounded queue; `ws` serves one client (`ws::replay` catches it
//! up from the stream); `routes` holds the HTTP handlers; `auth` finds the tenant of a
//! request; `stats` derives figures from the relayed intelligence; `probes` checks NATS,
//! Redis and the models; `nats_events` watches the NATS client itself.

pub mod auth;
pub mod error;
pub mod feed;
pub mod hub;
pub mod nats_events;
pub mod probes;
pub mod routes;
pub mod state;
pub mod stats;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::sync::OnceLock;

use axum::Router;
use axum::serve::ListenerExt;
use leadbus_shared::status::{StatusError, StatusStore};
use leadbus_shared::{Config, streams};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::error::ApiError;
use crate::feed::{FeedHealth, run_feed};
use crate::hub::Hub;
use crate::nats_events::NatsEvents;
use crate::probes::Probes;
use crate::state::AppState;
use crate::stats::Stats;

/// The routes, with a JSON 404 for anything else.
pub fn app(state: AppState) -> Router {
    routes::router(state).fallback(|| async { ApiError::NotFound("no such route".into()) })
}

/// The process's Prometheus recorder, installed by the first gateway to start; `None` when
/// something else installed a recorder first.
fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new().install_recorder().ok()?;
            let upkeep = handle.clone();
            // Drains histogram samples even when nobody scrapes, so they cannot pile up.
            let spawned = std::thread::Builder::new()
                .name("prometheus-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                });
            if let Err(error) = spawned {
                warn!(%error, "prometheus upkeep thread not started");
            }
            Some(handle)
        })
        .clone()
}

/// Start-up failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// NATS could not be reached.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The URL tried.
        url: String,
        /// Why.
        reason: String,
    },
    /// The streams could not be set up.
    #[error(transparent)]
    Streams(#[from] streams::StreamSetupError),
    /// The event status bucket could not be opened.
    #[error(transparent)]
    Status(#[from] StatusError),
    /// The listen address is taken or not allowed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    /// Where it listens (the real port when 0 was asked for).
    pub addr: SocketAddr,
    server: JoinHandle<()>,
    feed: JoinHandle<()>,
    sockets: TaskTracker,
    shutdown: CancellationToken,
    drain: Duration,
}

impl Gateway {
    /// Connects to NATS, ensures the streams, binds, and serves until `shutdown`.
    pub async fn start(
        config: &Config,
        shutdown: CancellationToken,
    ) -> Result<Gateway, StartError> {
        let nats_events = Arc::new(NatsEvents::default());
        let events = Arc::clone(&nats_events);
        let nats = leadbus_shared::nats_url::connect_options(&config.nats_url)
            .name("leadbus-gateway")
            .event_callback(move |event| {
                let events = Arc::clone(&events);
                async move { events.on_event(event) }
            })
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(&config.nats_url);
        let nats = tokio::time::timeout(Duration::from_secs(10), nats)
            .await
            .map_err(|_| StartError::Connect {
                url: config.nats_url.clone(),
                reason: "timed out".into(),
            })?
            .map_err(|e| StartError::Connect {
                url: config.nats_url.clone(),
                reason: e.to_string(),
            })?;
        let js = async_nats::jetstream::new(nats.clone());
        streams::ensure_streams(&js, config).await?;
        let status =
            StatusStore::open(&js, Duration::from_secs(config.stream_max_age_secs)).await?;

        let hub = Arc::new(Hub::default());
        let stats = Arc::new(Stats::default());
        let feed_health = Arc::new(FeedHealth::default());
        let feed = tokio::spawn(run_feed(
            js.clone(),
            Arc::clone(&hub),
            Arc::clone(&stats),
            Arc::clone(&feed_health),
            shutdown.clone(),
        ));

        // Clients connecting right after start must not miss what is published next.
        for _ in 0..200 {
            if feed_health.is_live() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !feed_health.is_live() {
            warn!("intel feed not live yet; starting anyway, it keeps retrying");
        }

        let probes = Arc::new(Probes::new(
            nats.clone(),
            js.clone(),
            &config.redis_url,
            Duration::from_millis(config.redis_timeout_ms),
        ));
        let state = AppState {
            config: Arc::new(config.clone()),
            nats,
            js,
            hub,
            feed_health,
            stats,
            status,
            probes,
            nats_events,
            replay_permits: Arc::new(Semaphore::new(ws::replay::MAX_REPLAYS)),
            prometheus: prometheus(),
            sockets: TaskTracker::new(),
            shutdown: shutdown.clone(),
        };
        let listener = TcpListener::bind(config.gateway_listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.gateway_listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.gateway_listen,
            source,
        })?;
        let sockets = state.sockets.clone();
        // Draining: the shutdown signal makes `/readyz` answer 503 and closes every WebSocket
        // at once; the listener stops accepting `drain_secs` later.
        let stop_serving = CancellationToken::new();
        let drain = Duration::from_secs(config.drain_secs);
        let (signal, stop) = (shutdown.clone(), stop_serving.clone());
        tokio::spawn(async move {
            signal.cancelled().await;
            info!(drain_secs = drain.as_secs(), "gateway draining");
            tokio::time::sleep(drain).await;
            stop.cancel();
        });
        let server = tokio::spawn(async move {
            // Small WebSocket frames must not wait for the previous frame's delayed ack.
            let listener = listener.tap_io(|tcp| {
                if let Err(error) = tcp.set_nodelay(true) {
                    debug!(%error, "TCP_NODELAY not set on a client socket");
                }
            });
            let serve = axum::serve(listener, app(state))
                .with_graceful_shutdown(stop_serving.cancelled_owned());
            if let Err(error) = serve.await {
                warn!(%error, "gateway server ended with an error");
            }
        });
        info!(%addr, "gateway listening");
        Ok(Gateway {
            addr,
            server,
            feed,
            sockets,
            shutdown,
            drain: Duration::from_secs(config.drain_secs),
        })
    }

    /// Drains (see `drain_secs`), closes every WebSocket with 1001, stops accepting, and
    /// waits (bounded) for all of it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.sockets.close();
        if tokio::time::timeout(Duration::from_secs(5), self.sockets.wait())
            .await
            .is_err()
        {
            warn!("websockets did not close in time");
        }
        let _ = tokio::time::timeout(self.drain + Duration::from_secs(5), self.server).await;
        let _ = self.feed.await;
        info!("gateway stopped");
    }
}
