//! Priority under load: critical events are served before a low-priority backlog drains, a
//! quiet tenant before a noisy tenant's backlog drains, and low events are still served while
//! critical ones keep coming.

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::future::IntoFuture;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use leadbus_shared::client::Producer;
use leadbus_shared::{EventType, LeadEvent, LeadId, Priority, TenantId};
use leadbus_tests::{Platform, eventually, stored_completes};

fn event(i: usize, priority: Priority) -> LeadEvent {
    let mut e = LeadEvent::new(
        EventType::ScoreRefreshRequested,
        TenantId::new("acme").unwrap(),
        LeadId::new(format!("{priority}{}", i % 300)).unwrap(),
    );
    e.priority = priority;
    e
}

/// Publishes `events` with all their acks outstanding at once, as a burst would.
async fn publish_burst(producer: &Producer, events: &[LeadEvent]) {
    let mut acks = FuturesUnordered::new();
    for e in events {
        acks.push(producer.send(e).await.unwrap().into_future());
    }
    while let Some(ack) = acks.next().await {
        ack.unwrap();
    }
}

/// Waits until every event of `wanted` has its result, then counts how many of `other` had
/// theirs by then.
async fn done_while(
    js: &async_nats::jetstream::Context,
    wanted: &[LeadEvent],
    other: &[LeadEvent],
) -> usize {
    let ids: Vec<String> = wanted.iter().map(|e| e.event_id.clone()).collect();
    let done = eventually(Duration::from_secs(120), || {
        let (js, ids) = (js.clone(), ids.clone());
        async move {
            let stored = stored_completes(&js).await;
            ids.iter().all(|id| stored.contains_key(id))
        }
    })
    .await;
    assert!(done, "the awaited events were not processed");
    let stored = stored_completes(js).await;
    other
        .iter()
        .filter(|e| stored.contains_key(&e.event_id))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_events_are_served_while_critical_ones_keep_coming() {
    let platform = Platform::start_with(|c| c.max_concurrent_processing = 4).await;
    let js = platform.js().await;
    let producer = Producer::new(js.clone());

    // A critical backlog larger than the run drains keeps the critical level busy throughout:
    // to the scheduler that is a steady stream of critical events.
    let critical: Vec<_> = (0..3000).map(|i| event(i, Priority::Critical)).collect();
    publish_burst(&producer, &critical).await;
    let low: Vec<_> = (0..20).map(|i| event(i, Priority::Low)).collect();
    for e in &low {
        producer.publish(e).await.unwrap();
    }

    let critical_done = done_while(&js, &low, &critical).await;
    eprintln!("all 20 low events done while {critical_done} of 3000 critical events were");
    assert!(
        critical_done < critical.len(),
        "low events waited until the critical stream ended"
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_events_are_processed_before_a_low_backlog_drains() {
    let platform = Platform::start_with(|c| c.max_concurrent_processing = 4).await;
    let js = platform.js().await;
    let producer = Producer::new(js.clone());

    let low: Vec<_> = (0..3000).map(|i| event(i, Priority::Low)).collect();
    publish_burst(&producer, &low).await;
    let critical: Vec<_> = (0..20).map(|i| event(i, Priority::Critical)).collect();
    for e in &critical {
        producer.publish(e).await.unwrap();
    }

    let low_done = done_while(&js, &critical, &low).await;
    eprintln!("all 20 critical events done while {low_done} of 3000 low events were");
    assert!(low_done < low.len(), "the low backlog drained first");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_tenant_is_served_while_a_noisy_tenants_backlog_waits() {
    let platform = Platform::start_with(|c| {
        c.max_concurrent_processing = 4;
        c.tenant_max_ack_pending = 16;
    })
    .await;
    let js = platform.js().await;
    let producer = Producer::new(js.clone());
    let in_tenant = |tenant: &str, i: usize| {
        let mut e = LeadEvent::new(
            EventType::ScoreRefreshRequested,
            TenantId::new(tenant).unwrap(),
            LeadId::new(format!("l{}", i % 200)).unwrap(),
        );
        e.priority = Priority::Medium;
        e
    };

    let noisy: Vec<_> = (0..3000).map(|i| in_tenant("noisy", i)).collect();
    publish_burst(&producer, &noisy).await;
    let quiet: Vec<_> = (0..20).map(|i| in_tenant("quiet", i)).collect();
    for e in &quiet {
        producer.publish(e).await.unwrap();
    }

    let noisy_done = done_while(&js, &quiet, &noisy).await;
    eprintln!("all 20 quiet-tenant events done while {noisy_done} of 3000 noisy ones were");
    assert!(noisy_done < noisy.len(), "the noisy backlog drained first");
    platform.stop().await;
}
