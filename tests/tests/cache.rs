//! The cache: unchanged inputs are served from it, and losing Redis costs speed, not results.

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use leadbus_shared::client::Producer;
use leadbus_shared::event::Interaction;
use leadbus_shared::{EventType, LeadEvent, LeadId, TenantId};
use leadbus_tests::Platform;

const WAIT: Duration = Duration::from_secs(30);

fn event(kind: EventType, lead: &str) -> LeadEvent {
    let mut e = LeadEvent::new(
        kind,
        TenantId::new("acme").unwrap(),
        LeadId::new(lead).unwrap(),
    );
    e.data.source = Some("reference".into());
    e.data.interactions = vec![Interaction {
        kind: "site_visit".into(),
        at: e.occurred_at,
        duration_s: Some(600.0),
        page_views: Some(5.0),
        extra: Default::default(),
    }];
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_input_is_served_from_the_cache() {
    let platform = Platform::start().await;
    let mut client = platform.client("acme").await;
    let producer = Producer::new(platform.js().await);

    producer
        .publish(&event(EventType::LeadCreated, "cached"))
        .await
        .unwrap();
    let first = client.collect("intelligence_complete", 1, WAIT).await;
    assert_eq!(first[0]["data"]["cache"]["lead_score"], "computed");

    // A refresh changes nothing the model reads: the score comes from L1, and is the same.
    let refresh = LeadEvent::new(
        EventType::ScoreRefreshRequested,
        TenantId::new("acme").unwrap(),
        LeadId::new("cached").unwrap(),
    );
    producer.publish(&refresh).await.unwrap();
    let second = client.collect("intelligence_complete", 1, WAIT).await;
    assert_eq!(second[0]["data"]["cache"]["lead_score"], "l1");
    assert_eq!(
        second[0]["data"]["lead_score"],
        first[0]["data"]["lead_score"]
    );
    assert!(second[0]["data"]["revision"].as_u64() > first[0]["data"]["revision"].as_u64());
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_for_30_s_during_a_load_loses_nothing_and_the_cache_returns() {
    let mut platform = Platform::start().await;
    let mut client = platform.client("acme").await;
    let js = platform.js().await;
    let producer = Producer::new(js.clone());

    // A load of 10 events/s for 36 s; Redis is killed at its start and back after 30 s.
    let load = tokio::spawn(async move {
        let mut ids = Vec::new();
        for i in 0..360 {
            let e = event(EventType::LeadCreated, &format!("nr{}", i % 60));
            producer.publish(&e).await.unwrap();
            ids.push(e.event_id);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ids
    });
    platform.redis.kill();
    let down = std::time::Instant::now();
    // Results flow during the outage, without the cache.
    let during = client.collect("intelligence_complete", 20, WAIT).await;
    assert_eq!(during.len(), 20, "results stopped while Redis was down");
    assert!(during.iter().all(|m| m["data"]["degraded"] == false));
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(down.elapsed())).await;
    platform.redis.restart();
    let back = std::time::Instant::now();

    let ids = load.await.unwrap();
    let all = leadbus_tests::eventually(Duration::from_secs(60), || {
        let (js, ids) = (js.clone(), ids.clone());
        async move {
            let stored = leadbus_tests::stored_completes(&js).await;
            ids.iter().all(|id| stored.get(id) == Some(&1))
        }
    })
    .await;
    assert!(all, "an event was lost or answered twice across the outage");

    // No restart of the service: the cache is written to again.
    let url = platform.redis.url();
    let written = leadbus_tests::eventually(Duration::from_secs(10), || {
        let url = url.clone();
        async move {
            let Ok(client) = redis::Client::open(url) else {
                return false;
            };
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                return false;
            };
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg("leadbus:acme:*")
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            !keys.is_empty()
        }
    })
    .await;
    assert!(written, "the cache was not used again after Redis returned");
    eprintln!(
        "{} events over a 30 s Redis outage: all answered once; cache written again {:?} after Redis returned",
        ids.len(),
        back.elapsed()
    );
    platform.stop().await;
}
