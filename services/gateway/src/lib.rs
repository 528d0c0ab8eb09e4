//! The gateway: relays LEAD_INTEL to WebSocket clients of the right tenant, and serves
//! health over HTTP.
//!
//! Layout: `feed` reads LEAD_INTEL once per process and fans it out, `ws` serves one
//! client, `auth` finds the tenant of a request, `health` answers `/healthz`.

pub mod auth;
pub mod error;
pub mod feed;
pub mod health;
pub mod state;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use leadbus_shared::{Config, streams};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::feed::{FeedHealth, run_feed};
use crate::state::AppState;

/// Messages the fan-out buffers for the slowest client before that client is closed.
pub const FEED_BUFFER: usize = 16 * 1024;

/// The routes.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/v1/ws", get(ws::ws_handler))
        .with_state(state)
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
}

impl Gateway {
    /// Connects to NATS, ensures the streams, binds, and serves until `shutdown`.
    pub async fn start(
        config: &Config,
        shutdown: CancellationToken,
    ) -> Result<Gateway, StartError> {
        let nats = async_nats::ConnectOptions::new()
            .name("leadbus-gateway")
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

        let (tx, _) = broadcast::channel(FEED_BUFFER);
        let feed_health = Arc::new(FeedHealth::default());
        let feed = tokio::spawn(run_feed(
            js,
            tx.clone(),
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

        let state = AppState {
            config: Arc::new(config.clone()),
            nats,
            feed: tx,
            feed_health,
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
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app(state))
                .with_graceful_shutdown(async move { stop.cancelled().await });
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
        })
    }

    /// Stops accepting, closes every WebSocket with 1001, and waits (bounded) for them.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.sockets.close();
        if tokio::time::timeout(Duration::from_secs(5), self.sockets.wait())
            .await
            .is_err()
        {
            warn!("websockets did not close in time");
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
        let _ = self.feed.await;
        info!("gateway stopped");
    }
}
