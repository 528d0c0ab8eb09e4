//! `leadbus dlq list|show|reinject`: read dead letters and put them back after a fix.

use std::time::Duration;

use anyhow::{Context, bail};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use leadbus_shared::dlq::DeadLetter;
use leadbus_shared::subjects::{DLQ_STREAM, MSG_ID_HEADER};
use leadbus_shared::{Config, TenantId};

/// Arguments of `leadbus dlq`.
#[derive(Debug, clap::Args)]
pub(crate) struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DlqCommand {
    /// One line per dead letter: sequence, time, subject, kind, reason.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<TenantId>,
        /// At most this many, newest last.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// The whole dead letter at a LEAD_DLQ sequence, as JSON.
    Show {
        /// LEAD_DLQ sequence.
        seq: u64,
    },
    /// Publishes the original event of each dead letter back to its subject. The event keeps
    /// its event id and is processed once more, deliberately.
    Reinject {
        /// LEAD_DLQ sequences.
        seqs: Vec<u64>,
    },
}

/// Runs a `dlq` subcommand.
pub(crate) async fn run(config: &Config, args: DlqArgs) -> anyhow::Result<()> {
    let nats = async_nats::connect(&config.nats_url)
        .await
        .with_context(|| format!("cannot connect to NATS at {}", config.nats_url))?;
    let js = jetstream::new(nats);
    let stream = js
        .get_stream(DLQ_STREAM)
        .await
        .context("LEAD_DLQ does not exist yet")?;
    match args.command {
        DlqCommand::List { tenant, limit } => list(&stream, tenant, limit).await,
        DlqCommand::Show { seq } => {
            let letter = read(&stream, seq).await?;
            println!("{}", serde_json::to_string_pretty(&letter)?);
            Ok(())
        }
        DlqCommand::Reinject { seqs } => {
            if seqs.is_empty() {
                bail!("name the LEAD_DLQ sequences to re-inject (see `leadbus dlq list`)");
            }
            for seq in seqs {
                reinject(&js, &stream, seq).await?;
            }
            Ok(())
        }
    }
}

async fn read(stream: &jetstream::stream::Stream, seq: u64) -> anyhow::Result<DeadLetter> {
    let raw = stream
        .get_raw_message(seq)
        .await
        .with_context(|| format!("no dead letter at {seq}"))?;
    serde_json::from_slice(&raw.payload)
        .with_context(|| format!("LEAD_DLQ {seq} is not a dead letter"))
}

async fn list(
    stream: &jetstream::stream::Stream,
    tenant: Option<TenantId>,
    limit: usize,
) -> anyhow::Result<()> {
    let filter = tenant.map_or("leads.dlq.>".to_owned(), |t| format!("leads.dlq.{t}.>"));
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: filter,
            ..Default::default()
        })
        .await?;
    let pending = consumer.cached_info().num_pending as usize;
    let mut messages = consumer.messages().await?;
    let mut rows = std::collections::VecDeque::new();
    for _ in 0..pending {
        let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(5), messages.next()).await
        else {
            break;
        };
        let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
        let line = match serde_json::from_slice::<DeadLetter>(&msg.payload) {
            Ok(d) => format!(
                "{seq:>8}  {}  {}  {:?}  {}",
                d.dead_lettered_at.format("%Y-%m-%dT%H:%M:%SZ"),
                d.subject,
                d.kind,
                d.reason
            ),
            Err(_) => format!("{seq:>8}  (unreadable dead letter)"),
        };
        rows.push_back(line);
        if rows.len() > limit {
            rows.pop_front();
        }
    }
    println!("{pending} dead letters");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}

async fn reinject(
    js: &jetstream::Context,
    stream: &jetstream::stream::Stream,
    seq: u64,
) -> anyhow::Result<()> {
    let letter = read(stream, seq).await?;
    let Some(payload) = letter.payload.as_ref() else {
        if letter.payload_hex.is_some() {
            bail!("dead letter {seq} holds a non-UTF-8 payload; fix it at the producer");
        }
        bail!(
            "dead letter {seq} kept no payload (too large); the original is in LEAD_EVENTS at \
             sequence {}",
            letter.stream_sequence
        );
    };
    if letter.payload_truncated {
        bail!("dead letter {seq} kept only part of an oversize payload; it cannot be re-injected");
    }
    let mut headers = HeaderMap::new();
    for (name, values) in &letter.headers {
        if name.eq_ignore_ascii_case(MSG_ID_HEADER) {
            continue;
        }
        for v in values {
            headers.append(name.as_str(), v.as_str());
        }
    }
    // A new de-duplication id: the original is still inside the stream's window.
    let id = letter
        .event_id
        .clone()
        .unwrap_or_else(|| format!("seq-{}", letter.stream_sequence));
    let tenant = letter.subject.split('.').nth(2).unwrap_or("_unknown");
    headers.insert(
        MSG_ID_HEADER,
        format!("{tenant}:{id}:reinjected:{seq}").as_str(),
    );
    let ack = js
        .publish_with_headers(
            letter.subject.clone(),
            headers,
            payload.clone().into_bytes().into(),
        )
        .await?
        .await?;
    println!(
        "re-injected dead letter {seq} to {} at LEAD_EVENTS {}",
        letter.subject, ack.sequence
    );
    Ok(())
}
