//! A corpus of malformed events: each ends in LEAD_DLQ with a reason, nothing crashes, and
//! good events between them are processed.

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use async_nats::HeaderMap;
use futures::StreamExt;
use leadbus_shared::client::Producer;
use leadbus_shared::subjects::DLQ_STREAM;
use leadbus_shared::{EventType, LeadEvent, LeadId, TenantId};
use leadbus_tests::{Platform, eventually, stored_completes};
use serde_json::{Value, json};

const SUBJECT: &str = "leads.events.acme.high.lead_created.l1";

fn good_body() -> Value {
    json!({
        "schema": 1, "event_id": "x", "event_type": "lead_created", "tenant_id": "acme",
        "lead_id": "l1", "priority": "high", "occurred_at": "2026-06-01T10:00:00Z",
        "data": {"source": "google"}
    })
}

fn with(path: &[&str], value: Value) -> Vec<u8> {
    let mut body = good_body();
    let mut cur = &mut body;
    for key in &path[..path.len() - 1] {
        if cur.get(*key).is_none() {
            cur[*key] = json!({});
        }
        cur = &mut cur[*key];
    }
    cur[path[path.len() - 1]] = value;
    serde_json::to_vec(&body).unwrap()
}

fn without(field: &str) -> Vec<u8> {
    let mut body = good_body();
    body.as_object_mut().unwrap().remove(field);
    serde_json::to_vec(&body).unwrap()
}

