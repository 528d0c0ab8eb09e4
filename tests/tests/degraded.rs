//! A model that fails: the lead's last value stands in, else the documented fallback, and the
//! result says it is degraded.

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use leadbus_inference::Inference;
use leadbus_shared::client::Producer;
use leadbus_shared::event::Account;
use leadbus_shared::{EventType, LeadEvent, LeadId, TenantId};
use leadbus_tests::{Platform, models};

const WAIT: Duration = Duration::from_secs(30);

fn event(kind: EventType, lead: &str) -> LeadEvent {
    let mut e = LeadEvent::new(
        kind,
        TenantId::new("acme").unwrap(),
        LeadId::new(lead).unwrap(),
    );
    e.data.account = Some(Account {
        tenure_months: Some(2.0),
        contract: Some("month_to_month".into()),
        monthly_fee: Some(95.0),
        ..Default::default()
    });
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_model_falls_back_to_the_last_value_then_to_the_documented_fallback() {
    let mut platform = Platform::start().await;
    let mut client = platform.client("acme").await;
    let producer = Producer::new(platform.js().await);

    // A healthy churn result for lead "known".
    producer
        .publish(&event(EventType::LeadCreated, "known"))
        .await
        .unwrap();
    let healthy = client.collect("intelligence_complete", 1, WAIT).await;
    let known_churn = healthy[0]["data"]["churn"].clone();
    assert_eq!(healthy[0]["data"]["degraded"], false);
    assert!(known_churn["risk"].is_number());

    // Restart inference with churn failing (switched off).
    platform.inference.take().unwrap().stop().await;
    let mut config = platform.config.clone();
    config.disabled_models = vec!["churn".into()];
    let shutdown = platform.shutdown.child_token();
    platform.inference = Some(Inference::start(&config, models(), shutdown).await.unwrap());

    // The known lead gets its last churn value back; the lead score is unaffected.
    producer
        .publish(&event(EventType::ChurnCheckRequested, "known"))
        .await
        .unwrap();
    let got = client.collect("intelligence_complete", 1, WAIT).await;
    let d = &got[0]["data"];
    assert_eq!(d["degraded"], true);
    assert_eq!(d["cache"]["churn"], "fallback");
    assert_eq!(d["churn"], known_churn);
    assert_ne!(d["cache"]["lead_score"], "fallback");

    // A lead never scored gets the documented fallback: the training churn rate, no drivers.
    producer
        .publish(&event(EventType::LeadCreated, "unknown"))
        .await
        .unwrap();
    let got = client.collect("intelligence_complete", 1, WAIT).await;
    let d = &got[0]["data"];
    assert_eq!(d["degraded"], true);
    let base_rate = models().churn.artifact().trained_on.positive_rate;
    assert_eq!(d["churn"]["risk"].as_f64().unwrap(), base_rate);
    assert!(d["churn"]["drivers"].as_array().unwrap().is_empty());
    platform.stop().await;
}
