//! `GET /healthz` of the inference service: are all four consumers pulling, is Redis there.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::cache::RedisL2;
use crate::consume::Health;

#[derive(Debug, Clone)]
struct HealthState {
    consume: Arc<Health>,
    redis: Option<Arc<RedisL2>>,
    /// Listings in the property catalogue; 0 means matching finds nothing for anyone.
    listings: usize,
    shutdown: CancellationToken,
}

/// 200 while tenant discovery runs, no lane is failing and not draining; 503 otherwise. Redis and
/// the catalogue are reported but do not fail the check: without Redis the service is slower,
/// not wrong; without a catalogue it answers every match with its reason, nothing found.
async fn healthz(State(s): State<HealthState>) -> (StatusCode, Json<Value>) {
    let (lanes_up, lanes_down) = s.consume.lanes();
    let consuming = s.consume.all_consuming();
    let draining = s.shutdown.is_cancelled();
    let redis = s.redis.as_ref().is_some_and(|r| r.is_healthy());
    let ok = consuming && !draining;
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "discovery": s.consume.discovery_live(),
        "tenant_lanes": lanes_up,
        "tenant_lanes_failing": lanes_down,
        "redis": if redis { "up" } else { "down" },
        "catalogue_listings": s.listings,
        "draining": draining,
    });
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}

/// Serves the health endpoint on `addr` until `shutdown`; returns the bound address.
pub async fn serve_health(
    addr: SocketAddr,
    consume: Arc<Health>,
    redis: Option<Arc<RedisL2>>,
    listings: usize,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let state = HealthState {
        consume,
        redis,
        listings,
        shutdown: shutdown.clone(),
    };
    let app = Router::new()
        .route("/healthz", get(healthz))
        .with_state(state);
    tokio::spawn(async move {
        let serve = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(error) = serve.await {
            warn!(%error, "inference health endpoint ended");
        }
    });
    Ok(bound)
}
