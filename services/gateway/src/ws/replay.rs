//! Resuming: a per-connection ordered consumer on LEAD_INTEL, filtered to the tenant, from the
//! sequence after the client's `resume_from`. It runs until it has caught up with the stream;
//! the connection then switches to the live fan-out, dropping live messages the replay already
//! covered (see `Connection::on_replay` for why that leaves no gap and no duplicate).

use std::sync::Arc;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use leadbus_shared::TenantId;
use leadbus_shared::subjects::{INTEL_STREAM, tenant_intel_filter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::protocol::{Filter, ResumeInfo};

/// Replays one gateway runs at once; a client asking for one more is told to retry.
pub const MAX_REPLAYS: usize = 256;

/// Messages already sent on this connection that a new replay must not send again: those in
/// `(after, upto]` that `filter` admitted.
#[derive(Debug, Clone)]
pub struct AlreadySent {
    /// Exclusive lower bound.
    pub after: u64,
    /// Inclusive upper bound.
    pub upto: u64,
    /// The filter they were sent under.
    pub filter: Filter,
}

impl AlreadySent {
    /// True when the message `seq` of `lead` and `intel_type` was sent before.
    pub fn contains(&self, seq: u64, lead: &str, intel_type: &str) -> bool {
        seq > self.after && seq <= self.upto && self.filter.admits(lead, intel_type)
    }
}

/// A replay in progress.
pub struct Replay {
    /// Ordered messages of the tenant from `resume_from + 1`.
    pub messages: consumer::pull::Ordered,
    /// Last sequence read from the replay (starts at `resume_from`).
    pub position: u64,
    /// Highest live sequence dropped while replaying; the replay must reach it.
    pub max_dropped: u64,
    /// Messages of the tenant not yet read when the replay last looked (0: caught up).
    pub pending: u64,
    /// Messages sent by the replay.
    pub sent: u64,
    /// What the connection sent before this replay began.
    pub already_sent: Option<AlreadySent>,
    _permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("position", &self.position)
            .field("max_dropped", &self.max_dropped)
            .field("pending", &self.pending)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl Replay {
    /// True when the replay has read everything the stream held for the tenant and every
    /// live message dropped meanwhile: the live queue can take over.
    pub fn caught_up(&self) -> bool {
        self.pending == 0 && self.position >= self.max_dropped
    }

    /// The next replayed message; never resolves when the replay ended.
    pub async fn next(
        replay: &mut Option<Replay>,
    ) -> Option<Result<jetstream::Message, consumer::pull::OrderedError>> {
        match replay {
            Some(r) => r.messages.next().await,
            None => std::future::pending().await,
        }
    }
}

/// Why a replay could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// [`MAX_REPLAYS`] are running.
    #[error("too many clients are resuming; retry shortly")]
    Busy,
    /// The stream could not be read.
    #[error("cannot read {INTEL_STREAM}: {0}")]
    Stream(String),
}

/// Opens a replay of `tenant`'s messages after `from`.
pub async fn start(
    js: &jetstream::Context,
    permits: &Arc<Semaphore>,
    tenant: &TenantId,
    from: u64,
    already_sent: Option<AlreadySent>,
) -> Result<(Replay, ResumeInfo), ReplayError> {
    let permit = Arc::clone(permits)
        .try_acquire_owned()
        .map_err(|_| ReplayError::Busy)?;
    let stream_err = |e: &dyn std::fmt::Display| ReplayError::Stream(e.to_string());
    let mut stream = js
        .get_stream(INTEL_STREAM)
        .await
        .map_err(|e| stream_err(&e))?;
    let state = stream
        .info()
        .await
        .map_err(|e| stream_err(&e))?
        .state
        .clone();
    // A position past the stream's end belongs to a stream that was reset: everything the
    // stream holds now is new to the client, so the replay starts from its beginning, and the
    // connection's position with it (or live messages up to the old position would be taken
    // for already sent).
    let start = if from > state.last_sequence { 0 } else { from };
    let already_sent = already_sent.filter(|s| s.upto > start);
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: tenant_intel_filter(tenant),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start.saturating_add(1),
            },
            ..Default::default()
        })
        .await
        .map_err(|e| stream_err(&e))?;
    let pending = consumer.cached_info().num_pending;
    let messages = consumer.messages().await.map_err(|e| stream_err(&e))?;
    let info = ResumeInfo {
        from,
        first_seq: state.first_sequence,
        last_seq: state.last_sequence,
    };
    Ok((
        Replay {
            messages,
            position: start,
            max_dropped: 0,
            pending,
            sent: 0,
            already_sent,
            _permit: permit,
        },
        info,
    ))
}
