//! 1,000 concurrent WebSocket clients across 10 tenants: each receives exactly its tenant's
//! messages, in order. Prints the memory per connection and the delivery latency.

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use leadbus_shared::IntelType;
use leadbus_shared::TenantId;
use leadbus_shared::auth::mint_token;
use leadbus_tests::intel::{document, send};
use leadbus_tests::{Platform, rss_bytes};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const TENANTS: usize = 10;
const CLIENTS_PER_TENANT: usize = 100;
const MESSAGES_PER_TENANT: usize = 20;
const WAIT: Duration = Duration::from_secs(120);
/// Memory one connection may cost, gateway and client side together (both are in this
/// process), in bytes.
const PER_CONNECTION_BOUND: u64 = 256 * 1024;

/// What one client saw.
struct Seen {
    tenant: usize,
    seqs: Vec<u64>,
    tenants_in_data: Vec<String>,
    latencies_ms: Vec<f64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_of_ten_tenants_each_get_exactly_their_tenants_messages() {
    let platform = Platform::gateway_only(|_| {}).await;
    let js = platform.js().await;
    let before = rss_bytes();

    // Connect everyone (50 at a time), each with a small read buffer like the gateway's.
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(TENANTS * CLIENTS_PER_TENANT);
    let specs: Vec<usize> = (0..TENANTS * CLIENTS_PER_TENANT)
        .map(|i| i % TENANTS)
        .collect();
    for batch in specs.chunks(50) {
        let connects = batch.iter().map(|&t| {
            let token = mint_token(
                &platform.config.jwt_secret,
                "many",
                &TenantId::new(format!("t{t}")).unwrap(),
                Duration::from_secs(600),
            )
            .unwrap();
            let url = format!("ws://{}/v1/ws?access_token={token}", platform.gateway_addr);
            let config = WebSocketConfig::default()
                .read_buffer_size(8 * 1024)
                .write_buffer_size(8 * 1024);
            async move {
                let (mut ws, _) =
                    tokio_tungstenite::connect_async_with_config(url, Some(config), false)
                        .await
                        .unwrap();
                // The first message is `ready`.
                let ready = ws.next().await.unwrap().unwrap();
                assert!(ready.to_text().unwrap().contains("\"ready\""));
                (t, ws)
            }
        });
        sockets.extend(futures::future::join_all(connects).await);
    }
    let connect_time = started.elapsed();
    let connected = rss_bytes();
    let per_connection = connected.saturating_sub(before) / sockets.len() as u64;

    let readers: Vec<_> = sockets
        .into_iter()
        .map(|(tenant, mut ws)| {
            tokio::spawn(async move {
                let mut seen = Seen {
                    tenant,
                    seqs: Vec::new(),
                    tenants_in_data: Vec::new(),
                    latencies_ms: Vec::new(),
                };
                while seen.seqs.len() < MESSAGES_PER_TENANT {
                    let Ok(Some(Ok(Message::Text(text)))) =
                        tokio::time::timeout(WAIT, ws.next()).await
                    else {
                        break;
                    };
                    let now = chrono::Utc::now();
                    let v: Value = serde_json::from_str(&text).unwrap();
                    if v["type"] != "intel" {
                        continue;
                    }
                    seen.seqs.push(v["seq"].as_u64().unwrap());
                    seen.tenants_in_data
                        .push(v["data"]["tenant_id"].as_str().unwrap().to_owned());
                    let at: chrono::DateTime<chrono::Utc> =
                        v["data"]["generated_at"].as_str().unwrap().parse().unwrap();
                    seen.latencies_ms
                        .push((now - at).num_microseconds().unwrap() as f64 / 1000.0);
                }
                // Nothing more of anyone may follow.
                let extra = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
                let extra = matches!(extra, Ok(Some(Ok(Message::Text(_)))));
                (seen, extra)
            })
        })
        .collect();

    // Interleaved tenants, one message each per round, a round every 25 ms (so the figure is
    // the latency of a steady flow, not of one burst queued behind itself).
    let mut expected: Vec<Vec<u64>> = vec![Vec::new(); TENANTS];
    for round in 0..MESSAGES_PER_TENANT {
        let mut acks = Vec::new();
        for t in 0..TENANTS {
            let doc = document(&format!("t{t}"), "lead", &format!("r{round}-t{t}"), 0);
            acks.push((t, send(&js, &doc, IntelType::IntelligenceComplete).await));
        }
        for (t, ack) in acks {
            expected[t].push(ack.await.unwrap().sequence);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let mut latencies = Vec::new();
    for reader in readers {
        let (seen, extra) = reader.await.unwrap();
        assert_eq!(
            seen.seqs, expected[seen.tenant],
            "client of t{} got other messages",
            seen.tenant
        );
        let own = format!("t{}", seen.tenant);
        assert!(seen.tenants_in_data.iter().all(|t| *t == own));
        assert!(
            !extra,
            "client of t{} got more than its tenant's",
            seen.tenant
        );
        latencies.extend(seen.latencies_ms);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "1000 clients / 10 tenants: connected in {:.2} s; memory per connection {:.1} KiB \
         (gateway and client side, both in this process); {} deliveries, latency from \
         publish to client p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        connect_time.as_secs_f64(),
        per_connection as f64 / 1024.0,
        latencies.len(),
        at(0.50),
        at(0.95),
        at(0.99),
        at(1.0),
    );
    assert_eq!(
        latencies.len(),
        TENANTS * CLIENTS_PER_TENANT * MESSAGES_PER_TENANT
    );
    assert!(
        per_connection < PER_CONNECTION_BOUND,
        "{per_connection} bytes per connection"
    );
    platform.stop().await;
}
