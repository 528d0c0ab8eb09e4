//! Replay: a time range of LEAD_EVENTS, optionally narrowed to a tenant, a lead and event
//! types, goes through the inference path again as low-priority work.
//!
//! Each selected event is copied to its `low` subject with the [`REPLAY_HEADER`]; the
//! inference service processes the copy like any event and marks its results
//! `replay: true` under their own message ids. Progress is a durable consumer on
//! LEAD_EVENTS named after the replay: an interrupted replay started again with the same
//! name continues after the last event it copied.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind, Message};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use leadbus_shared::subjects::{
    EVENTS_STREAM, MSG_ID_HEADER, REPLAY_HEADER, event_id_from_msg_id, parse_event_subject,
};
use leadbus_shared::{EventType, LeadId, Priority, TenantId};
use serde_json::Value;
use tracing::{debug, info};

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplaySpec {
    /// Names the replay and its durable progress; a subject token.
    pub name: String,
    /// First instant (by stream time) included.
    pub from: DateTime<Utc>,
    /// Last instant included.
    pub to: DateTime<Utc>,
    /// Only this tenant.
    pub tenant: Option<TenantId>,
    /// Only this lead.
    pub lead: Option<LeadId>,
    /// Only these event types; empty means all.
    pub event_types: Vec<EventType>,
}

/// Where a replay stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayProgress {
    /// Events copied for reprocessing.
    pub replayed: u64,
    /// Events in range but not selected (other types, earlier replay copies, unreadable).
    pub skipped: u64,
    /// Events left in the range, as far as the server knows.
    pub remaining: u64,
}

/// A replay could not run.
#[derive(Debug, thiserror::Error)]
#[error("replay failed: {0}")]
pub struct ReplayError(String);

fn err(e: impl std::fmt::Display) -> ReplayError {
    ReplayError(e.to_string())
}

fn durable(name: &str) -> String {
    format!("replay-{name}")
}

async fn progress_consumer(
    js: &jetstream::Context,
    spec: &ReplaySpec,
) -> Result<PullConsumer, ReplayError> {
    leadbus_shared::ids::check_token("replay name", &spec.name).map_err(err)?;
    if spec.from > spec.to {
        return Err(ReplayError(format!(
            "--from {} is after --to {}",
            spec.from, spec.to
        )));
    }
    let stream = js.get_stream(EVENTS_STREAM).await.map_err(err)?;
    let tenant = spec.tenant.as_ref().map_or("*", |t| t.as_str());
    let lead = spec.lead.as_ref().map_or("*", |l| l.as_str());
    let nanos = spec.from.timestamp_nanos_opt().unwrap_or(0);
    let start_time =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).map_err(err)?;
    let config = pull::Config {
        durable_name: Some(durable(&spec.name)),
        description: Some(format!("leadbus replay {} (progress)", spec.name)),
        filter_subject: format!("leads.events.{tenant}.*.*.{lead}"),
        deliver_policy: DeliverPolicy::ByStartTime { start_time },
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(60),
        max_ack_pending: 1024,
        ..Default::default()
    };
    // Same name, same consumer: that is what makes an interrupted replay continue.
    stream
        .get_or_create_consumer(&durable(&spec.name), config)
        .await
        .map_err(err)
}

