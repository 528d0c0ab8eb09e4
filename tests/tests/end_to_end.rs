//! The platform end to end: events in over JetStream, three models, Redis, WebSocket out.

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use async_nats::HeaderMap;
use futures::StreamExt;
use leadbus_shared::client::Producer;
use leadbus_shared::event::{Account, GeoPoint, Interaction, PropertyPreferences};
use leadbus_shared::subjects::{DLQ_STREAM, EVENTS_STREAM, INTEL_STREAM};
use leadbus_shared::{EventType, LeadEvent, LeadId, Priority, TenantId};
use leadbus_tests::Platform;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn event(kind: EventType, tenant: &str, lead: &str) -> LeadEvent {
    let mut e = LeadEvent::new(
        kind,
        TenantId::new(tenant).unwrap(),
        LeadId::new(lead).unwrap(),
    );
    e.priority = Priority::High;
    e
}

fn with_activity(mut e: LeadEvent, visits: usize) -> LeadEvent {
    e.data.source = Some("google".into());
    e.data.origin = Some("landing_page_submission".into());
    e.data.interactions = (0..visits)
        .map(|_| Interaction {
            kind: "site_visit".into(),
            at: e.occurred_at,
            duration_s: Some(120.0),
            page_views: Some(3.0),
            extra: Default::default(),
        })
        .collect();
    e
}

fn preferences() -> PropertyPreferences {
    PropertyPreferences {
        bedrooms: Some(3),
        budget_min: Some(300_000.0),
        budget_max: Some(700_000.0),
        location: Some(GeoPoint {
            lat: 47.61,
            lon: -122.33,
            radius_km: Some(15.0),
        }),
        ..Default::default()
    }
}

