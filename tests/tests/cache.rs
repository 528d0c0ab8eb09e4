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
async fn results_keep_flowing_with_redis_gone_and_the_cache_returns_with_it() {
    let mut platform = Platform::start().await;
    let mut client = platform.client("acme").await;
    let producer = Producer::new(platform.js().await);

    platform.redis.kill();
    for i in 0..5 {
        producer
            .publish(&event(EventType::LeadCreated, &format!("nr{i}")))
            .await
            .unwrap();
    }
    let got = client.collect("intelligence_complete", 5, WAIT).await;
    assert_eq!(got.len(), 5, "results stopped while Redis was down");
    for m in &got {
        assert_eq!(m["data"]["degraded"], false);
        assert!(m["data"]["lead_score"]["score"].is_number());
    }

    // Redis back, no restart of the service: a new result is written to it again.
    platform.redis.restart();
    let url = platform.redis.url();
    producer
        .publish(&event(EventType::LeadCreated, "after"))
        .await
        .unwrap();
    assert_eq!(
        client.collect("intelligence_complete", 1, WAIT).await.len(),
        1
    );
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
    platform.stop().await;
}
