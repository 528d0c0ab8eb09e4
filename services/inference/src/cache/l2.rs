//! Redis as the L2 cache, with a bounded wait on every command.
//!
//! The connection is made lazily and re-made after failures, at most once per
//! `retry_after`, so a dead Redis costs one failed connect attempt per interval, not one per
//! event. Every failure is counted and the caller carries on without the cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;
use tracing::{info, warn};

/// A Redis connection used as a cache.
#[derive(Debug)]
pub struct RedisL2 {
    client: redis::Client,
    timeout: Duration,
    retry_after: Duration,
    state: Mutex<State>,
    healthy: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    conn: Option<ConnectionManager>,
    last_attempt: Option<Instant>,
}

impl RedisL2 {
    /// A cache on `url`; nothing is connected until first use.
    pub fn new(url: &str, timeout: Duration) -> Result<Arc<Self>, redis::RedisError> {
        Ok(Arc::new(RedisL2 {
            client: redis::Client::open(no_delay(url)?)?,
            timeout,
            retry_after: Duration::from_secs(1),
            state: Mutex::new(State::default()),
            healthy: AtomicBool::new(false),
        }))
    }

    /// True when the last command succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        let mut state = self.state.lock().await;
        if let Some(conn) = &state.conn {
            return Some(conn.clone());
        }
        if state
            .last_attempt
            .is_some_and(|t| t.elapsed() < self.retry_after)
        {
            return None;
        }
        state.last_attempt = Some(Instant::now());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let attempt = tokio::time::timeout(
            self.timeout * 2,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await;
        match attempt {
            Ok(Ok(conn)) => {
                info!("redis cache connected");
                state.conn = Some(conn.clone());
                Some(conn)
            }
            Ok(Err(error)) => {
                self.mark_down(&error.to_string());
                None
            }
            Err(_) => {
                self.mark_down("connect timed out");
                None
            }
        }
    }

    fn mark_down(&self, error: &str) {
        metrics::counter!("leadbus_redis_errors_total").increment(1);
        if self.healthy.swap(false, Ordering::Relaxed) {
            warn!(%error, "redis cache unavailable; continuing without it");
        }
    }

    fn mark_up(&self) {
        if !self.healthy.swap(true, Ordering::Relaxed) {
            info!("redis cache available");
        }
    }

    /// Reads a key; `None` on a miss and on any failure.
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        let mut conn = self.connection().await?;
        match tokio::time::timeout(self.timeout, conn.get::<_, Option<Vec<u8>>>(key)).await {
            Ok(Ok(value)) => {
                self.mark_up();
                value.map(Bytes::from)
            }
            Ok(Err(error)) => {
                self.mark_down(&error.to_string());
                None
            }
            Err(_) => {
                self.mark_down("command timed out");
                None
            }
        }
    }

    /// Writes a key with a lifetime, without making the caller wait.
    pub fn set_in_background(self: &Arc<Self>, key: String, value: Bytes, ttl: Duration) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let Some(mut conn) = this.connection().await else {
                return;
            };
            let secs = ttl.as_secs().max(1);
            let write = conn.set_ex::<_, _, ()>(key, value.as_ref(), secs);
            match tokio::time::timeout(this.timeout, write).await {
                Ok(Ok(())) => this.mark_up(),
                Ok(Err(error)) => this.mark_down(&error.to_string()),
                Err(_) => this.mark_down("command timed out"),
            }
        });
    }

    /// Writes a key with a lifetime and waits for Redis to confirm; false on any failure.
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> bool {
        let Some(mut conn) = self.connection().await else {
            return false;
        };
        let write = conn.set_ex::<_, _, ()>(key, value, ttl.as_secs().max(1));
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => {
                self.mark_up();
                true
            }
            Ok(Err(error)) => {
                self.mark_down(&error.to_string());
                false
            }
            Err(_) => {
                self.mark_down("command timed out");
                false
            }
        }
    }

    /// Checks the server answers; used by health reports.
    pub async fn ping(&self) -> bool {
        let Some(mut conn) = self.connection().await else {
            return false;
        };
        let ok = matches!(
            tokio::time::timeout(
                self.timeout,
                redis::cmd("PING").query_async::<String>(&mut conn)
            )
            .await,
            Ok(Ok(_))
        );
        if ok {
            self.mark_up()
        } else {
            self.mark_down("ping failed")
        }
        ok
    }
}

/// Connection settings for `url` with Nagle's algorithm off: the multiplexed connection
/// writes small commands back to back, and Nagle would hold each behind the previous one's
/// delayed ack (up to 40 ms on Linux).
fn no_delay(url: &str) -> redis::RedisResult<redis::ConnectionInfo> {
    use redis::IntoConnectionInfo;
    let info = url.into_connection_info()?;
    let tcp = info.tcp_settings().clone().set_nodelay(true);
    Ok(info.set_tcp_settings(tcp))
}
