//! Dependencies failing for real: Redis frozen, nats-server restarted mid-load.

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use leadbus_shared::client::Producer;
use leadbus_shared::{EventType, LeadEvent, LeadId, TenantId};
use leadbus_tests::{Platform, eventually, stored_completes};

fn event(i: usize) -> LeadEvent {
    let mut e = LeadEvent::new(
        EventType::InteractionRecorded,
        TenantId::new("acme").unwrap(),
        LeadId::new(format!("lead{}", i % 50)).unwrap(),
    );
    e.data.source = Some(["google", "reference", "direct_traffic"][i % 3].into());
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_does_not_hang_processing() {
    let platform = Platform::start_with(|c| c.redis_timeout_ms = 100).await;
    let js = platform.js().await;
    let producer = Producer::new(js.clone());

    // Freeze Redis for 15 s (far over the 100 ms command timeout) from another connection;
    // the client may give up waiting for the reply, the server sleeps regardless.
    let url = platform.redis.url();
    tokio::spawn(async move {
        let client = redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let _: Result<String, _> = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(15)
            .query_async(&mut conn)
            .await;
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..40 {
        let e = event(i);
        producer.publish(&e).await.unwrap();
        ids.push(e.event_id);
    }
    let all = eventually(Duration::from_secs(60), || {
        let js = js.clone();
        let ids = ids.clone();
        async move {
            let stored = stored_completes(&js).await;
            ids.iter().all(|id| stored.get(id) == Some(&1))
        }
    })
    .await;
    assert!(all, "events were not processed while Redis was frozen");
    // Informational: the results did not wait for Redis to wake up.
    eprintln!(
        "40 events processed {:?} after publish began, Redis frozen",
        started.elapsed()
    );
    assert!(
        !redis_answers(&platform.redis.url()).await,
        "Redis was not frozen: the test proves nothing"
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_mid_load_loses_nothing_and_the_consumer_resumes() {
    let mut platform = Platform::start().await;
    let js = platform.js().await;
    let producer = Producer::new(js.clone());
    let total = 400;

    let publisher = tokio::spawn(async move {
        let mut accepted = Vec::new();
        for i in 0..total {
            let e = event(i);
            // Producers retry; the event id keeps a retried publish from being stored twice.
            let publish = || producer.publish(&e);
            let backoff = ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(50))
                .with_max_delay(Duration::from_secs(1))
                .with_max_times(60);
            publish.retry(backoff).await.unwrap();
            accepted.push(e.event_id.clone());
        }
        accepted
    });

    tokio::time::sleep(Duration::from_millis(300)).await;
    platform.nats.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    platform.nats.restart();
    let restarted = std::time::Instant::now();

    let accepted = publisher.await.unwrap();
    assert_eq!(accepted.len(), total);
    let js = platform.js().await;
    let all = eventually(Duration::from_secs(120), || {
        let js = js.clone();
        let accepted = accepted.clone();
        async move {
            let stored = stored_completes(&js).await;
            accepted.iter().all(|id| stored.contains_key(id))
        }
    })
    .await;
    let stored = stored_completes(&js).await;
    let missing: HashSet<_> = accepted
        .iter()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    assert!(
        all,
        "{} accepted events have no result after the restart",
        missing.len()
    );
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "events with more than one result: {twice:?}"
    );
    eprintln!(
        "{total} events across a nats-server restart: all answered once, {:?} after the restart",
        restarted.elapsed()
    );
    platform.stop().await;
}

async fn redis_answers(url: &str) -> bool {
    let ping = async {
        let client = redis::Client::open(url).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), ping).await,
        Ok(Some(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_consumer_is_recreated_and_health_says_so_meanwhile() {
    let platform = Platform::start().await;
    let js = platform.js().await;
    let health = std::sync::Arc::clone(&platform.inference.as_ref().unwrap().health);
    assert!(
        eventually(Duration::from_secs(10), || {
            let h = health.clone();
            async move { h.all_consuming() }
        })
        .await
    );

    // The tenant's lanes exist once its first event has been seen.
    let first = event(0);
    Producer::new(js.clone()).publish(&first).await.unwrap();
    assert!(
        eventually(Duration::from_secs(30), || {
            let (js, id) = (js.clone(), first.event_id.clone());
            async move { stored_completes(&js).await.contains_key(&id) }
        })
        .await
    );
    let stream = js.get_stream("LEAD_EVENTS").await.unwrap();
    stream
        .delete_consumer("inference-t-acme-medium")
        .await
        .unwrap();
    // It comes back by itself, and events of that priority flow again.
    assert!(
        eventually(Duration::from_secs(30), || {
            let stream = stream.clone();
            async move {
                stream
                    .consumer_info("inference-t-acme-medium")
                    .await
                    .is_ok()
            }
        })
        .await,
        "consumer not re-created"
    );
    let e = event(1);
    Producer::new(js.clone()).publish(&e).await.unwrap();
    let processed = eventually(Duration::from_secs(30), || {
        let (js, id) = (js.clone(), e.event_id.clone());
        async move { stored_completes(&js).await.contains_key(&id) }
    })
    .await;
    assert!(
        processed,
        "event not processed after the consumer was deleted"
    );
    assert!(health.all_consuming());
    platform.stop().await;
}
