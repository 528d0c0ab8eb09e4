//! A real WebSocket client of the gateway.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use leadbus_shared::TenantId;
use leadbus_shared::auth::mint_token;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A connected client that has seen the gateway's `ready`.
#[derive(Debug)]
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `ready` message.
    pub ready: Value,
}

/// One thing the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A JSON text message.
    Json(Value),
    /// A close frame and its code.
    Close(Option<u16>),
    /// Nothing within the wait, or the connection ended without a close frame.
    End,
}

impl WsClient {
    /// Connects with a token for `tenant` and waits for `ready`.
    pub async fn connect(addr: SocketAddr, secret: &str, tenant: &str) -> WsClient {
        WsClient::connect_with(addr, secret, tenant, "").await
    }

    /// Connects with `query` (`&resume_from=...`, ...) after the token and waits for `ready`.
    pub async fn connect_with(
        addr: SocketAddr,
        secret: &str,
        tenant: &str,
        query: &str,
    ) -> WsClient {
        let tenant = TenantId::new(tenant).unwrap();
        let token = mint_token(secret, "test", &tenant, Duration::from_secs(600)).unwrap();
        let url = format!("ws://{addr}/v1/ws?access_token={token}{query}");
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut client = WsClient {
            socket,
            ready: Value::Null,
        };
        let ready = client
            .next_json(Duration::from_secs(10))
            .await
            .expect("ready message");
        assert_eq!(ready["type"], "ready", "{ready}");
        client.ready = ready;
        client
    }

    /// The next message or close frame, within `wait`.
    pub async fn next_frame(&mut self, wait: Duration) -> Frame {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, self.socket.next()).await
            else {
                return Frame::End;
            };
            match msg {
                Message::Text(t) => {
                    return Frame::Json(serde_json::from_str(&t).unwrap_or(Value::Null));
                }
                Message::Close(frame) => return Frame::Close(frame.map(|f| f.code.into())),
                _ => continue,
            }
        }
    }

    /// Messages until one of `kind` (`"type"`) arrives; returns the ones before and that one.
    pub async fn until(&mut self, kind: &str, wait: Duration) -> (Vec<Value>, Option<Value>) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_frame(left).await {
                Frame::Json(v) if v["type"] == kind => return (before, Some(v)),
                Frame::Json(v) => before.push(v),
                _ => return (before, None),
            }
        }
    }

    /// Closes the connection from the client's side.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, value: Value) {
        self.socket
            .send(Message::text(value.to_string()))
            .await
            .unwrap();
    }

    /// The next JSON text message, or `None` after `wait` (or when the socket closes).
    pub async fn next_json(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??;
            match msg.ok()? {
                Message::Text(t) => return serde_json::from_str(&t).ok(),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Intel messages until `n` of type `intel_type` have arrived or `wait` passes.
    pub async fn collect(&mut self, intel_type: &str, n: usize, wait: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(v) = self.next_json(left).await else {
                break;
            };
            if v["type"] == "intel" && v["intel_type"] == intel_type {
                out.push(v);
            }
        }
        out
    }
}