/// Runs (or continues) a replay. `stop_after` ends it early after that many events handled
/// (used to interrupt on purpose); `on_progress` is called after every batch.
pub async fn run_replay(
    js: &jetstream::Context,
    spec: &ReplaySpec,
    stop_after: Option<u64>,
    mut on_progress: impl FnMut(ReplayProgress),
) -> Result<ReplayProgress, ReplayError> {
    let mut consumer = progress_consumer(js, spec).await?;
    let mut progress = ReplayProgress::default();
    let to_nanos = i128::from(spec.to.timestamp_nanos_opt().unwrap_or(i64::MAX));
    loop {
        let info = consumer.info().await.map_err(err)?;
        debug!(
            pending = info.num_pending,
            ack_pending = info.num_ack_pending,
            "replay position"
        );
        progress.remaining = info.num_pending + info.num_ack_pending as u64;
        on_progress(progress);
        if progress.remaining == 0 {
            break;
        }
        let mut batch = consumer
            .fetch()
            .max_messages(256)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .map_err(err)?;
        let mut past_end = false;
        while let Some(msg) = batch.next().await {
            let msg = msg.map_err(err)?;
            let published = msg.info().map_err(err)?.published.unix_timestamp_nanos();
            if published > to_nanos {
                past_end = true;
                break;
            }
            if copy_for_replay(js, &msg, spec).await? {
                progress.replayed += 1;
            } else {
                progress.skipped += 1;
            }
            msg.double_ack().await.map_err(err)?;
            if stop_after.is_some_and(|n| progress.replayed + progress.skipped >= n) {
                // Hand the rest of the batch back now, not after ack_wait.
                while let Some(Ok(rest)) = batch.next().await {
                    let _ = rest.ack_with(AckKind::Nak(None)).await;
                }
                info!(replay = %spec.name, ?progress, "replay interrupted on request");
                return Ok(progress);
            }
        }
        if past_end {
            break;
        }
    }
    // Done: the progress consumer is no longer needed.
    let stream = js.get_stream(EVENTS_STREAM).await.map_err(err)?;
    stream
        .delete_consumer(&durable(&spec.name))
        .await
        .map_err(err)?;
    progress.remaining = 0;
    on_progress(progress);
    info!(replay = %spec.name, replayed = progress.replayed, skipped = progress.skipped, "replay finished");
    Ok(progress)
}

/// Copies one event to its `low` subject for reprocessing; false when it is not selected.
async fn copy_for_replay(
    js: &jetstream::Context,
    msg: &Message,
    spec: &ReplaySpec,
) -> Result<bool, ReplayError> {
    let headers = msg.headers.as_ref();
    if headers.and_then(|h| h.get(REPLAY_HEADER)).is_some() {
        return Ok(false);
    }
    let Some(tokens) = parse_event_subject(&msg.subject) else {
        return Ok(false);
    };
    let Ok(event_type) = tokens.event_type.parse::<EventType>() else {
        return Ok(false);
    };
    if !spec.event_types.is_empty() && !spec.event_types.contains(&event_type) {
        return Ok(false);
    }
    // Only events that decode are replayed: the rest were dead-lettered and are re-injected
    // from LEAD_DLQ instead.
    let Ok(mut body) = serde_json::from_slice::<Value>(&msg.payload) else {
        return Ok(false);
    };
    let Some(obj) = body.as_object_mut() else {
        return Ok(false);
    };
    obj.insert("priority".into(), Value::from(Priority::Low.as_str()));
    let seq = msg.info().map_err(err)?.stream_sequence;
    let original_id = headers.and_then(|h| h.get(MSG_ID_HEADER)).map_or_else(
        || format!("seq-{seq}"),
        |v| event_id_from_msg_id(tokens.tenant, v.as_str()).to_owned(),
    );
    if !obj.contains_key("event_id") {
        obj.insert("event_id".into(), Value::from(original_id.clone()));
    }

    let subject = format!(
        "leads.events.{}.{}.{}.{}",
        tokens.tenant,
        Priority::Low,
        tokens.event_type,
        tokens.lead
    );
    let mut copy_headers = HeaderMap::new();
    let copy_id = format!("{}:{original_id}:replay-{}", tokens.tenant, spec.name);
    copy_headers.insert(MSG_ID_HEADER, copy_id.as_str());
    copy_headers.insert(REPLAY_HEADER, spec.name.as_str());
    let payload = serde_json::to_vec(&body).map_err(err)?;
    let ack = js
        .publish_with_headers(subject, copy_headers, payload.into())
        .await
        .map_err(err)?
        .await
        .map_err(err)?;
    // A copy the stream already holds (the same replay run again) is not new work.
    debug!(seq, duplicate = ack.duplicate, "event copied for replay");
    Ok(!ack.duplicate)
}
