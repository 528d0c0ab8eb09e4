//! The yardstick: raw JetStream on the same servers in the same run. Async publish (a window
//! of unacknowledged publishes, as many as the client allows) into a temporary file-backed
//! stream, then a durable pull consumer that acks every message. Payloads are the size of a
//! bench event.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use indicatif::ProgressBar;
use serde::Serialize;

/// What raw JetStream did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RawResult {
    /// Messages published and consumed.
    pub(crate) messages: u64,
    /// Payload bytes of each.
    pub(crate) payload_bytes: usize,
    /// Publishes acknowledged per second.
    pub(crate) publish_per_s: f64,
    /// Messages pulled and acked per second.
    pub(crate) consume_per_s: f64,
}

/// Publishes then consumes `messages` messages of `payload_bytes` on a stream of its own,
/// deleted afterwards.
pub(crate) async fn measure(
    js: &jetstream::Context,
    run: &str,
    messages: u64,
    payload_bytes: usize,
    bar: &ProgressBar,
) -> anyhow::Result<RawResult> {
    let name = format!("BENCH_RAW_{}", run.replace(['.', '-'], "_"));
    let subject = format!("bench.raw.{run}");
    // A stream left by an interrupted run of the same name would skew the count.
    let _ = js.delete_stream(&name).await;
    let stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .context("cannot create the raw benchmark stream")?;
    let result = run_both(js, &stream, &subject, messages, payload_bytes, bar).await;
    if let Err(error) = js.delete_stream(&name).await {
        tracing::warn!(%error, stream = %name, "could not delete the raw benchmark stream");
    }
    result
}

async fn run_both(
    js: &jetstream::Context,
    stream: &stream::Stream,
    subject: &str,
    messages: u64,
    payload_bytes: usize,
    bar: &ProgressBar,
) -> anyhow::Result<RawResult> {
    let payload = bytes_of(payload_bytes);
    bar.set_length(messages * 2);
    bar.set_position(0);
    bar.set_message("raw JetStream: publish");

    let started = Instant::now();
    let mut pending = FuturesUnordered::new();
    for _ in 0..messages {
        // The client holds at most its ack window in flight and waits here beyond it.
        let ack = js
            .publish(subject.to_owned(), payload.clone())
            .await
            .context("raw publish failed")?;
        pending.push(ack.into_future());
        while pending.len() >= 4096 {
            if let Some(result) = pending.next().await {
                result.context("raw publish not acknowledged")?;
                bar.inc(1);
            }
        }
    }
    while let Some(result) = pending.next().await {
        result.context("raw publish not acknowledged")?;
        bar.inc(1);
    }
    let publish_secs = started.elapsed().as_secs_f64();

    bar.set_message("raw JetStream: pull + ack");
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("bench-raw".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            max_ack_pending: 10_000,
            ..Default::default()
        })
        .await
        .context("cannot create the raw benchmark consumer")?;
    let started = Instant::now();
    let mut pulled = consumer
        .stream()
        .max_messages_per_batch(1000)
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .context("cannot pull from the raw benchmark stream")?;
    let mut consumed = 0;
    while consumed < messages {
        let next = tokio::time::timeout(Duration::from_secs(30), pulled.next()).await;
        let msg = match next {
            Ok(Some(Ok(msg))) => msg,
            Ok(Some(Err(error))) => anyhow::bail!("raw pull failed: {error}"),
            Ok(None) | Err(_) => anyhow::bail!("raw pull stalled after {consumed} messages"),
        };
        msg.ack()
            .await
            .map_err(|e| anyhow::anyhow!("raw ack failed: {e}"))?;
        consumed += 1;
        bar.inc(1);
    }
    let consume_secs = started.elapsed().as_secs_f64();
    Ok(RawResult {
        messages,
        payload_bytes,
        publish_per_s: messages as f64 / publish_secs.max(1e-9),
        consume_per_s: messages as f64 / consume_secs.max(1e-9),
    })
}

fn bytes_of(n: usize) -> bytes::Bytes {
    (0..n)
        .map(|i| b'a' + (i % 26) as u8)
        .collect::<Vec<u8>>()
        .into()
}
