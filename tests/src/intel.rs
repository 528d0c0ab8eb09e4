//! Intelligence published straight to LEAD_INTEL, as the inference service would, for tests
//! of the gateway alone. Each message is a real `Intelligence` document.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture};
use chrono::Utc;
use leadbus_shared::event::SCHEMA_VERSION;
use leadbus_shared::intel::{Band, CacheSource, Factor, Intelligence, LeadScore};
use leadbus_shared::subjects::{MSG_ID_HEADER, intel_subject};
use leadbus_shared::{IntelType, LeadId, TenantId};

/// An `Intelligence` of `tenant`/`lead` for event `event_id`, produced now; `pad` bytes of
/// padding (in a factor name) make it as large as a test needs.
pub fn document(tenant: &str, lead: &str, event_id: &str, pad: usize) -> Intelligence {
    Intelligence {
        schema: SCHEMA_VERSION,
        tenant_id: TenantId::new(tenant).unwrap(),
        lead_id: LeadId::new(lead).unwrap(),
        event_id: event_id.to_owned(),
        revision: 1,
        lead_score: Some(LeadScore {
            score: 0.72,
            band: Band::Warm,
            factors: vec![Factor {
                feature: format!("time_on_site_s{}", "_".repeat(pad)),
                value: 600.0,
                contribution: 0.4,
            }],
            model_version: "test-model".into(),
        }),
        churn: None,
        matches: None,
        processing_time_ms: 1.5,
        cache: [("lead_score".to_owned(), CacheSource::Computed)]
            .into_iter()
            .collect(),
        degraded: false,
        replay: false,
        generated_at: Utc::now(),
    }
}

/// Sends one `intel_type` message of `doc` without waiting for the stream.
pub async fn send(
    js: &jetstream::Context,
    doc: &Intelligence,
    intel_type: IntelType,
) -> PublishAckFuture {
    let subject = intel_subject(&doc.tenant_id, &doc.lead_id, intel_type);
    let mut headers = HeaderMap::new();
    headers.insert(
        MSG_ID_HEADER,
        leadbus_shared::subjects::intel_msg_id(
            &doc.tenant_id,
            &doc.lead_id,
            &doc.event_id,
            intel_type,
        )
        .as_str(),
    );
    js.publish_with_headers(subject, headers, serde_json::to_vec(doc).unwrap().into())
        .await
        .unwrap()
}

/// Publishes one `intelligence_complete` and returns its stream sequence.
pub async fn publish(js: &jetstream::Context, tenant: &str, lead: &str, event_id: &str) -> u64 {
    let doc = document(tenant, lead, event_id, 0);
    send(js, &doc, IntelType::IntelligenceComplete)
        .await
        .await
        .unwrap()
        .sequence
}
