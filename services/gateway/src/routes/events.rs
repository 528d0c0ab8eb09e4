//! `POST /v1/events` (ingest) and `GET /v1/events/{event_id}` (status).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use leadbus_shared::TenantId;
use leadbus_shared::client::{Producer, PublishError};
use leadbus_shared::status::{EventStatus, Phase, PhaseRecord};
use leadbus_shared::validate::{MAX_EVENT_ID_LEN, RejectKind, decode_event};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::auth::Tenant;
use crate::error::ApiError;
use crate::state::AppState;

/// Header whose value becomes the event id, so a retried webhook is stored once.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Validates an event and stores it in LEAD_EVENTS; 202 with its id and stream sequence.
///
/// The body is the event envelope; `tenant_id` may be left out (the token's tenant is filled
/// in) but may not name another tenant. `event_id` defaults to the `Idempotency-Key` header,
/// then to a fresh UUIDv7.
pub async fn ingest(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable("the gateway is shutting down".into()));
    }
    let max = state.config.max_payload_bytes;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!("the body is over the {max}-byte limit"))
        } else {
            ApiError::BadRequest(format!("cannot read the body: {}", rejection.body_text()))
        }
    })?;
    let key = idempotency_key(&headers)?;
    let payload = prepare(&body, &tenant, key.as_deref())?;
    let event = decode_event(None, &payload, max, || uuid::Uuid::now_v7().to_string()).map_err(
        |rejection| match rejection.kind {
            RejectKind::Oversize => ApiError::PayloadTooLarge(rejection.reason),
            _ => ApiError::Rejected(rejection),
        },
    )?;

    // Past the stream's de-duplication window, the status bucket still knows the key.
    if key.is_some()
        && let Ok(Some(accepted)) = state
            .status
            .phase(&tenant, &event.event_id, Phase::Accepted)
            .await
    {
        info!(%tenant, event_id = %event.event_id, "retried event; already stored");
        metrics::counter!("leadbus_gateway_ingested_total", "duplicate" => "true").increment(1);
        return Ok(accepted_response(
            &event.event_id,
            accepted.stream_sequence,
            true,
        ));
    }

    // Stamped before the publish: inference may start on the event before its ack is back.
    let accepted = PhaseRecord::now();
    let stored = Producer::new(state.js.clone())
        .with_max_payload(max)
        .publish(&event)
        .await
        .map_err(|error| match error {
            PublishError::Invalid(rejection) => ApiError::Rejected(rejection),
            other => {
                warn!(%tenant, error = %other, "ingest publish failed");
                ApiError::Unavailable("the event could not be stored; retry".into())
            }
        })?;
    if !stored.duplicate {
        let record = PhaseRecord {
            lead_id: Some(event.lead_id.to_string()),
            stream_sequence: Some(stored.sequence),
            ..accepted
        };
        if let Err(error) = state
            .status
            .record(&tenant, &event.event_id, Phase::Accepted, &record)
            .await
        {
            warn!(%tenant, event_id = %event.event_id, %error, "accepted status not written");
        }
        state.stats.ingested(tenant.as_str());
    }
    metrics::counter!("leadbus_gateway_ingested_total", "duplicate" => if stored.duplicate { "true" } else { "false" })
        .increment(1);
    info!(
        %tenant,
        event_id = %event.event_id,
        seq = stored.sequence,
        duplicate = stored.duplicate,
        "event ingested"
    );
    Ok(accepted_response(
        &event.event_id,
        Some(stored.sequence),
        stored.duplicate,
    ))
}

fn accepted_response(
    event_id: &str,
    sequence: Option<u64>,
    duplicate: bool,
) -> (StatusCode, Json<Value>) {
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "event_id": event_id,
            "stream_sequence": sequence,
            "duplicate": duplicate,
            "status_url": format!("/v1/events/{event_id}"),
        })),
    )
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| valid_event_id(k))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Idempotency-Key must be 1 to {MAX_EVENT_ID_LEN} of A-Z a-z 0-9 - _ . :"
            ))
        })?;
    Ok(Some(key.to_owned()))
}

/// True for a string that may be an event id.
pub fn valid_event_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_EVENT_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// Fills the tenant and the event id into the body, refusing another tenant's name.
fn prepare(body: &[u8], tenant: &TenantId, key: Option<&str>) -> Result<Vec<u8>, ApiError> {
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let Some(obj) = value.as_object_mut() else {
        return Err(ApiError::BadRequest("the body is not a JSON object".into()));
    };
    match obj.get("tenant_id") {
        None | Some(Value::Null) => {
            obj.insert("tenant_id".into(), json!(tenant.as_str()));
        }
        Some(Value::String(named)) if named != tenant.as_str() => {
            return Err(ApiError::Forbidden(format!(
                "tenant_id {named:?} is not the token's tenant"
            )));
        }
        // Anything else is checked by validation.
        Some(_) => {}
    }
    if let Some(key) = key {
        match obj.get("event_id") {
            None | Some(Value::Null) => {
                obj.insert("event_id".into(), json!(key));
            }
            Some(Value::String(id)) if id == key => {}
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "event_id in the body differs from the Idempotency-Key header".into(),
                ));
            }
        }
    }
    serde_json::to_vec(&value).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Where an event of the token's tenant is: accepted, processing, completed or dead-lettered,
/// with the time of each phase reached. Another tenant's event is 404, as is an unknown one.
pub async fn status(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(event_id): Path<String>,
) -> Result<Json<EventStatus>, ApiError> {
    if !valid_event_id(&event_id) {
        return Err(ApiError::BadRequest(format!(
            "event id must be 1 to {MAX_EVENT_ID_LEN} of A-Z a-z 0-9 - _ . :"
        )));
    }
    match state.status.get(&tenant, &event_id).await {
        Ok(Some(status)) => Ok(Json(status)),
        Ok(None) => Err(ApiError::NotFound(format!(
            "no event {event_id} for this tenant"
        ))),
        Err(error) => {
            warn!(%tenant, %event_id, %error, "status read failed");
            Err(ApiError::Unavailable(
                "event status unavailable; retry".into(),
            ))
        }
    }
}
