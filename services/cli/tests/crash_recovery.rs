//! The inference service as a real process: killed with SIGKILL mid-load, and stopped with
//! SIGTERM mid-load. Either way, after a restart every event has exactly one result.

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::future::IntoFuture;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use leadbus_inference::pipeline::ProfileStore;
use leadbus_shared::client::Producer;
use leadbus_shared::event::Interaction;
use leadbus_shared::{EventType, LeadEvent, LeadId, TenantId};
use leadbus_tests::{NatsServer, RedisServer, data_dir, eventually, stored_completes};

/// `leadbus inference` against the given servers, with a short ack wait so redeliveries
/// come quickly.
fn spawn_inference(nats: &NatsServer, redis: &RedisServer) -> Child {
    Command::new(env!("CARGO_BIN_EXE_leadbus"))
        .arg("inference")
        .env("LEADBUS_NATS_URL", nats.url())
        .env("LEADBUS_REDIS_URL", redis.url())
        .env("LEADBUS_DATA_DIR", data_dir())
        .env("LEADBUS_INFERENCE_LISTEN", "127.0.0.1:0")
        .env("LEADBUS_ACK_WAIT_SECS", "3")
        .env("LEADBUS_PROCESSING_TIMEOUT_SECS", "10")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn events(n: usize, leads: usize) -> Vec<LeadEvent> {
    (0..n)
        .map(|i| {
            let mut e = LeadEvent::new(
                EventType::InteractionRecorded,
                TenantId::new("acme").unwrap(),
                LeadId::new(format!("lead{}", i % leads)).unwrap(),
            );
            e.data.interactions = vec![Interaction {
                kind: "site_visit".into(),
                at: e.occurred_at,
                duration_s: Some(30.0),
                page_views: Some(2.0),
                extra: Default::default(),
            }];
            e
        })
        .collect()
}

async fn publish_all(js: &jetstream::Context, events: &[LeadEvent]) {
    let producer = Producer::new(js.clone());
    let mut acks = FuturesUnordered::new();
    for e in events {
        acks.push(producer.send(e).await.unwrap().into_future());
        if acks.len() >= 1000 {
            acks.next().await.unwrap().unwrap();
        }
    }
    while let Some(ack) = acks.next().await {
        ack.unwrap();
    }
}

async fn wait_for_results(js: &jetstream::Context, at_least: usize) {
    let reached = eventually(Duration::from_secs(120), || {
        let js = js.clone();
        async move { stored_completes(&js).await.len() >= at_least }
    })
    .await;
    assert!(reached, "fewer than {at_least} results arrived");
}

/// Every event exactly once in LEAD_INTEL, and each lead's profile counted each event once.
async fn assert_exactly_once(js: &jetstream::Context, events: &[LeadEvent], leads: usize) {
    let ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    let complete = eventually(Duration::from_secs(180), || {
        let (js, ids) = (js.clone(), ids.clone());
        async move {
            let stored = stored_completes(&js).await;
            ids.iter().all(|id| stored.contains_key(id))
        }
    })
    .await;
    let stored = stored_completes(js).await;
    let missing = ids.iter().filter(|id| !stored.contains_key(*id)).count();
    assert!(complete, "{missing} events have no result");
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "events with more than one result: {}",
        twice.len()
    );

    let store = ProfileStore::open(js, 0).await.unwrap();
    let mut expected: HashMap<String, u64> = HashMap::new();
    for e in events {
        *expected.entry(e.lead_id.to_string()).or_default() += 1;
    }
    assert_eq!(expected.len(), leads);
    let tenant = TenantId::new("acme").unwrap();
    for (lead, n) in expected {
        let (profile, _) = store
            .get(&tenant, &LeadId::new(lead.clone()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            profile.visits, n,
            "lead {lead} counted {} of {n} events",
            profile.visits
        );
        assert_eq!(profile.revision, n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_load_then_restart_every_event_exactly_once() {
    let nats = NatsServer::start();
    let redis = RedisServer::start();
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let mut service = spawn_inference(&nats, &redis);
    let events = events(10_000, 500);
    // Streams exist once the service is up.
    assert!(
        eventually(Duration::from_secs(30), || {
            let js = js.clone();
            async move { js.get_stream("LEAD_EVENTS").await.is_ok() }
        })
        .await
    );
    publish_all(&js, &events).await;

    wait_for_results(&js, 1500).await;
    service.kill().unwrap(); // SIGKILL
    service.wait().unwrap();
    let at_kill = stored_completes(&js).await.len();
    eprintln!("killed with {at_kill} of {} results stored", events.len());
    assert!(
        at_kill < events.len(),
        "everything was done before the kill: the test proves nothing"
    );

    let restarted = Instant::now();
    let mut service = spawn_inference(&nats, &redis);
    assert_exactly_once(&js, &events, 500).await;
    eprintln!(
        "recovered all results {:?} after the restart",
        restarted.elapsed()
    );
    service.kill().unwrap();
    service.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_load_exits_in_bounds_and_loses_nothing() {
    let nats = NatsServer::start();
    let redis = RedisServer::start();
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let mut service = spawn_inference(&nats, &redis);
    let events = events(3_000, 200);
    assert!(
        eventually(Duration::from_secs(30), || {
            let js = js.clone();
            async move { js.get_stream("LEAD_EVENTS").await.is_ok() }
        })
        .await
    );
    publish_all(&js, &events).await;
    wait_for_results(&js, 500).await;

    let signalled = Instant::now();
    let pid = service.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exit = loop {
        if let Some(status) = service.try_wait().unwrap() {
            break status;
        }
        // The bound: processing timeout (10 s) plus a margin; past it the test fails.
        assert!(
            signalled.elapsed() < Duration::from_secs(20),
            "no exit within the bound after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("exited {exit} {:?} after SIGTERM", signalled.elapsed());
    assert!(exit.success(), "unclean exit: {exit}");

    let mut service = spawn_inference(&nats, &redis);
    assert_exactly_once(&js, &events, 200).await;
    service.kill().unwrap();
    service.wait().unwrap();
}
