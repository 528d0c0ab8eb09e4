//! `GET /v1/ws`: a tenant's intelligence, live, over a WebSocket, with resume from a stream
//! sequence. The README's WebSocket section describes the protocol; `protocol` holds its
//! messages and close codes, `replay` the catch-up from the stream.
//!
//! Each connection has a bounded send queue filled by the hub. The connection task drains
//! it into the socket; when the client reads too slowly the queue fills, the hub evicts the
//! connection, and it is closed with [`CLOSE_SLOW_CLIENT`].

pub mod protocol;
pub mod replay;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use leadbus_shared::TenantId;
use leadbus_shared::subjects::parse_intel_subject;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use protocol::{
    CLOSE_GOING_AWAY, CLOSE_INTERNAL, CLOSE_NORMAL, CLOSE_SLOW_CLIENT, CLOSE_TIMEOUT,
    CLOSE_TOKEN_EXPIRED, CLOSE_TRY_AGAIN,
};

use crate::auth::claims_from;
use crate::error::ApiError;
use crate::feed::{FeedItem, client_message};
use crate::state::AppState;
use protocol::{ClientMessage, Filter, split_list};
use replay::{AlreadySent, Replay, ReplayError};

/// Longest wait for a close frame to reach a client (a slow one may need to read first).
const CLOSE_WAIT: Duration = Duration::from_secs(10);
/// Largest message a client may send.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// Query parameters of the upgrade request.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    access_token: Option<String>,
    /// Resume at once, before anything live is sent.
    resume_from: Option<u64>,
    /// Comma-separated intel types of the first subscription.
    intel_types: Option<String>,
    /// Comma-separated leads of the first subscription.
    leads: Option<String>,
}

/// Checks the token and the first subscription, then upgrades.
pub async fn ws_handler(
    State(state): State<AppState>,
    query: Result<Query<WsQuery>, QueryRejection>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // A malformed query (say `resume_from=abc`) is refused as JSON like every other error.
    let Query(query) = query.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    // The token first: a request without one learns nothing else.
    let claims = claims_from(
        &headers,
        query.access_token.as_deref(),
        &state.config.jwt_secret,
    )?;
    let tenant = claims.tenant.clone();
    // The connection ends when its token does.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let expires_at =
        tokio::time::Instant::now() + Duration::from_secs(claims.exp.saturating_sub(now));
    let upgrade = upgrade.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    if state.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable("the gateway is shutting down".into()));
    }
    let filter = Filter::new(
        split_list(query.intel_types.as_deref()),
        split_list(query.leads.as_deref()),
    )
    .map_err(ApiError::BadRequest)?;
    let first = FirstSubscription {
        filter,
        resume_from: query.resume_from,
    };
    let upgrade = upgrade
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(MAX_CLIENT_MESSAGE);
    Ok(upgrade.on_upgrade(move |socket| {
        let tracker = state.sockets.clone();
        tracker.track_future(run(socket, tenant, first, state, expires_at))
    }))
}

#[derive(Debug)]
struct FirstSubscription {
    filter: Filter,
    resume_from: Option<u64>,
}

/// Why the connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Close with this code and reason.
    Close(u16, &'static str),
    /// The peer is gone; nothing more can be sent.
    Gone,
}

/// One client.
struct Connection {
    tenant: TenantId,
    /// When the client's token expires; the connection is closed then.
    expires_at: tokio::time::Instant,
    state: AppState,
    sink: SplitSink<WebSocket, Message>,
    evicted: CancellationToken,
    filter: Filter,
    /// Where the current subscription started: it has sent every message it admits above it.
    sub_after: u64,
    /// Highest sequence handled (sent or filtered out).
    position: u64,
    replay: Option<Replay>,
}

async fn run(
    socket: WebSocket,
    tenant: TenantId,
    first: FirstSubscription,
    state: AppState,
    expires_at: tokio::time::Instant,
) {
    let (queue_tx, mut queue) = mpsc::channel::<Arc<FeedItem>>(state.config.ws_send_queue);
    let membership = state.hub.join(tenant.as_str(), queue_tx);
    let (sink, mut stream) = socket.split();
    metrics::gauge!("leadbus_ws_clients").increment(1.0);
    info!(%tenant, after_seq = membership.after_seq, "websocket client connected");

    let mut conn = Connection {
        tenant,
        expires_at,
        sink,
        evicted: membership.evicted.clone(),
        filter: first.filter.clone(),
        sub_after: membership.after_seq,
        position: membership.after_seq,
        replay: None,
        state,
    };
    let end = conn.serve(&mut queue, &mut stream, first).await;
    drop(membership);
    conn.finish(end).await;
    metrics::gauge!("leadbus_ws_clients").decrement(1.0);
}

