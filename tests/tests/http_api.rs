//! The HTTP API: every route's success, a missing or expired token (401), another tenant's
//! lead or event (404, never the data), bad input (400/413 with a message), and a retried
//! `Idempotency-Key` stored once.

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use async_nats::HeaderMap;
use leadbus_shared::auth::Claims;
use leadbus_shared::subjects::EVENTS_STREAM;
use leadbus_shared::{EventType, LeadEvent, LeadId, TenantId};
use leadbus_tests::{Platform, eventually};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn event_body(lead: &str) -> Vec<u8> {
    let mut e = LeadEvent::new(
        EventType::LeadCreated,
        TenantId::new("acme").unwrap(),
        LeadId::new(lead).unwrap(),
    );
    e.data.source = Some("google".into());
    let mut v = serde_json::to_value(&e).unwrap();
    // A webhook names neither its tenant (the token does) nor an id (the key does).
    let obj = v.as_object_mut().unwrap();
    obj.remove("tenant_id");
    obj.remove("event_id");
    serde_json::to_vec(&v).unwrap()
}

fn expired_token(secret: &str) -> String {
    let now = chrono::Utc::now().timestamp() as u64;
    let claims = Claims {
        sub: "test".into(),
        tenant: TenantId::new("acme").unwrap(),
        iat: now - 7200,
        exp: now - 3600,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn assert_error(resp: &leadbus_tests::http::Response, status: u16, code: &str) -> Value {
    let body = resp.json();
    assert_eq!(resp.status, status, "{}", resp.text());
    assert_eq!(body["error"], code, "{body}");
    assert!(
        !body["message"].as_str().unwrap_or_default().is_empty(),
        "an error says what was wrong: {body}"
    );
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_is_idempotent_and_its_status_and_intelligence_are_the_tenants_alone() {
    let platform = Platform::start().await;
    let http = platform.http();
    let acme = platform.token("acme");
    let globex = platform.token("globex");
    let key = [("Idempotency-Key", "webhook-42")];

    let first = http
        .post("/v1/events", Some(&acme), &key, &event_body("web-1"))
        .await;
    assert_eq!(first.status, 202, "{}", first.text());
    let accepted = first.json();
    assert_eq!(accepted["event_id"], "webhook-42");
    assert_eq!(accepted["duplicate"], false);
    let seq = accepted["stream_sequence"].as_u64().unwrap();
    assert!(seq > 0);

    // The webhook retries: same answer, stored once.
    let retry = http
        .post("/v1/events", Some(&acme), &key, &event_body("web-1"))
        .await;
    assert_eq!(retry.status, 202);
    assert_eq!(retry.json()["duplicate"], true);
    assert_eq!(retry.json()["stream_sequence"], seq);
    let mut events = platform.js().await.get_stream(EVENTS_STREAM).await.unwrap();
    assert_eq!(events.info().await.unwrap().state.messages, 1);

    // Its status goes to completed, with the time of each phase.
    let status_path = "/v1/events/webhook-42";
    let completed = eventually(WAIT, || async {
        http.get(status_path, Some(&acme)).await.json()["status"] == "completed"
    })
    .await;
    assert!(
        completed,
        "{}",
        http.get(status_path, Some(&acme)).await.text()
    );
    let status = http.get(status_path, Some(&acme)).await.json();
    assert_eq!(status["tenant_id"], "acme");
    assert_eq!(status["lead_id"], "web-1");
    assert_eq!(status["stream_sequence"], seq);
    for phase in ["accepted_at", "processing_at", "completed_at"] {
        assert!(status[phase].is_string(), "{phase}: {status}");
    }
    assert!(status["dead_lettered_at"].is_null());

    // The lead's latest intelligence is that event's.
    let intel = http.get("/v1/leads/web-1/intelligence", Some(&acme)).await;
    assert_eq!(intel.status, 200, "{}", intel.text());
    let intel = intel.json();
    assert_eq!(intel["data"]["event_id"], "webhook-42");
    assert_eq!(intel["data"]["tenant_id"], "acme");
    assert!(intel["seq"].as_u64().unwrap() > 0);

    // Another tenant sees neither.
    for path in [status_path, "/v1/leads/web-1/intelligence"] {
        let resp = http.get(path, Some(&globex)).await;
        assert_error(&resp, 404, "not_found");
        assert!(!resp.text().contains("acme"), "{}", resp.text());
    }
    // An unknown event and lead of one's own are 404 too.
    assert_error(
        &http.get("/v1/events/nope", Some(&acme)).await,
        404,
        "not_found",
    );
    assert_error(
        &http.get("/v1/leads/nobody/intelligence", Some(&acme)).await,
        404,
        "not_found",
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tenant_route_refuses_a_missing_expired_or_forged_token() {
    let platform = Platform::gateway_only(|_| {}).await;
    let http = platform.http();
    let expired = expired_token(&platform.config.jwt_secret);
    let forged = expired_token("someone-elses-secret-entirely");
    let routes = [
        ("POST", "/v1/events"),
        ("GET", "/v1/events/e-1"),
        ("GET", "/v1/leads/l-1/intelligence"),
        ("GET", "/v1/metrics"),
        ("GET", "/v1/ws"),
    ];
    for (method, path) in routes {
        for token in [None, Some(expired.as_str()), Some(forged.as_str())] {
            let body = (method == "POST").then_some(b"{}".as_slice());
            let resp = http.request(method, path, token, &[], body).await;
            assert_error(&resp, 401, "unauthorized");
        }
    }
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_status_and_a_message() {
    let platform = Platform::gateway_only(|_| {}).await;
    let http = platform.http();
    let acme = platform.token("acme");
    let post = |body: Vec<u8>, headers: &'static [(&'static str, &'static str)]| {
        let acme = acme.clone();
        async move { http.post("/v1/events", Some(&acme), headers, &body).await }
    };

    assert_error(&post(b"{not json".to_vec(), &[]).await, 400, "bad_request");
    assert_error(&post(b"[1,2]".to_vec(), &[]).await, 400, "bad_request");
    let unknown = String::from_utf8(event_body("l1"))
        .unwrap()
        .replace("lead_created", "teleported");
    let body = assert_error(&post(unknown.into_bytes(), &[]).await, 400, "invalid_event");
    assert_eq!(body["kind"], "unknown_event_type");
    let mut other: Value = serde_json::from_slice(&event_body("l1")).unwrap();
    other["tenant_id"] = json!("globex");
    assert_error(
        &post(serde_json::to_vec(&other).unwrap(), &[]).await,
        403,
        "forbidden",
    );
    let mut bad_lead: Value = serde_json::from_slice(&event_body("l1")).unwrap();
    bad_lead["lead_id"] = json!("a.b");
    let body = assert_error(
        &post(serde_json::to_vec(&bad_lead).unwrap(), &[]).await,
        400,
        "invalid_event",
    );
    assert_eq!(body["kind"], "invalid_id");
    assert_error(
        &post(event_body("l1"), &[("Idempotency-Key", "has space")]).await,
        400,
        "bad_request",
    );
    let mut with_id: Value = serde_json::from_slice(&event_body("l1")).unwrap();
    with_id["event_id"] = json!("other-id");
    assert_error(
        &post(
            serde_json::to_vec(&with_id).unwrap(),
            &[("Idempotency-Key", "key-1")],
        )
        .await,
        400,
        "bad_request",
    );
    let mut huge: Value = serde_json::from_slice(&event_body("l1")).unwrap();
    huge["data"]["notes"] = json!("x".repeat(70 * 1024));
    assert_error(
        &post(serde_json::to_vec(&huge).unwrap(), &[]).await,
        413,
        "payload_too_large",
    );

    assert_error(
        &http.get("/v1/leads/a.b/intelligence", Some(&acme)).await,
        400,
        "bad_request",
    );
    assert_error(
        &http.get("/v1/events/bad%20id", Some(&acme)).await,
        400,
        "bad_request",
    );
    // A malformed WebSocket query is refused as JSON too.
    assert_error(
        &http.get("/v1/ws?resume_from=abc", Some(&acme)).await,
        400,
        "bad_request",
    );
    assert_error(
        &http.get("/v1/nowhere", Some(&acme)).await,
        404,
        "not_found",
    );

    // None of it reached the stream.
    let mut events = platform.js().await.get_stream(EVENTS_STREAM).await.unwrap();
    assert_eq!(events.info().await.unwrap().state.messages, 0);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_reads_as_dead_lettered_with_its_reason() {
    let platform = Platform::start().await;
    let js = platform.js().await;
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", "poison-7");
    js.publish_with_headers(
        "leads.events.acme.high.lead_created.p1",
        headers,
        "{not json".into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();

    let http = platform.http();
    let acme = platform.token("acme");
    let dead = eventually(WAIT, || async {
        http.get("/v1/events/poison-7", Some(&acme)).await.json()["status"] == "dead_lettered"
    })
    .await;
    let status = http.get("/v1/events/poison-7", Some(&acme)).await.json();
    assert!(dead, "{status}");
    assert_eq!(status["reason"], "malformed_json");
    assert!(status["dead_lettered_at"].is_string());
    assert!(status["accepted_at"].is_null(), "not taken in over HTTP");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_metrics_and_the_dashboard_page() {
    let mut platform = Platform::start_with(|c| c.drain_secs = 3).await;
    let http = platform.http();
    let acme = platform.token("acme");

    let ready = eventually(WAIT, || async {
        http.get("/readyz", None).await.status == 200
    })
    .await;
    let readyz = http.get("/readyz", None).await.json();
    assert!(ready, "{readyz}");
    assert_eq!(readyz["redis"], true);
    assert_eq!(readyz["models"], true);

    let accepted = http
        .post("/v1/events", Some(&acme), &[], &event_body("m-1"))
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    let counted = eventually(WAIT, || async {
        http.get("/v1/metrics", Some(&acme)).await.json()["totals"]["events_completed"] == 1
    })
    .await;
    let doc = http.get("/v1/metrics", Some(&acme)).await.json();
    assert!(counted, "{doc}");
    assert_eq!(doc["tenant"], "acme");
    assert_eq!(doc["totals"]["ingested"], 1);
    assert!(doc["processing_ms"]["p50"].as_f64().unwrap() > 0.0, "{doc}");
    for p in ["p95", "p99", "avg"] {
        assert!(doc["processing_ms"][p].is_number(), "{doc}");
        assert!(doc["delivery_ms"][p].is_number(), "{doc}");
    }
    for priority in ["critical", "high", "medium", "low"] {
        assert!(doc["queue_depth"][priority]["pending"].is_u64(), "{doc}");
    }
    assert!(doc["cache"]["lookups"].as_u64().unwrap() >= 1, "{doc}");
    assert!(doc["events_per_second"].is_number());
    assert_eq!(doc["health"]["nats"], true);
    assert_eq!(doc["totals"]["dead_lettered"], 0);
    // Another tenant's document has none of it.
    let other = http
        .get("/v1/metrics", Some(&platform.token("globex")))
        .await
        .json();
    assert_eq!(other["totals"]["events_completed"], 0);

    let prom = http.get("/metrics", None).await;
    assert_eq!(prom.status, 200);
    assert!(prom.text().contains("leadbus_"), "{}", prom.text());

    let page = http.get("/", None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().contains("/v1/ws"));

    // Redis down: not ready, and the body says why.
    platform.redis.kill();
    let down = eventually(WAIT, || async {
        http.get("/readyz", None).await.status == 503
    })
    .await;
    let readyz = http.get("/readyz", None).await.json();
    assert!(down, "{readyz}");
    assert_eq!(readyz["redis"], false);
    platform.redis.restart();

    // Draining: still answering, but not ready.
    platform.shutdown.cancel();
    let readyz = http.get("/readyz", None).await;
    assert_eq!(readyz.status, 503);
    assert_eq!(readyz.json()["draining"], true);
    platform.stop().await;
}
