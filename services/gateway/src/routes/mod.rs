//! The HTTP routes, one file per area: `events` (ingest and status), `leads`, `metrics`,
//! `health`, `dashboard`. WebSocket lives in `crate::ws`.

pub mod dashboard;
pub mod events;
pub mod health;
pub mod leads;
pub mod metrics;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::state::AppState;
use crate::ws;

/// Every route of the gateway.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.max_payload_bytes;
    Router::new()
        .route("/", get(dashboard::page))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::prometheus))
        .route("/v1/metrics", get(metrics::document))
        .route(
            "/v1/events",
            post(events::ingest).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route("/v1/events/{event_id}", get(events::status))
        .route(
            "/v1/leads/{lead}/intelligence",
            get(leads::latest_intelligence),
        )
        .route("/v1/ws", get(ws::ws_handler))
        .with_state(state)
}