/// (subject, payload) pairs that must all be dead-lettered.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let s = |b: Vec<u8>| (SUBJECT.to_owned(), b);
    let mut c = vec![
        s(b"".to_vec()),
        s(b"{".to_vec()),
        s(b"}".to_vec()),
        s(b"null".to_vec()),
        s(b"42".to_vec()),
        s(b"\"a string\"".to_vec()),
        s(b"[1,2,3]".to_vec()),
        s(b"{\"schema\":1,}".to_vec()),
        s(b"{'single':'quotes'}".to_vec()),
        s(b"{\"schema\":1 \"event_type\":\"x\"}".to_vec()),
        s(vec![0xff, 0xfe, 0xfd]),
        s(b"{\"schema\":1,\"event_type\":\"lead_\xc3\x28created\"}".to_vec()),
        s([b"{\"a\":\"".as_slice(), &[0x80, 0x81], b"\"}"].concat()),
        s(without("schema")),
        s(without("event_type")),
        s(without("tenant_id")),
        s(without("lead_id")),
        s(without("occurred_at")),
        s(with(&["schema"], json!("one"))),
        s(with(&["schema"], json!(99))),
        s(with(&["schema"], json!(-1))),
        s(with(&["event_type"], json!(7))),
        s(with(&["tenant_id"], json!(["acme"]))),
        s(with(&["lead_id"], json!(null))),
        s(with(&["occurred_at"], json!("yesterday"))),
        s(with(&["occurred_at"], json!(1700000000))),
        s(with(&["priority"], json!("urgent"))),
        s(with(&["event_id"], json!(12))),
        s(with(&["event_id"], json!("has spaces"))),
        s(with(&["event_id"], json!("x".repeat(200)))),
        s(with(&["data"], json!("not an object"))),
        s(with(&["data", "interactions"], json!("many"))),
        s(with(&["data", "interactions"], json!([{"type": "call"}]))),
        s(with(&["data", "do_not_email"], json!("maybe"))),
        s(with(
            &["data", "property_preferences", "bedrooms"],
            json!(-2),
        )),
        s(with(
            &["data", "property_preferences", "bedrooms"],
            json!(999),
        )),
        s(with(
            &["data", "property_preferences", "budget_min"],
            json!(-100000),
        )),
        s(with(
            &["data", "property_preferences", "budget_max"],
            json!(-1),
        )),
        s(with(
            &["data", "property_preferences", "budget_max"],
            json!(1e15),
        )),
        s(with(
            &["data", "property_preferences"],
            json!({"budget_min": 9e5, "budget_max": 1e5}),
        )),
        s(with(
            &["data", "property_preferences", "location"],
            json!({"lat": 200, "lon": 0}),
        )),
        s(with(
            &["data", "property_preferences", "location"],
            json!({"lat": 10, "lon": -999}),
        )),
        s(with(
            &["data", "property_preferences", "zipcode"],
            json!(""),
        )),
        s(with(&["occurred_at"], json!("9999-12-31T00:00:00Z"))),
        s(with(&["occurred_at"], json!("1900-01-01T00:00:00Z"))),
        s(with(
            &["data", "interactions"],
            json!([{"type": "visit", "at": "9999-01-01T00:00:00Z"}]),
        )),
        s(with(
            &["data", "interactions"],
            json!([{"type": "visit", "at": "2026-01-01T00:00:00Z", "duration_s": -5}]),
        )),
        s(with(
            &["data", "interactions"],
            json!([{"type": "", "at": "2026-01-01T00:00:00Z"}]),
        )),
        s(with(&["data", "account", "tenure_months"], json!(-3))),
        s(with(&["data", "name"], json!("n".repeat(5000)))),
        s(with(&["data", "notes"], json!("x".repeat(70 * 1024)))),
    ];
    // A payload whose escaped copy would not fit in a dead letter.
    c.push(s(vec![0x01; 200_000]));
    // Subjects no lane's filter matches: an unknown priority, too few or too many tokens.
    for subject in [
        "leads.events.acme.urgent.lead_created.l1",
        "leads.events.acme.high.lead_created",
        "leads.events.acme.high.lead_created.l1.extra",
    ] {
        c.push((
            subject.to_owned(),
            serde_json::to_vec(&good_body()).unwrap(),
        ));
    }
    // Unknown event types, on a subject that names them.
    for t in ["teleported", "LEAD_CREATED", "lead-created"] {
        c.push((
            format!("leads.events.acme.high.{t}.l1"),
            with(&["event_type"], json!(t)),
        ));
    }
    // Ids that are not single subject tokens, or disagree with the subject.
    for (field, v) in [
        ("tenant_id", "acme.other"),
        ("tenant_id", "*"),
        ("tenant_id", "ac me"),
        ("tenant_id", "other"),
        ("lead_id", "l>1"),
        ("lead_id", ""),
        ("lead_id", "l2"),
        ("event_type", "lead_updated"),
        ("priority", "low"),
    ] {
        c.push(s(with(&[field], json!(v))));
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_input_is_dead_lettered_with_a_reason_and_good_events_flow() {
    let platform = Platform::start().await;
    let js = platform.js().await;
    let producer = Producer::new(js.clone());
    let corpus = corpus();
    assert!(corpus.len() >= 50, "corpus has {} inputs", corpus.len());

    let mut good = Vec::new();
    for (i, (subject, payload)) in corpus.iter().enumerate() {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("poison-{i}").as_str());
        js.publish_with_headers(subject.clone(), headers, payload.clone().into())
            .await
            .unwrap()
            .await
            .unwrap();
        if i % 5 == 0 {
            let lead = LeadId::new(format!("good{i}")).unwrap();
            let e = LeadEvent::new(EventType::LeadCreated, TenantId::new("acme").unwrap(), lead);
            producer.publish(&e).await.unwrap();
            good.push(e.event_id);
        }
    }

    let all_in = eventually(Duration::from_secs(60), || {
        let js = js.clone();
        let n = corpus.len() as u64;
        async move { leadbus_tests::stream_len(&js, DLQ_STREAM).await >= n }
    })
    .await;
    assert!(all_in, "not every malformed input reached LEAD_DLQ");
    assert_eq!(
        leadbus_tests::stream_len(&js, DLQ_STREAM).await,
        corpus.len() as u64
    );

    let consumer = js
        .get_stream(DLQ_STREAM)
        .await
        .unwrap()
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    for _ in 0..corpus.len() {
        let msg = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let letter: Value = serde_json::from_slice(&msg.payload).unwrap();
        assert!(
            letter["reason"].as_str().is_some_and(|r| r.len() > 5),
            "{letter}"
        );
        assert!(letter["kind"].is_string());
        assert_eq!(letter["delivery_count"], 1);
    }

    let done = eventually(Duration::from_secs(30), || {
        let js = js.clone();
        let good = good.clone();
        async move {
            let stored = stored_completes(&js).await;
            good.iter().all(|id| stored.get(id) == Some(&1))
        }
    })
    .await;
    assert!(
        done,
        "good events between the poison were not all processed once"
    );
    platform.stop().await;
}
