//! Replay and rebuild from the durable streams.

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use leadbus_inference::cache::{CacheConfig, IntelCache, RedisL2};
use leadbus_inference::models::Model;
use leadbus_inference::pipeline::ProfileStore;
use leadbus_inference::rebuild::run_rebuild;
use leadbus_inference::replay::{ReplaySpec, run_replay};
use leadbus_shared::client::Producer;
use leadbus_shared::event::PropertyPreferences;
use leadbus_shared::{EventType, LeadEvent, LeadId, TenantId};
use leadbus_tests::{Platform, eventually, models, stored_completes};

fn event(i: usize, tenant: &str) -> LeadEvent {
    let kind = [
        EventType::LeadCreated,
        EventType::InteractionRecorded,
        EventType::LeadUpdated,
    ][i % 3];
    let mut e = LeadEvent::new(
        kind,
        TenantId::new(tenant).unwrap(),
        LeadId::new(format!("l{}", i % 10)).unwrap(),
    );
    e.data.source = Some("reference".into());
    if i.is_multiple_of(4) {
        e.data.property_preferences = Some(PropertyPreferences {
            bedrooms: Some(2),
            budget_max: Some(900_000.0),
            ..Default::default()
        });
    }
    e
}

async fn publish_and_settle(platform: &Platform, events: &[LeadEvent]) {
    let js = platform.js().await;
    let producer = Producer::new(js.clone());
    for e in events {
        producer.publish(e).await.unwrap();
    }
    let ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    let done = eventually(Duration::from_secs(60), || {
        let (js, ids) = (js.clone(), ids.clone());
        async move {
            let stored = stored_completes(&js).await;
            ids.iter().all(|id| stored.contains_key(id))
        }
    })
    .await;
    assert!(done, "events were not processed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_replay_resumes_and_yields_one_replayed_result_per_event() {
    let platform = Platform::start().await;
    let from = Utc::now() - chrono::Duration::seconds(5);
    let acme: Vec<_> = (0..30).map(|i| event(i, "acme")).collect();
    let other: Vec<_> = (0..5).map(|i| event(i, "globex")).collect();
    publish_and_settle(&platform, &acme).await;
    publish_and_settle(&platform, &other).await;
    let mut client = platform.client("acme").await;

    let js = platform.js().await;
    let spec = ReplaySpec {
        name: "after_model_change".into(),
        from,
        to: Utc::now(),
        tenant: Some(TenantId::new("acme").unwrap()),
        lead: None,
        event_types: vec![],
    };
    let first = run_replay(&js, &spec, Some(12), |_| {}).await.unwrap();
    assert_eq!(first.replayed, 12);
    // Started again under the same name, it continues where it stopped.
    let rest = run_replay(&js, &spec, None, |_| {}).await.unwrap();
    assert_eq!(
        first.replayed + rest.replayed,
        30,
        "first {first:?}, rest {rest:?}"
    );
    assert_eq!(rest.remaining, 0);

    let replayed = client
        .collect("intelligence_complete", 30, Duration::from_secs(60))
        .await;
    assert_eq!(replayed.len(), 30);
    assert!(replayed.iter().all(|m| m["data"]["replay"] == true));

    let stored = stored_completes(&js).await;
    for e in &acme {
        assert_eq!(
            stored.get(&e.event_id),
            Some(&1),
            "original result of {}",
            e.event_id
        );
        let key = format!("{}:replay-after_model_change", e.event_id);
        assert_eq!(
            stored.get(&key),
            Some(&1),
            "replayed result of {}",
            e.event_id
        );
    }
    for e in &other {
        assert!(!stored.contains_key(&format!("{}:replay-after_model_change", e.event_id)));
    }
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_after_flushall_restores_profiles_and_every_leads_cached_intelligence() {
    let platform = Platform::start().await;
    let events: Vec<_> = (0..40).map(|i| event(i, "acme")).collect();
    publish_and_settle(&platform, &events).await;
    let js = platform.js().await;
    let store = ProfileStore::open(&js, 0).await.unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let leads: Vec<LeadId> = (0..10)
        .map(|i| LeadId::new(format!("l{i}")).unwrap())
        .collect();
    let mut before = Vec::new();
    for l in &leads {
        before.push(store.get(&tenant, l).await.unwrap().0);
    }

    // Empty both: Redis and the profile bucket.
    let redis = redis::Client::open(platform.redis.url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    js.get_stream("KV_LEAD_PROFILES")
        .await
        .unwrap()
        .purge()
        .await
        .unwrap();
    assert_eq!(
        store.get(&tenant, &leads[0]).await.unwrap().1,
        0,
        "profile not emptied"
    );

    let l2 = RedisL2::new(&platform.redis.url(), Duration::from_millis(500)).unwrap();
    let config = CacheConfig {
        l1_capacity: 1000,
        l1_ttl: Duration::from_secs(30),
        l2_ttl: Duration::from_secs(300),
    };
    let cache = IntelCache::new(&config, Some(l2));
    let models = models();
    let summary = run_rebuild(&js, &store, &Arc::clone(&models), &cache, 65536, |_| {})
        .await
        .unwrap();
    assert_eq!(summary.profiles_written, 10);
    assert_eq!(summary.cache_failures, 0);

    for (l, old) in leads.iter().zip(&before) {
        let (rebuilt, _) = store.get(&tenant, l).await.unwrap();
        assert_eq!(rebuilt.revision, old.revision, "{l}");
        assert_eq!(rebuilt.visits, old.visits);
        assert_eq!(rebuilt.attributes, old.attributes);
        for key in [
            format!(
                "leadbus:acme:{}",
                models
                    .lead_score
                    .cache_key(&models.lead_score.input(&rebuilt))
            ),
            format!(
                "leadbus:acme:{}",
                models.churn.cache_key(&models.churn.input(&rebuilt))
            ),
        ] {
            let exists: bool = redis::cmd("EXISTS")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert!(exists, "{key} not restored");
        }
    }
    platform.stop().await;
}
