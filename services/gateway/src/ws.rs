//! `GET /v1/ws`: a tenant's intelligence, live, over a WebSocket.
//!
//! Server messages: `{"type":"ready",...}` once subscribed, then
//! `{"type":"intel","seq":N,"intel_type":...,"lead_id":...,"data":{...}}`.
//! Client messages: `{"type":"subscribe","intel_types":[...],"leads":[...]}` narrows the
//! feed (both optional; empty means all of the tenant). A client that falls behind the feed
//! is closed with code 4008.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use leadbus_shared::TenantId;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info, warn};

use crate::auth::tenant_from;
use crate::error::ApiError;
use crate::feed::FeedItem;
use crate::state::AppState;

/// Close code for a client that could not keep up.
pub const CLOSE_SLOW_CLIENT: u16 = 4008;
/// Close code when the gateway shuts down.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for a client that stopped answering pings.
pub const CLOSE_TIMEOUT: u16 = 4000;

const PING_EVERY: Duration = Duration::from_secs(20);
const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// Query parameters of the upgrade request.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    access_token: Option<String>,
}

/// Checks the token, then upgrades.
pub async fn ws_handler(
    State(state): State<AppState>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let tenant = tenant_from(
        &headers,
        query.access_token.as_deref(),
        &state.config.jwt_secret,
    )?;
    Ok(upgrade.on_upgrade(move |socket| {
        let tracker = state.sockets.clone();
        tracker.track_future(handle_socket(socket, tenant, state))
    }))
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    Subscribe {
        #[serde(default)]
        intel_types: Vec<String>,
        #[serde(default)]
        leads: Vec<String>,
    },
}

#[derive(Debug, Default)]
struct Filter {
    intel_types: HashSet<String>,
    leads: HashSet<String>,
}

impl Filter {
    fn admits(&self, item: &FeedItem) -> bool {
        (self.intel_types.is_empty() || self.intel_types.contains(&item.intel_type))
            && (self.leads.is_empty() || self.leads.contains(&item.lead))
    }
}

async fn handle_socket(socket: WebSocket, tenant: TenantId, state: AppState) {
    let mut feed = state.feed.subscribe();
    let (mut sink, mut stream) = socket.split();
    metrics::gauge!("leadbus_ws_clients").increment(1.0);
    info!(%tenant, "websocket client connected");

    let ready = serde_json::json!({
        "type": "ready",
        "tenant": tenant.as_str(),
        "last_seq": state.feed_health.last_seq(),
    });
    let mut close = None;
    if sink
        .send(Message::Text(ready.to_string().into()))
        .await
        .is_err()
    {
        close = Some((CLOSE_GOING_AWAY, "send failed"));
    }

    let mut filter = Filter::default();
    let mut ended = "client closed";
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    while close.is_none() {
        tokio::select! {
            _ = state.shutdown.cancelled() => close = Some((CLOSE_GOING_AWAY, "gateway shutting down")),
            item = feed.recv() => match item {
                Ok(item) => {
                    if item.tenant != tenant.as_str() || !filter.admits(&item) {
                        continue;
                    }
                    let text = Utf8Bytes::from(item.text.as_ref());
                    if sink.send(Message::Text(text)).await.is_err() {
                        ended = "send failed";
                        break;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    warn!(%tenant, missed, "websocket client too slow; closing");
                    metrics::counter!("leadbus_ws_slow_clients_total").increment(1);
                    close = Some((CLOSE_SLOW_CLIENT, "slow client: fell behind the feed"));
                }
                Err(RecvError::Closed) => close = Some((CLOSE_GOING_AWAY, "feed closed")),
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    last_heard = tokio::time::Instant::now();
                    let reply = match serde_json::from_str::<ClientMessage>(&text) {
                        Ok(ClientMessage::Subscribe { intel_types, leads }) => {
                            filter = Filter {
                                intel_types: intel_types.into_iter().collect(),
                                leads: leads.into_iter().collect(),
                            };
                            serde_json::json!({"type": "subscribed"})
                        }
                        Err(error) => serde_json::json!({
                            "type": "error",
                            "message": format!("unreadable client message: {error}"),
                        }),
                    };
                    if sink.send(Message::Text(reply.to_string().into())).await.is_err() {
                        ended = "send failed";
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None => {
                    ended = "client closed";
                    break;
                }
                Some(Ok(_)) => last_heard = tokio::time::Instant::now(),
                Some(Err(error)) => {
                    debug!(%tenant, %error, "websocket read failed");
                    ended = "read failed";
                    break;
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_LIMIT {
                    close = Some((CLOSE_TIMEOUT, "no pong within the idle limit"));
                } else if sink.send(Message::Ping(Default::default())).await.is_err() {
                    ended = "ping failed";
                    break;
                }
            }
        }
    }
    if let Some((_, reason)) = close {
        ended = reason;
    }
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        // The peer may already be gone; there is nothing more to tell it then.
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
    metrics::gauge!("leadbus_ws_clients").decrement(1.0);
    info!(%tenant, reason = ended, "websocket client disconnected");
}
