//! `GET /healthz` (is the gateway relaying) and `GET /readyz` (can it serve: NATS, Redis,
//! models, and not draining). Neither needs a token: they carry no tenant data.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

/// 200 when NATS is connected and the feed is live, else 503; the body says which part is not.
pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let nats = state.nats.connection_state() == async_nats::connection::State::Connected;
    let feed = state.feed_health.is_live();
    let draining = state.shutdown.is_cancelled();
    let ok = nats && feed && !draining;
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "nats": if nats { "connected" } else { "disconnected" },
        "feed": if feed { "live" } else { "down" },
        "draining": draining,
        "last_seq": state.feed_health.last_seq(),
    });
    (status_of(ok), Json(body))
}

/// 200 when NATS, Redis and the models are ready and the gateway is not draining; else 503,
/// with every check in the body.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let checks = state.probes.checks().await;
    let draining = state.shutdown.is_cancelled();
    let feed = state.feed_health.is_live();
    let ready = checks.nats && checks.redis && checks.models && feed && !draining;
    let body = json!({
        "ready": ready,
        "nats": checks.nats,
        "redis": checks.redis,
        "models": checks.models,
        "feed": feed,
        "draining": draining,
        "nats_slow_consumers": state.nats_events.slow_consumers(),
    });
    (status_of(ready), Json(body))
}

fn status_of(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}
