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
}

impl WsClient {
    /// Connects with a token for `tenant` and waits for `ready`.
    pub async fn connect(addr: SocketAddr, secret: &str, tenant: &str) -> WsClient {
        let tenant = TenantId::new(tenant).unwrap();
        let token = mint_token(secret, "test", &tenant, Duration::from_secs(600)).unwrap();
        let url = format!("ws://{addr}/v1/ws?access_token={token}");
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut client = WsClient { socket };
        let ready = client
            .next_json(Duration::from_secs(10))
            .await
            .expect("ready message");
        assert_eq!(ready["type"], "ready", "{ready}");
        client
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
