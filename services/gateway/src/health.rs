//! `GET /healthz`: is the gateway connected and relaying.

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
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
