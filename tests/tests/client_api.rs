//! The Rust client API of `leadbus_shared`: process an event and await its intelligence, a
//! handler on a tenant's intelligence, and the gateway's status, intelligence and metrics.

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use leadbus_shared::client::Producer;
use leadbus_shared::gateway_client::{ApiError, GatewayClient};
use leadbus_shared::intel_client::subscribe_intelligence;
use leadbus_shared::status::Phase;
use leadbus_shared::{EventType, IntelType, LeadEvent, LeadId, TenantId};
use leadbus_tests::{Platform, eventually};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);

fn event(lead: &str) -> LeadEvent {
    let mut e = LeadEvent::new(
        EventType::LeadCreated,
        TenantId::new("acme").unwrap(),
        LeadId::new(lead).unwrap(),
    );
    e.data.source = Some("google".into());
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_awaits_the_result_and_handlers_see_every_update() {
    let platform = Platform::start().await;
    let js = platform.js().await;
    let producer = Producer::new(js.clone());

    let (tx, mut updates) = mpsc::unbounded_channel();
    let subscription = subscribe_intelligence(
        &js.client(),
        &TenantId::new("acme").unwrap(),
        Some(IntelType::IntelligenceComplete),
        move |update| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(update);
            }
        },
    )
    .await
    .unwrap();

    let e = event("api-1");
    let intel = producer.process(&e, WAIT).await.unwrap();
    assert_eq!(intel.event_id, e.event_id);
    assert_eq!(intel.lead_id.as_str(), "api-1");
    assert!(intel.lead_score.is_some());
    // A retry of the same event finds the stored result.
    let again = producer.process(&e, WAIT).await.unwrap();
    assert_eq!(again.event_id, e.event_id);

    let update = tokio::time::timeout(WAIT, updates.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(update.intel_type, IntelType::IntelligenceComplete);
    assert_eq!(update.intelligence.event_id, e.event_id);
    subscription.stop();
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_client_reads_status_intelligence_and_metrics() {
    let platform = Platform::start().await;
    let base = format!("http://{}", platform.gateway_addr);
    let gateway = GatewayClient::new(&base, &platform.token("acme")).unwrap();

    let accepted = gateway
        .ingest(&event("api-2"), Some("hook-api-2"))
        .await
        .unwrap();
    assert_eq!(accepted.event_id, "hook-api-2");
    assert!(!accepted.duplicate);
    let retried = gateway
        .ingest(&event("api-2"), Some("hook-api-2"))
        .await
        .unwrap();
    assert!(retried.duplicate);

    let done = eventually(WAIT, || async {
        matches!(
            gateway.event_status("hook-api-2").await,
            Ok(Some(s)) if s.status == Phase::Completed
        )
    })
    .await;
    assert!(done);
    let latest = gateway.latest_intelligence("api-2").await.unwrap().unwrap();
    assert_eq!(latest.data.event_id, "hook-api-2");
    assert!(gateway.event_status("unknown").await.unwrap().is_none());
    assert!(
        gateway
            .latest_intelligence("nobody")
            .await
            .unwrap()
            .is_none()
    );

    let metrics = gateway.metrics().await.unwrap();
    assert_eq!(metrics["tenant"], "acme");
    assert!(metrics["totals"]["ingested"].as_u64() >= Some(1));

    let stranger = GatewayClient::new(&base, "not-a-token").unwrap();
    match stranger.metrics().await {
        Err(ApiError::Refused { status, error, .. }) => {
            assert_eq!((status, error.as_str()), (401, "unauthorized"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_producer_never_stalls_a_caller_holding_its_acks() {
    let platform = Platform::gateway_only(|_| {}).await;
    let nats = async_nats::connect(platform.nats.url()).await.unwrap();
    let producer = Producer::connect(nats);
    let count = leadbus_shared::client::MAX_UNACKED_PUBLISHES * 3;

    // Every ack held, none awaited, while sending three windows' worth.
    let sending = async {
        let mut pending = Vec::with_capacity(count);
        for i in 0..count {
            pending.push(producer.send(&event(&format!("held{i}"))).await.unwrap());
        }
        pending
    };
    let pending = tokio::time::timeout(Duration::from_secs(60), sending)
        .await
        .expect("sends stalled behind acks nobody had awaited yet");

    let mut sequences = std::collections::HashSet::new();
    for ack in pending {
        let stored = ack.await.unwrap();
        assert!(!stored.duplicate);
        sequences.insert(stored.sequence);
    }
    assert_eq!(sequences.len(), count);
    platform.stop().await;
}
