//! `GET /metrics` (Prometheus text, the whole process) and `GET /v1/metrics` (the JSON
//! document of DESIGN.md: the token's tenant's figures, plus the platform's queue depth and
//! health).

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures::TryStreamExt;
use leadbus_shared::TenantId;
use leadbus_shared::subjects::DLQ_STREAM;
use serde_json::{Value, json};

use crate::auth::Tenant;
use crate::state::AppState;

/// The Prometheus exposition of every `leadbus_*` metric of this process.
pub async fn prometheus(State(state): State<AppState>) -> Response {
    match &state.prometheus {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "another metrics recorder is installed in this process",
        )
            .into_response(),
    }
}

/// The metrics document of the token's tenant.
pub async fn document(State(state): State<AppState>, Tenant(tenant): Tenant) -> Json<Value> {
    let (checks, dead_lettered) =
        tokio::join!(state.probes.checks(), dead_letters(&state, &tenant));
    let figures = state.stats.snapshot(tenant.as_str());
    let draining = state.shutdown.is_cancelled();
    let feed = state.feed_health.is_live();
    Json(json!({
        "tenant": tenant.as_str(),
        "generated_at": Utc::now(),
        "totals": {
            "events_completed": figures.events_completed,
            "intel_messages": figures.intel_messages,
            "ingested": figures.ingested,
            "dead_lettered": dead_lettered,
            "degraded": figures.degraded,
            "replayed": figures.replayed,
        },
        "processing_ms": figures.processing_ms,
        "delivery_ms": figures.delivery_ms,
        "events_per_second": figures.events_per_second,
        "series": figures.series,
        "queue_depth": checks.queues,
        "cache": figures.cache,
        "models": figures.models,
        "websocket": {
            "connections": state.hub.counters.connections.load(Ordering::Relaxed),
            "slow_clients_closed": state.hub.counters.slow_clients.load(Ordering::Relaxed),
        },
        "health": {
            "ready": checks.nats && checks.redis && checks.models && feed && !draining,
            "nats": checks.nats,
            "redis": checks.redis,
            "models": checks.models,
            "feed": feed,
            "feed_pending": state.feed_health.pending(),
            "nats_slow_consumers": state.nats_events.slow_consumers(),
            "draining": draining,
        },
    }))
}

/// Dead letters of the tenant still held by LEAD_DLQ; `null` when the stream is unreadable.
async fn dead_letters(state: &AppState, tenant: &TenantId) -> Option<u64> {
    let stream = state.js.get_stream(DLQ_STREAM).await.ok()?;
    let subjects = stream
        .info_with_subjects(format!("leads.dlq.{tenant}.>"))
        .await
        .ok()?;
    subjects
        .try_fold(
            0u64,
            |sum, (_, count)| async move { Ok(sum + count as u64) },
        )
        .await
        .ok()
}