fn assert_probability(v: &Value, what: &str) {
    let p = v.as_f64().unwrap_or(f64::NAN);
    assert!((0.0..=1.0).contains(&p), "{what} = {v} is not in [0, 1]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_yields_exactly_one_complete_with_scores_versions_and_factors() {
    let platform = Platform::start().await;
    let mut client = platform.client("acme").await;
    let producer = Producer::new(platform.js().await);

    let mut sent = HashSet::new();
    for i in 0..20 {
        let lead = format!("lead-{}", i % 7);
        let kind = [
            EventType::LeadCreated,
            EventType::InteractionRecorded,
            EventType::LeadUpdated,
            EventType::ChurnCheckRequested,
            EventType::ScoreRefreshRequested,
        ][i % 5];
        let mut e = with_activity(event(kind, "acme", &lead), i % 4);
        e.data.property_preferences = Some(preferences());
        // Churn reads the account facts; a lead without any gets the base rate, no drivers.
        e.data.account = Some(Account {
            tenure_months: Some((i * 3) as f64),
            contract: Some(["month_to_month", "one_year", "two_year"][i % 3].into()),
            monthly_fee: Some(40.0 + i as f64),
            paperless: Some(i % 2 == 0),
            ..Default::default()
        });
        producer.publish(&e).await.unwrap();
        sent.insert(e.event_id.clone());
    }

    let got = client
        .collect("intelligence_complete", sent.len(), WAIT)
        .await;
    // A little longer: nothing more may arrive.
    let extra = client
        .collect("intelligence_complete", 1, Duration::from_millis(700))
        .await;
    assert!(extra.is_empty(), "a second result arrived: {extra:?}");
    let ids: Vec<&str> = got
        .iter()
        .map(|m| m["data"]["event_id"].as_str().unwrap())
        .collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), sent.len(), "one result per event");
    assert_eq!(unique.len(), ids.len(), "no event answered twice");
    assert!(unique.iter().all(|id| sent.contains(*id)));

    for m in &got {
        assert!(m["seq"].as_u64().unwrap() > 0);
        let d = &m["data"];
        assert_eq!(d["tenant_id"], "acme");
        assert!(d["revision"].as_u64().unwrap() >= 1);
        let score = &d["lead_score"];
        assert_probability(&score["score"], "lead score");
        assert!(!score["model_version"].as_str().unwrap().is_empty());
        assert!(
            !score["factors"].as_array().unwrap().is_empty(),
            "factors: {score}"
        );
        if !d["churn"].is_null() {
            assert_probability(&d["churn"]["risk"], "churn risk");
            assert!(!d["churn"]["model_version"].as_str().unwrap().is_empty());
            assert!(!d["churn"]["drivers"].as_array().unwrap().is_empty());
        }
    }
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_tenant_b_receives_nothing_of_tenant_a() {
    let platform = Platform::start().await;
    let mut a = platform.client("tenant_a").await;
    let mut b = platform.client("tenant_b").await;
    let producer = Producer::new(platform.js().await);
    for i in 0..10 {
        producer
            .publish(&with_activity(
                event(EventType::LeadCreated, "tenant_a", &format!("l{i}")),
                1,
            ))
            .await
            .unwrap();
    }
    let got = a.collect("intelligence_complete", 10, WAIT).await;
    assert_eq!(got.len(), 10);
    // Everything of A has been relayed by now; B must have seen none of it.
    assert!(
        b.next_json(Duration::from_secs(1)).await.is_none(),
        "tenant B saw tenant A's data"
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_with_subject_syntax_or_spaces_are_refused_before_nats() {
    let platform = Platform::start().await;
    for bad in ["acme.other", "*", ">", "ac me", "a>b", ""] {
        assert!(TenantId::new(bad).is_err(), "tenant {bad:?} accepted");
        assert!(LeadId::new(bad).is_err(), "lead {bad:?} accepted");
        let body = json!({
            "schema": 1, "event_type": "lead_created", "tenant_id": bad, "lead_id": "ok",
            "occurred_at": "2026-01-01T00:00:00Z"
        });
        assert!(
            serde_json::from_value::<LeadEvent>(body).is_err(),
            "{bad:?} decoded"
        );
    }
    // The producer refuses invalid values before publishing, too.
    let producer = Producer::new(platform.js().await);
    let mut e = event(EventType::LeadCreated, "acme", "l1");
    e.data.property_preferences = Some(PropertyPreferences {
        budget_min: Some(-1.0),
        ..Default::default()
    });
    assert!(producer.publish(&e).await.is_err());

    let mut stream = platform.js().await.get_stream(EVENTS_STREAM).await.unwrap();
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        0,
        "something reached NATS"
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_events_go_to_the_dlq_with_a_reason_and_later_events_still_flow() {
    let platform = Platform::start().await;
    let mut client = platform.client("acme").await;
    let js = platform.js().await;

    let subject = "leads.events.acme.high.lead_created.p1";
    let mut oversize = serde_json::to_value(event(EventType::LeadCreated, "acme", "p1")).unwrap();
    oversize["data"]["notes"] = json!("x".repeat(70 * 1024));
    let poison: [(&str, Vec<u8>); 3] = [
        (subject, b"{not json".to_vec()),
        (
            "leads.events.acme.high.teleported.p1",
            serde_json::to_vec(&json!({
                "schema": 1, "event_id": "e-unknown", "event_type": "teleported",
                "tenant_id": "acme", "lead_id": "p1", "occurred_at": "2026-01-01T00:00:00Z"
            }))
            .unwrap(),
        ),
        (subject, serde_json::to_vec(&oversize).unwrap()),
    ];
    for (subject, payload) in poison {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("poison-{}", payload.len()).as_str());
        js.publish_with_headers(subject.to_owned(), headers, payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let good = with_activity(event(EventType::LeadCreated, "acme", "p2"), 2);
    Producer::new(js.clone()).publish(&good).await.unwrap();

    let got = client.collect("intelligence_complete", 1, WAIT).await;
    assert_eq!(got.len(), 1, "the good event was not processed");
    assert_eq!(got[0]["data"]["event_id"], good.event_id.as_str());

    let dlq = js.get_stream(DLQ_STREAM).await.unwrap();
    let consumer = dlq
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let msg = tokio::time::timeout(WAIT, messages.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let letter: Value = serde_json::from_slice(&msg.payload).unwrap();
        assert!(!letter["reason"].as_str().unwrap().is_empty());
        assert!(
            letter["subject"]
                .as_str()
                .unwrap()
                .starts_with("leads.events.acme.")
        );
        assert!(
            msg.subject.starts_with("leads.dlq.acme."),
            "{}",
            msg.subject
        );
        kinds.push(letter["kind"].as_str().unwrap().to_owned());
    }
    kinds.sort();
    assert_eq!(kinds, ["malformed_json", "oversize", "unknown_event_type"]);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn property_viewed_runs_scoring_and_matching_not_churn() {
    let platform = Platform::start().await;
    let mut client = platform.client("acme").await;
    let mut e = with_activity(event(EventType::PropertyViewed, "acme", "viewer"), 1);
    e.data.property_preferences = Some(preferences());
    e.data.property_id = Some("7129300520".into());
    Producer::new(platform.js().await)
        .publish(&e)
        .await
        .unwrap();

    let got = client.collect("intelligence_complete", 1, WAIT).await;
    assert_eq!(got.len(), 1);
    let d = &got[0]["data"];
    assert!(d["lead_score"].is_object(), "{d}");
    assert!(d["matches"].is_object(), "{d}");
    assert!(d["churn"].is_null(), "{d}");
    assert!(d["cache"].get("churn").is_none());

    // The partial updates in LEAD_INTEL follow the same table.
    let mut intel = platform.js().await.get_stream(INTEL_STREAM).await.unwrap();
    let info = intel.info().await.unwrap();
    let mut subjects = Vec::new();
    for seq in 1..=info.state.last_sequence {
        subjects.push(
            intel
                .get_raw_message(seq)
                .await
                .unwrap()
                .subject
                .to_string(),
        );
    }
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "leads.intel.acme.viewer.intelligence_complete",
            "leads.intel.acme.viewer.lead_score_update",
            "leads.intel.acme.viewer.property_match_found",
        ]
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_reusing_another_tenants_event_id_suppresses_nothing() {
    let platform = Platform::start().await;
    let mut a = platform.client("tenant_a").await;
    let mut b = platform.client("tenant_b").await;
    let producer = Producer::new(platform.js().await);
    for (tenant, lead) in [("tenant_a", "crm-1001"), ("tenant_b", "crm-2002")] {
        let mut e = with_activity(event(EventType::LeadCreated, tenant, lead), 1);
        e.event_id = "order-42".into();
        let stored = producer.publish(&e).await.unwrap();
        assert!(
            !stored.duplicate,
            "{tenant}'s event was taken for a duplicate"
        );
    }
    for (client, lead) in [(&mut a, "crm-1001"), (&mut b, "crm-2002")] {
        let got = client.collect("intelligence_complete", 1, WAIT).await;
        assert_eq!(got.len(), 1, "no result for {lead}");
        assert_eq!(got[0]["data"]["event_id"], "order-42");
        assert_eq!(got[0]["lead_id"], lead);
    }
    platform.stop().await;
}
