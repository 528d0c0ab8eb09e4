//! Test harness: real servers, the services started in process, and a real WebSocket
//! client. Each test gets its own servers, so tests run in parallel and may kill them.

#![allow(missing_docs, clippy::unwrap_used)]

pub mod http;
pub mod intel;
pub mod servers;
pub mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_nats::jetstream;
use leadbus_gateway::Gateway;
use leadbus_inference::Inference;
use leadbus_inference::models::Models;
use leadbus_shared::Config;
use tokio_util::sync::CancellationToken;

pub use servers::{NatsServer, RedisServer, free_port};
pub use ws::WsClient;

/// The shared data folder next to the repository, as the services default to.
/// Panics, saying what to set, when the folder is not there: every test needs the datasets.
pub fn data_dir() -> PathBuf {
    let dir = match std::env::var("LEADBUS_DATA_DIR") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
    };
    assert!(
        dir.join("leads").is_dir(),
        "the public datasets are not at {}: set LEADBUS_DATA_DIR to the folder holding leads/, \
         churn/ and properties/",
        dir.display()
    );
    dir
}

/// Models are loaded once per test binary: the property catalogue takes a moment.
pub fn models() -> Arc<Models> {
    static MODELS: OnceLock<Arc<Models>> = OnceLock::new();
    MODELS
        .get_or_init(|| Arc::new(Models::load(None, &data_dir()).expect("models load")))
        .clone()
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Servers plus services, all torn down on drop.
#[derive(Debug)]
pub struct Platform {
    pub nats: NatsServer,
    pub redis: RedisServer,
    pub config: Config,
    pub gateway_addr: SocketAddr,
    pub inference: Option<Inference>,
    pub gateway: Option<Gateway>,
    pub shutdown: CancellationToken,
}

impl Platform {
    /// Fresh servers, default settings.
    pub async fn start() -> Platform {
        Platform::start_with(|_| {}).await
    }

    /// Fresh servers; `tune` may change the configuration before the services start.
    pub async fn start_with(tune: impl FnOnce(&mut Config)) -> Platform {
        Platform::start_parts(true, tune).await
    }

    /// Fresh servers and the gateway alone: tests of the gateway publish intelligence
    /// themselves (see [`intel`]).
    pub async fn gateway_only(tune: impl FnOnce(&mut Config)) -> Platform {
        Platform::start_parts(false, tune).await
    }

    async fn start_parts(with_inference: bool, tune: impl FnOnce(&mut Config)) -> Platform {
        init_tracing();
        let nats = NatsServer::start();
        let redis = RedisServer::start();
        let mut config = Config {
            nats_url: nats.url(),
            redis_url: redis.url(),
            gateway_listen: "127.0.0.1:0".parse().unwrap(),
            inference_listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir(),
            // Tests stop at once; the draining test asks for a grace period itself.
            drain_secs: 0,
            ..Config::default()
        };
        tune(&mut config);
        let shutdown = CancellationToken::new();
        // Each service its own child token: stopping one must not stop the other.
        let inference = if with_inference {
            Some(
                Inference::start(&config, models(), shutdown.child_token())
                    .await
                    .unwrap(),
            )
        } else {
            None
        };
        let gateway = Gateway::start(&config, shutdown.child_token())
            .await
            .unwrap();
        Platform {
            nats,
            redis,
            gateway_addr: gateway.addr,
            config,
            inference,
            gateway: Some(gateway),
            shutdown,
        }
    }

    pub async fn js(&self) -> jetstream::Context {
        jetstream::new(async_nats::connect(self.nats.url()).await.unwrap())
    }

    /// A WebSocket client of `tenant`, connected and ready.
    pub async fn client(&self, tenant: &str) -> WsClient {
        WsClient::connect(self.gateway_addr, &self.config.jwt_secret, tenant).await
    }

    /// A valid token of `tenant`.
    pub fn token(&self, tenant: &str) -> String {
        let tenant = leadbus_shared::TenantId::new(tenant).unwrap();
        leadbus_shared::auth::mint_token(
            &self.config.jwt_secret,
            "test",
            &tenant,
            Duration::from_secs(3600),
        )
        .unwrap()
    }

    /// An HTTP client of the gateway.
    pub fn http(&self) -> http::Http {
        http::Http::new(self.gateway_addr)
    }

    /// Stops the services (the servers stop on drop).
    pub async fn stop(mut self) {
        if let Some(g) = self.gateway.take() {
            g.stop().await;
        }
        if let Some(i) = self.inference.take() {
            i.stop().await;
        }
    }
}

/// Resident memory of this process, in bytes (Linux), for memory bounds of in-process services.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Where tests leave files for people to look at: `target/test-output/` of the workspace.
pub fn output_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-output");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Polls `check` every 50 ms until it holds or `limit` passes; returns whether it held.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Counts `intelligence_complete` messages per event id in LEAD_INTEL (from the stream
/// itself, not a client: this is what is stored).
pub async fn stored_completes(js: &jetstream::Context) -> std::collections::HashMap<String, usize> {
    use futures::StreamExt;
    let mut counts = std::collections::HashMap::new();
    let stream = js
        .get_stream(leadbus_shared::subjects::INTEL_STREAM)
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: "leads.intel.*.*.intelligence_complete".into(),
            headers_only: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let pending = consumer.cached_info().num_pending;
    let mut messages = consumer.messages().await.unwrap();
    for _ in 0..pending {
        let msg = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let id = msg
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .unwrap()
            .to_string();
        // `{tenant}:{lead}:{result id}:intelligence_complete`; keyed by the result id.
        let mut parts = id.splitn(3, ':');
        let rest = parts.nth(2).unwrap_or(&id);
        let event_id = rest.trim_end_matches(":intelligence_complete").to_owned();
        *counts.entry(event_id).or_insert(0) += 1;
    }
    counts
}

/// Messages stored in a stream.
pub async fn stream_len(js: &jetstream::Context, name: &str) -> u64 {
    js.get_stream(name)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages
}
