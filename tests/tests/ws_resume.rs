//! Resume: a client that reconnects with `resume_from` gets exactly what it missed, in order,
//! then live messages, with no gap and no duplicate; a position the stream no longer holds is
//! reported as an incomplete recovery.

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use leadbus_shared::IntelType;
use leadbus_shared::subjects::INTEL_STREAM;
use leadbus_tests::intel::{document, send};
use leadbus_tests::ws::Frame;
use leadbus_tests::{Platform, WsClient};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// Publishes `n` messages of `tenant` (leads cycling through `leads`) and returns their
/// sequences in publish order.
async fn publish_many(
    js: &async_nats::jetstream::Context,
    tenant: &str,
    leads: &[&str],
    n: usize,
    tag: &str,
) -> Vec<u64> {
    let mut acks = Vec::with_capacity(n);
    for i in 0..n {
        let doc = document(tenant, leads[i % leads.len()], &format!("{tag}-{i}"), 0);
        acks.push(send(js, &doc, IntelType::IntelligenceComplete).await);
    }
    let mut seqs = Vec::with_capacity(n);
    for ack in acks {
        seqs.push(ack.await.unwrap().sequence);
    }
    seqs
}

fn seqs_of(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .filter(|m| m["type"] == "intel")
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

async fn resume(platform: &Platform, tenant: &str, query: &str) -> (WsClient, Value) {
    let mut client = WsClient::connect_with(
        platform.gateway_addr,
        &platform.config.jwt_secret,
        tenant,
        query,
    )
    .await;
    let (before, subscribed) = client.until("subscribed", WAIT).await;
    assert!(
        before.is_empty(),
        "sent before the resume answer: {before:?}"
    );
    (client, subscribed.expect("a subscribed message"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_exactly_the_missed_500_in_order_then_live() {
    let platform = Platform::gateway_only(|_| {}).await;
    let js = platform.js().await;

    let mut client = platform.client("acme").await;
    let first = publish_many(&js, "acme", &["l1"], 3, "before").await;
    let seen = client.collect("intelligence_complete", 3, WAIT).await;
    assert_eq!(seqs_of(&seen), first);
    let last_seen = *first.last().unwrap();
    client.close().await;

    // While it is away: 500 of its own, and another tenant's in between.
    let mut missed = Vec::new();
    for round in 0..5 {
        missed.extend(
            publish_many(&js, "acme", &["l1", "l2", "l3"], 100, &format!("m{round}")).await,
        );
        publish_many(&js, "globex", &["g1"], 20, &format!("g{round}")).await;
    }
    assert_eq!(missed.len(), 500);

    let (mut client, subscribed) =
        resume(&platform, "acme", &format!("&resume_from={last_seen}")).await;
    assert_eq!(subscribed["resume"]["complete"], true, "{subscribed}");
    assert_eq!(subscribed["resume"]["from"], last_seen);
    let (replayed, live) = client.until("live", WAIT).await;
    let live = live.expect("a live message after the replay");
    assert_eq!(
        seqs_of(&replayed),
        missed,
        "exactly the missed ones, in order"
    );
    assert!(replayed.iter().all(|m| m["data"]["tenant_id"] == "acme"));
    assert_eq!(live["replayed"], 500);

    // Then live ones, once each.
    let fresh = publish_many(&js, "acme", &["l1"], 5, "after").await;
    let got = client.collect("intelligence_complete", 5, WAIT).await;
    assert_eq!(seqs_of(&got), fresh);
    assert_eq!(
        client.next_frame(Duration::from_millis(500)).await,
        Frame::End,
        "nothing more may arrive"
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_to_live_while_messages_keep_coming_leaves_no_gap_and_no_duplicate() {
    let platform = Platform::gateway_only(|_| {}).await;
    let js = platform.js().await;
    let mut expected = publish_many(&js, "acme", &["a", "b"], 300, "old").await;

    // Messages keep arriving while the client replays and switches over.
    let publisher = {
        let js = js.clone();
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..30 {
                seqs.extend(publish_many(&js, "acme", &["a", "b"], 10, &format!("new{i}")).await);
                publish_many(&js, "globex", &["g"], 3, &format!("gx{i}")).await;
            }
            seqs
        })
    };
    let (mut client, subscribed) = resume(&platform, "acme", "&resume_from=0").await;
    assert_eq!(subscribed["resume"]["complete"], true, "{subscribed}");
    expected.extend(publisher.await.unwrap());

    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < expected.len() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client.next_frame(left).await {
            Frame::Json(v) if v["type"] == "intel" => got.push(v["seq"].as_u64().unwrap()),
            Frame::Json(_) => {}
            other => panic!(
                "stream ended after {} of {}: {other:?}",
                got.len(),
                expected.len()
            ),
        }
    }
    assert_eq!(got, expected, "every message once, in stream order");
    assert_eq!(
        client.next_frame(Duration::from_millis(500)).await,
        Frame::End
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_older_than_the_stream_holds_is_reported_incomplete() {
    let platform = Platform::gateway_only(|_| {}).await;
    let js = platform.js().await;
    // Keep only the last 100 messages.
    let mut stream = js.get_stream(INTEL_STREAM).await.unwrap();
    let mut config = stream.info().await.unwrap().config.clone();
    config.max_messages = 100;
    js.update_stream(&config).await.unwrap();

    let all = publish_many(&js, "acme", &["l1"], 150, "r").await;
    let kept = &all[50..];
    let first_kept = kept[0];
    assert_eq!(
        stream.info().await.unwrap().state.first_sequence,
        first_kept
    );

    let (mut client, subscribed) = resume(&platform, "acme", "&resume_from=5").await;
    let resume_info = &subscribed["resume"];
    assert_eq!(resume_info["complete"], false, "{subscribed}");
    assert_eq!(resume_info["first_seq"], first_kept);
    assert!(
        resume_info["missed"]
            .as_str()
            .unwrap()
            .contains("left the stream")
    );
    // What is still there is replayed all the same.
    let (replayed, live) = client.until("live", WAIT).await;
    assert!(live.is_some());
    assert_eq!(seqs_of(&replayed), kept);

    // A position the stream never had (the stream was reset) says so too, replays what the
    // stream holds, and then misses nothing published after it.
    let (mut reset, ahead) = resume(&platform, "acme", "&resume_from=100000").await;
    assert_eq!(ahead["resume"]["complete"], false, "{ahead}");
    assert!(
        ahead["resume"]["missed"]
            .as_str()
            .unwrap()
            .contains("reset")
    );
    let (replayed, live) = reset.until("live", WAIT).await;
    assert!(live.is_some());
    assert_eq!(seqs_of(&replayed), kept);
    let later = publish_many(&js, "acme", &["l1"], 5, "after-reset").await;
    let got = reset.collect("intelligence_complete", 5, WAIT).await;
    assert_eq!(seqs_of(&got), later);

    // And a current one is complete, with nothing to replay.
    let last = *later.last().unwrap();
    let (mut current, ok) = resume(&platform, "acme", &format!("&resume_from={last}")).await;
    assert_eq!(ok["resume"]["complete"], true, "{ok}");
    let (nothing, live) = current.until("live", WAIT).await;
    assert!(nothing.is_empty() && live.is_some());
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_message_narrows_and_resumes_without_resending() {
    let platform = Platform::gateway_only(|_| {}).await;
    let js = platform.js().await;
    let mut client = platform.client("acme").await;

    let sent = publish_many(&js, "acme", &["a", "b"], 10, "s").await;
    let seen = client.collect("intelligence_complete", 10, WAIT).await;
    assert_eq!(seqs_of(&seen), sent);

    // Names must be real.
    client
        .send(json!({"type": "subscribe", "intel_types": ["teleport"]}))
        .await;
    let (_, error) = client.until("error", WAIT).await;
    assert!(
        error.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("teleport")
    );

    // Resume from the middle: everything after it was already sent on this connection.
    client
        .send(json!({"type": "subscribe", "leads": ["a"], "resume_from": sent[3]}))
        .await;
    let (_, subscribed) = client.until("subscribed", WAIT).await;
    assert_eq!(subscribed.unwrap()["subscription"]["leads"], json!(["a"]));
    let (again, live) = client.until("live", WAIT).await;
    assert!(live.is_some());
    assert!(seqs_of(&again).is_empty(), "re-sent: {again:?}");

    let more = publish_many(&js, "acme", &["a", "b"], 6, "t").await;
    let got = client.collect("intelligence_complete", 3, WAIT).await;
    let only_a: Vec<u64> = more.iter().step_by(2).copied().collect();
    assert_eq!(seqs_of(&got), only_a);
    assert!(got.iter().all(|m| m["lead_id"] == "a"));
    assert_eq!(
        client.next_frame(Duration::from_millis(500)).await,
        Frame::End
    );
    platform.stop().await;
}
