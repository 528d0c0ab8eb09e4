//! Bus-level tenant permissions: nats-server started with `nats/auth.conf`. Tenant A's
//! credentials cannot publish as tenant B nor read B's intelligence, while the service users
//! can do their work (the gateway sets up the streams and relays; the inference user consumes
//! events and publishes intelligence).

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use leadbus_gateway::Gateway;
use leadbus_shared::client::Producer;
use leadbus_shared::subjects::{EVENTS_STREAM, INTEL_STREAM};
use leadbus_shared::{Config, EventType, IntelType, LeadEvent, LeadId, TenantId};
use leadbus_tests::intel::{document, send};
use leadbus_tests::{NatsServer, RedisServer, WsClient, init_tracing};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);
const PASSWORDS: [(&str, &str); 4] = [
    ("LEADBUS_NATS_INFERENCE_PASSWORD", "inference-pw"),
    ("LEADBUS_NATS_GATEWAY_PASSWORD", "gateway-pw"),
    ("LEADBUS_NATS_ACME_PASSWORD", "acme-pw"),
    ("LEADBUS_NATS_GLOBEX_PASSWORD", "globex-pw"),
];

fn auth_conf() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../nats/auth.conf")
}

/// A client of `user`; tenants use their own inbox prefix. Server errors arrive on the
/// returned channel.
async fn connect_as(
    server: &NatsServer,
    user: &str,
    password: &str,
) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut options =
        async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(event.to_string());
                }
            });
    if user != "inference" && user != "gateway" {
        options = options.custom_inbox_prefix(format!("_INBOX_{user}"));
    }
    (options.connect(server.url()).await.unwrap(), rx)
}

async fn expect_violation(events: &mut mpsc::UnboundedReceiver<String>, about: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no permissions violation for {about}"))
            .unwrap();
        let lower = event.to_lowercase();
        if lower.contains("permissions violation") && lower.contains(about) {
            return;
        }
    }
}

fn event(tenant: &str, lead: &str) -> LeadEvent {
    LeadEvent::new(
        EventType::LeadCreated,
        TenantId::new(tenant).unwrap(),
        LeadId::new(lead).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_publish_as_another_nor_read_its_intelligence() {
    init_tracing();
    let server = NatsServer::start_with_config(&auth_conf(), &PASSWORDS);
    let redis = RedisServer::start();

    // The gateway's service user sets up the streams and the status bucket, and relays.
    let config = Config {
        nats_url: format!("nats://gateway:gateway-pw@127.0.0.1:{}", server.port),
        redis_url: redis.url(),
        gateway_listen: "127.0.0.1:0".parse().unwrap(),
        drain_secs: 0,
        ..Config::default()
    };
    let shutdown = CancellationToken::new();
    let gateway = Gateway::start(&config, shutdown.clone()).await.unwrap();
    let mut globex_ws = WsClient::connect(gateway.addr, &config.jwt_secret, "globex").await;

    let (acme, mut acme_events) = connect_as(&server, "acme", "acme-pw").await;
    let (globex, _) = connect_as(&server, "globex", "globex-pw").await;
    let (inference, _) = connect_as(&server, "inference", "inference-pw").await;

    // Acme stores its own events...
    let mut acme_js = jetstream::new(acme.clone());
    acme_js.set_timeout(Duration::from_secs(2));
    let producer = Producer::new(acme_js.clone());
    producer.publish(&event("acme", "a1")).await.unwrap();
    // ...but not globex's.
    assert!(producer.publish(&event("globex", "g1")).await.is_err());
    expect_violation(&mut acme_events, "leads.events.globex").await;

    // Acme cannot subscribe to globex's intelligence, nor to the services' inboxes, nor use
    // the JetStream API to read streams.
    let mut spy = acme.subscribe("leads.intel.globex.>").await.unwrap();
    expect_violation(&mut acme_events, "leads.intel.globex").await;
    let mut inbox_spy = acme.subscribe("_INBOX.>").await.unwrap();
    expect_violation(&mut acme_events, "_inbox.>").await;
    assert!(acme_js.get_stream(INTEL_STREAM).await.is_err());
    let mut own = globex.subscribe("leads.intel.globex.>").await.unwrap();
    acme.flush().await.unwrap();
    globex.flush().await.unwrap();

    // The inference user consumes the event stream and publishes intelligence.
    let inference_js = jetstream::new(inference.clone());
    let events = inference_js.get_stream(EVENTS_STREAM).await.unwrap();
    let consumer: consumer::PullConsumer = events
        .create_consumer(consumer::pull::Config {
            durable_name: Some("permissions-check".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut batch = consumer.fetch().max_messages(10).messages().await.unwrap();
    let mut subjects = Vec::new();
    while let Some(msg) = batch.next().await {
        let msg = msg.unwrap();
        subjects.push(msg.subject.to_string());
        msg.ack().await.unwrap();
    }
    assert_eq!(subjects, ["leads.events.acme.medium.lead_created.a1"]);
    let doc = document("globex", "g1", "e-globex-1", 0);
    send(&inference_js, &doc, IntelType::IntelligenceComplete)
        .await
        .await
        .unwrap();

    // Globex gets it, over NATS and through the gateway; acme gets nothing.
    let got = tokio::time::timeout(WAIT, own.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got.subject.as_str(),
        "leads.intel.globex.g1.intelligence_complete"
    );
    let relayed = globex_ws.collect("intelligence_complete", 1, WAIT).await;
    assert_eq!(relayed.len(), 1);
    assert_eq!(relayed[0]["data"]["event_id"], "e-globex-1");
    for sub in [&mut spy, &mut inbox_spy] {
        let leaked = tokio::time::timeout(Duration::from_millis(500), sub.next()).await;
        assert!(
            !matches!(leaked, Ok(Some(_))),
            "acme read another tenant's data"
        );
    }

    shutdown.cancel();
    gateway.stop().await;
}
