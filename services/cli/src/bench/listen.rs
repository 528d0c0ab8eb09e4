//! The WebSocket side: one client per tenant (a token names one tenant), subscribed to
//! `intelligence_complete`, handing every message to the [`Registry`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use leadbus_shared::TenantId;
use leadbus_shared::auth::mint_token;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tracing::warn;

use super::measure::Registry;

/// Open WebSocket clients; closed when dropped.
#[derive(Debug)]
pub(crate) struct Listeners {
    tasks: Vec<JoinHandle<()>>,
    /// Clients the gateway closed or that failed before the end (a slow client is closed
    /// with 4008, and its results are then missing from the phase).
    pub(crate) closed: Arc<AtomicU64>,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Connects one client per tenant and waits until each is subscribed.
pub(crate) async fn listen(
    gateway: SocketAddr,
    secret: &str,
    tenants: &[TenantId],
    registry: Arc<Registry>,
) -> anyhow::Result<Listeners> {
    let closed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for tenant in tenants {
        let token = mint_token(
            secret,
            "leadbus-bench",
            tenant,
            Duration::from_secs(24 * 3600),
        )?;
        let url = format!("ws://{gateway}/v1/ws?access_token={token}");
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .with_context(|| format!("cannot open the gateway WebSocket at {gateway}"))?;
        let (mut tx, mut rx) = ws.split();
        expect(&mut rx, "ready").await?;
        tx.send(Message::text(
            r#"{"type":"subscribe","intel_types":["intelligence_complete"]}"#,
        ))
        .await?;
        expect(&mut rx, "subscribed").await?;
        let registry = Arc::clone(&registry);
        let closed = Arc::clone(&closed);
        let tenant = tenant.clone();
        tasks.push(tokio::spawn(async move {
            // The sink is kept so the connection stays open; pings are answered by the
            // library when the stream is read.
            let _tx = tx;
            while let Some(msg) = rx.next().await {
                match msg {
                    Ok(Message::Text(text)) => registry.record(&text, Instant::now()),
                    Ok(Message::Close(frame)) => {
                        warn!(%tenant, ?frame, "gateway closed the bench's WebSocket");
                        break;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        warn!(%tenant, %error, "bench WebSocket failed");
                        break;
                    }
                }
            }
            closed.fetch_add(1, Ordering::Relaxed);
        }));
    }
    Ok(Listeners { tasks, closed })
}

async fn expect<S>(rx: &mut S, kind: &str) -> anyhow::Result<()>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let wanted = format!("\"type\":\"{kind}\"");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rx.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains(&wanted) => return Ok(()),
            Ok(Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_)))) => {}
            Ok(other) => bail!("gateway did not send {kind}: {other:?}"),
            Err(_) => bail!("gateway did not send {kind} within 10 s"),
        }
    }
}
