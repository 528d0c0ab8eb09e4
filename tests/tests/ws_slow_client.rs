//! Slow and dead clients: a client that never reads is closed with the slow-client code while
//! a normal client receives every message and the gateway's memory stays bounded; a client that
//! answers no ping is reaped.

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use leadbus_gateway::ws::{CLOSE_SLOW_CLIENT, CLOSE_TIMEOUT};
use leadbus_shared::IntelType;
use leadbus_tests::intel::{document, send};
use leadbus_tests::ws::Frame;
use leadbus_tests::{Platform, eventually, rss_bytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(60);
/// Messages in the flood, and the bytes of padding in each.
const FLOOD: usize = 20_000;
const PAD: usize = 2_000;
/// Messages published before waiting for the normal client to catch up.
const BATCH: usize = 100;
/// What the gateway (with this test's clients, all in one process) may grow by during a
/// flood of about 46 MB while one client reads nothing: the slow client's queue is 256
/// messages, and nothing else may pile up.
const MEMORY_BOUND: u64 = 32 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed_and_nobody_else_notices() {
    let platform = Platform::gateway_only(|c| c.ws_send_queue = 256).await;
    let js = platform.js().await;
    let mut slow = platform.client("acme").await;
    let mut normal = platform.client("acme").await;
    let baseline = rss_bytes();

    let peak = Arc::new(AtomicU64::new(baseline));
    let sampler = {
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let received = Arc::new(AtomicUsize::new(0));
    let reader = {
        let received = Arc::clone(&received);
        tokio::spawn(async move {
            let mut seqs = Vec::with_capacity(FLOOD);
            while seqs.len() < FLOOD {
                match normal.next_frame(WAIT).await {
                    Frame::Json(v) if v["type"] == "intel" => {
                        seqs.push(v["seq"].as_u64().unwrap());
                        received.store(seqs.len(), Ordering::Relaxed);
                    }
                    Frame::Json(_) => {}
                    other => panic!("normal client cut off after {}: {other:?}", seqs.len()),
                }
            }
            seqs
        })
    };

    // The offered load is what a reading client can take (a burst the size of a batch); the
    // slow client takes none of it.
    let mut expected = Vec::with_capacity(FLOOD);
    for batch in 0..FLOOD / BATCH {
        let behind = expected.len().saturating_sub(BATCH);
        assert!(
            eventually(WAIT, || async {
                received.load(Ordering::Relaxed) >= behind
            })
            .await,
            "the normal client stopped reading"
        );
        let mut acks = Vec::with_capacity(BATCH);
        for i in 0..BATCH {
            let doc = document("acme", "flood", &format!("f{batch}-{i}"), PAD);
            acks.push(send(&js, &doc, IntelType::IntelligenceComplete).await);
        }
        for ack in acks {
            expected.push(ack.await.unwrap().sequence);
        }
    }

    let got = reader.await.unwrap();
    assert_eq!(
        got, expected,
        "the normal client got every message, in order"
    );

    // The slow one was evicted and counted...
    let token = platform.token("acme");
    let http = platform.http();
    let counted = eventually(WAIT, || async {
        let doc = http.get("/v1/metrics", Some(&token)).await.json();
        doc["websocket"]["slow_clients_closed"].as_u64() >= Some(1)
    })
    .await;
    assert!(counted, "the slow client was not counted");
    // ...and, once it reads, finds the slow-client close code after what was buffered.
    let mut buffered = 0usize;
    let code = loop {
        match slow.next_frame(WAIT).await {
            Frame::Json(_) => buffered += 1,
            Frame::Close(code) => break code,
            Frame::End => panic!("no close frame after {buffered} messages"),
        }
    };
    assert_eq!(code, Some(CLOSE_SLOW_CLIENT));
    assert!(buffered < FLOOD, "the slow client was not cut off");

    sampler.abort();
    let growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    println!(
        "slow client: closed with {CLOSE_SLOW_CLIENT} after {buffered} of {FLOOD} messages; \
         process memory grew by {:.1} MiB during a {:.1} MB flood (bound {} MiB)",
        growth as f64 / 1048576.0,
        (FLOOD * (PAD + 400)) as f64 / 1e6,
        MEMORY_BOUND / 1048576
    );
    assert!(
        growth < MEMORY_BOUND,
        "memory grew by {growth} bytes, over the bound"
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_answers_no_ping_is_reaped() {
    let platform = Platform::gateway_only(|c| {
        c.ws_ping_secs = 1;
        c.ws_idle_secs = 2;
    })
    .await;
    // A bare socket: it upgrades, then never reads, so it never answers a ping.
    let mut socket = tokio::net::TcpStream::connect(platform.gateway_addr)
        .await
        .unwrap();
    let request = format!(
        "GET /v1/ws?access_token={} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
        platform.token("acme"),
        platform.gateway_addr
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(WAIT, socket.read_to_end(&mut bytes))
        .await
        .expect("the gateway closed the dead connection")
        .unwrap();
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(bytes.starts_with(b"HTTP/1.1 101"));
    assert_eq!(close_code(&bytes[head_end..]), Some(CLOSE_TIMEOUT));
    platform.stop().await;
}

/// The code of the first close frame among unmasked server frames.
fn close_code(mut frames: &[u8]) -> Option<u16> {
    while frames.len() >= 2 {
        let opcode = frames[0] & 0x0f;
        let (len, head) = match frames[1] & 0x7f {
            126 => (u16::from_be_bytes([frames[2], frames[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(frames[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let payload = frames.get(head..head + len)?;
        if opcode == 0x8 {
            return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
        }
        frames = &frames[head + len..];
    }
    None
}
