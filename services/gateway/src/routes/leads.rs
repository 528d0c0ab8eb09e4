//! `GET /v1/leads/{lead}/intelligence`: the latest `intelligence_complete` of a lead, read
//! from LEAD_INTEL as the last message on that lead's subject.

use async_nats::jetstream::stream::LastRawMessageErrorKind;
use axum::Json;
use axum::extract::{Path, State};
use leadbus_shared::subjects::{INTEL_STREAM, intel_subject};
use leadbus_shared::{IntelType, LeadId};
use serde_json::{Value, json};
use tracing::warn;

use crate::auth::Tenant;
use crate::error::ApiError;
use crate::state::AppState;

/// `{"seq": N, "lead_id": ..., "data": Intelligence}`; 404 when the tenant has no such lead.
pub async fn latest_intelligence(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(lead): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let lead = LeadId::new(lead).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let not_found = || ApiError::NotFound(format!("no intelligence for lead {lead}"));
    let unavailable = |error: &dyn std::fmt::Display| {
        warn!(%tenant, %lead, %error, "intelligence read failed");
        ApiError::Unavailable("intelligence unavailable; retry".into())
    };
    let stream = state
        .js
        .get_stream(INTEL_STREAM)
        .await
        .map_err(|e| unavailable(&e))?;
    // The tenant is part of the subject: another tenant's lead of the same name is not found.
    let subject = intel_subject(&tenant, &lead, IntelType::IntelligenceComplete);
    let msg = match stream.get_last_raw_message_by_subject(&subject).await {
        Ok(msg) => msg,
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Err(not_found()),
        Err(e) => return Err(unavailable(&e)),
    };
    let data: Value = serde_json::from_slice(&msg.payload).map_err(|e| unavailable(&e))?;
    Ok(Json(json!({
        "seq": msg.sequence,
        "lead_id": lead.as_str(),
        "data": data,
    })))
}