impl Connection {
    async fn serve(
        &mut self,
        queue: &mut mpsc::Receiver<Arc<FeedItem>>,
        stream: &mut futures::stream::SplitStream<WebSocket>,
        first: FirstSubscription,
    ) -> End {
        let ready = json!({
            "type": "ready",
            "tenant": self.tenant.as_str(),
            "last_seq": self.position,
            "subscription": self.filter.describe(),
        });
        if let Err(end) = self.send_json(&ready).await {
            return end;
        }
        if let Some(from) = first.resume_from
            && let Err(end) = self.subscribe(first.filter, Some(from)).await
        {
            return end;
        }

        let shutdown = self.state.shutdown.clone();
        let evicted = self.evicted.clone();
        let ping_every = Duration::from_secs(self.state.config.ws_ping_secs);
        let idle_limit = Duration::from_secs(self.state.config.ws_idle_secs);
        let mut ping = tokio::time::interval(ping_every);
        ping.tick().await;
        let mut last_heard = tokio::time::Instant::now();
        loop {
            let step = tokio::select! {
                biased;
                _ = shutdown.cancelled() => Err(End::Close(CLOSE_GOING_AWAY, "gateway shutting down")),
                _ = evicted.cancelled() => Err(slow()),
                _ = tokio::time::sleep_until(self.expires_at) => {
                    Err(End::Close(CLOSE_TOKEN_EXPIRED, "token expired"))
                }
                msg = Replay::next(&mut self.replay) => self.on_replay(msg).await,
                item = queue.recv() => match item {
                    Some(item) => self.on_live(&item).await,
                    None => Err(slow()),
                },
                incoming = stream.next() => {
                    last_heard = tokio::time::Instant::now();
                    self.on_client(incoming).await
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > idle_limit {
                        Err(End::Close(CLOSE_TIMEOUT, "no pong within the idle limit"))
                    } else {
                        self.send(Message::Ping(Default::default())).await
                    }
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Sends one frame, unless the connection is evicted or the gateway stops meanwhile.
    async fn send(&mut self, msg: Message) -> Result<(), End> {
        tokio::select! {
            biased;
            _ = self.evicted.cancelled() => Err(slow()),
            _ = self.state.shutdown.cancelled() => Err(End::Close(CLOSE_GOING_AWAY, "gateway shutting down")),
            sent = self.sink.send(msg) => sent.map_err(|_| End::Gone),
        }
    }

    async fn send_json(&mut self, value: &Value) -> Result<(), End> {
        self.send(Message::Text(value.to_string().into())).await
    }

    async fn send_text(&mut self, text: &str) -> Result<(), End> {
        self.send(Message::Text(Utf8Bytes::from(text))).await
    }

    async fn on_live(&mut self, item: &FeedItem) -> Result<(), End> {
        if let Some(replay) = &mut self.replay {
            // The replay reads this message from the stream too; it must get that far before
            // the live queue takes over.
            replay.max_dropped = replay.max_dropped.max(item.seq);
            return Ok(());
        }
        if item.seq <= self.position {
            return Ok(());
        }
        self.position = item.seq;
        if self.filter.admits_item(item) {
            self.send_text(&item.text).await?;
        }
        Ok(())
    }

    /// One message of the replay. The switch to live happens when the replay has read
    /// everything the stream held for the tenant (`pending == 0`) up to at least every live
    /// message dropped meanwhile. Any later message was stored after that read, so the hub
    /// (which this connection joined before the replay began) queues it: no gap. Live
    /// messages at or below the replay's position are dropped: no duplicate.
    async fn on_replay(
        &mut self,
        msg: Option<
            Result<
                async_nats::jetstream::Message,
                async_nats::jetstream::consumer::pull::OrderedError,
            >,
        >,
    ) -> Result<(), End> {
        let msg = match msg {
            Some(Ok(msg)) => msg,
            Some(Err(error)) => {
                warn!(tenant = %self.tenant, %error, "replay failed");
                return Err(End::Close(CLOSE_INTERNAL, "resume failed; retry"));
            }
            None => return Err(End::Close(CLOSE_INTERNAL, "resume ended early; retry")),
        };
        let Ok(info) = msg.info() else {
            return Ok(());
        };
        let (seq, pending) = (info.stream_sequence, info.pending);
        let text = parse_intel_subject(&msg.subject).and_then(|t| {
            let wanted = self.filter.admits(t.lead, t.intel_type);
            let sent_before = self
                .replay
                .as_ref()
                .and_then(|r| r.already_sent.as_ref())
                .is_some_and(|s| s.contains(seq, t.lead, t.intel_type));
            (wanted && !sent_before)
                .then(|| client_message(seq, t.lead, t.intel_type, &msg.payload))
                .flatten()
        });
        if let Some(text) = text {
            self.send_text(&text).await?;
            if let Some(r) = &mut self.replay {
                r.sent += 1;
            }
        }
        if let Some(r) = &mut self.replay {
            r.position = seq;
            r.pending = pending;
        }
        self.finish_replay_if_caught_up().await
    }

    async fn finish_replay_if_caught_up(&mut self) -> Result<(), End> {
        let Some(replay) = self.replay.take_if(|r| r.caught_up()) else {
            return Ok(());
        };
        self.position = self.position.max(replay.position);
        metrics::counter!("leadbus_ws_replayed_total").increment(replay.sent);
        debug!(tenant = %self.tenant, position = self.position, replayed = replay.sent, "resume caught up; live");
        self.send_json(&json!({
            "type": "live",
            "position": self.position,
            "replayed": replay.sent,
        }))
        .await
    }

    /// Replaces the subscription; with `resume_from`, replays from the stream first.
    async fn subscribe(&mut self, filter: Filter, resume_from: Option<u64>) -> Result<(), End> {
        let Some(from) = resume_from else {
            // The new filter applies from the next message; a replay in progress goes on.
            self.filter = filter;
            self.sub_after = self.replay.as_ref().map_or(self.position, |r| r.position);
            return self
                .send_json(&json!({
                    "type": "subscribed",
                    "subscription": self.filter.describe(),
                    "resume": null,
                }))
                .await;
        };

        // What the current subscription has sent: the new replay must not send it again.
        let already_sent = match self.replay.take() {
            Some(r) => AlreadySent {
                after: self.sub_after,
                upto: r.position,
                filter: self.filter.clone(),
            },
            None => AlreadySent {
                after: self.sub_after,
                upto: self.position,
                filter: self.filter.clone(),
            },
        };
        let started = replay::start(
            &self.state.js,
            &self.state.replay_permits,
            &self.tenant,
            from,
            Some(already_sent),
        )
        .await;
        let (replay, resume) = match started {
            Ok(started) => started,
            Err(ReplayError::Busy) => {
                return Err(End::Close(
                    CLOSE_TRY_AGAIN,
                    "too many clients resuming; retry",
                ));
            }
            Err(error) => {
                warn!(tenant = %self.tenant, %error, "cannot start a replay");
                return Err(End::Close(CLOSE_INTERNAL, "resume failed; retry"));
            }
        };
        metrics::counter!("leadbus_ws_resumes_total", "complete" => if resume.complete() { "true" } else { "false" })
            .increment(1);
        info!(
            tenant = %self.tenant,
            from,
            complete = resume.complete(),
            first_seq = resume.first_seq,
            pending = replay.pending,
            "websocket client resuming"
        );
        self.filter = filter;
        self.sub_after = replay.position;
        // After a reset stream, positions restart: the old one means nothing any more.
        if resume.from > resume.last_seq {
            self.position = replay.position;
        }
        self.replay = Some(replay);
        self.send_json(&json!({
            "type": "subscribed",
            "subscription": self.filter.describe(),
            "resume": resume.to_json(),
        }))
        .await?;
        self.finish_replay_if_caught_up().await
    }

    async fn on_client(
        &mut self,
        incoming: Option<Result<Message, axum::Error>>,
    ) -> Result<(), End> {
        let text = match incoming {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | None => {
                return Err(End::Close(CLOSE_NORMAL, "bye"));
            }
            Some(Ok(_)) => return Ok(()),
            Some(Err(error)) => {
                debug!(tenant = %self.tenant, %error, "websocket read failed");
                return Err(End::Gone);
            }
        };
        match serde_json::from_str::<ClientMessage>(&text) {
            Ok(ClientMessage::Subscribe {
                intel_types,
                leads,
                resume_from,
            }) => match Filter::new(intel_types, leads) {
                Ok(filter) => self.subscribe(filter, resume_from).await,
                Err(message) => self.client_error(&message).await,
            },
            Ok(ClientMessage::Ping { id }) => {
                self.send_json(&json!({"type": "pong", "id": id})).await
            }
            Err(error) => {
                self.client_error(&format!("unreadable client message: {error}"))
                    .await
            }
        }
    }

    async fn client_error(&mut self, message: &str) -> Result<(), End> {
        self.send_json(&json!({"type": "error", "message": message}))
            .await
    }

    async fn finish(mut self, end: End) {
        let End::Close(code, reason) = end else {
            info!(tenant = %self.tenant, "websocket client gone");
            return;
        };
        if code == CLOSE_SLOW_CLIENT {
            warn!(tenant = %self.tenant, "websocket client too slow; closed");
        } else {
            info!(tenant = %self.tenant, code, reason, "websocket closed");
        }
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        // A slow client gets the close frame after what is already buffered, if it reads in
        // time; otherwise the connection is simply dropped.
        let closed = tokio::time::timeout(CLOSE_WAIT, async {
            self.sink.send(Message::Close(Some(frame))).await?;
            self.sink.close().await
        });
        if closed.await.is_err() {
            debug!(tenant = %self.tenant, "close frame not delivered in time; dropping");
        }
    }
}

fn slow() -> End {
    End::Close(CLOSE_SLOW_CLIENT, "slow client: the send queue filled up")
}
