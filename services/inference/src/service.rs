//! Starting and stopping the inference service.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use leadbus_shared::subjects::EVENTS_STREAM;
use leadbus_shared::{Config, streams};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::cache::{CacheConfig, IntelCache, RedisL2};
use crate::consume::{Board, Health, Lanes, run_scheduler};
use crate::models::Models;
use crate::pipeline::{Pipeline, ProfileStore, Publisher};

/// Events each lane (tenant and priority) may hold queued for the scheduler.
const LANE_QUEUE: usize = 16;

/// Start-up failed; each variant names the step.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// NATS could not be reached.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The URL tried.
        url: String,
        /// Why.
        reason: String,
    },
    /// The streams could not be set up.
    #[error(transparent)]
    Streams(#[from] streams::StreamSetupError),
    /// The profile bucket could not be opened.
    #[error(transparent)]
    Profiles(#[from] crate::pipeline::ProfileError),
    /// Redis URL is malformed.
    #[error("invalid redis_url: {0}")]
    Redis(String),
    /// The health endpoint's address is taken.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The events stream is missing.
    #[error("stream {EVENTS_STREAM} unavailable: {0}")]
    Stream(String),
}

/// A running inference service.
#[derive(Debug)]
pub struct Inference {
    /// Consume-side health.
    pub health: Arc<Health>,
    /// The processing pipeline.
    pub pipeline: Arc<Pipeline>,
    tasks: TaskTracker,
    in_flight: TaskTracker,
    shutdown: CancellationToken,
    grace: Duration,
    client: async_nats::Client,
}

impl Inference {
    /// Connects, sets up streams, bucket and consumers, and starts consuming. Fails fast on a
    /// bad setup; once running, it recovers from every dependency by itself.
    pub async fn start(
        config: &Config,
        models: Arc<Models>,
        shutdown: CancellationToken,
    ) -> Result<Inference, StartError> {
        let client = leadbus_shared::nats_url::connect_options(&config.nats_url)
            .name("leadbus-inference")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(&config.nats_url);
        let client = tokio::time::timeout(Duration::from_secs(10), client)
            .await
            .map_err(|_| StartError::Connect {
                url: config.nats_url.clone(),
                reason: "timed out".into(),
            })?
            .map_err(|e| StartError::Connect {
                url: config.nats_url.clone(),
                reason: e.to_string(),
            })?;
        let js = jetstream::new(client.clone());
        streams::ensure_streams(&js, config).await?;
        let profiles = ProfileStore::open(&js, config.profile_cache_entries).await?;

        let l2 = RedisL2::new(
            &config.redis_url,
            Duration::from_millis(config.redis_timeout_ms),
        )
        .map_err(|e| StartError::Redis(e.to_string()))?;
        if !l2.ping().await {
            warn!(url = %config.redis_url, "redis unreachable at start; running without L2 until it returns");
        }
        let redis_for_health = Arc::clone(&l2);
        let cache = IntelCache::new(&CacheConfig::from(config), Some(l2));
        let pipeline = Arc::new(Pipeline::new(
            Arc::clone(&models),
            cache,
            profiles,
            Publisher::new(js.clone()),
            config.max_payload_bytes,
            config.max_deliver,
            &config.disabled_models,
        ));

        let stream = js
            .get_stream(EVENTS_STREAM)
            .await
            .map_err(|e| StartError::Stream(e.to_string()))?;
        let health = Arc::new(Health::default());
        let tasks = TaskTracker::new();
        let in_flight = TaskTracker::new();
        // Bound before any event is pulled: a second instance on a taken port fails here.
        let health_addr = crate::health_http::serve_health(
            config.inference_listen,
            Arc::clone(&health),
            Some(redis_for_health),
            models.matcher.len(),
            shutdown.clone(),
        )
        .await
        .map_err(|source| StartError::Bind {
            addr: config.inference_listen,
            source,
        })?;
        // Small per-lane queues: a critical event never queues behind a deep prefetch, and
        // one tenant's backlog never fills another's queue.
        let board = Board::new(
            LANE_QUEUE,
            config.max_concurrent_processing,
            config.backlog_yield_divisor,
        );
        let lanes = Lanes::new(
            stream.clone(),
            config.clone(),
            Arc::clone(&pipeline),
            Arc::clone(&board),
            Arc::clone(&health),
            tasks.clone(),
            shutdown.clone(),
        );
        match lanes.resume_existing().await {
            Ok(n) => info!(tenants = n, "resumed tenant lanes"),
            Err(error) => warn!(%error, "cannot list existing lanes; discovery will find them"),
        }
        tasks.spawn(lanes.run_discovery());
        tasks.spawn(run_scheduler(
            board,
            Arc::clone(&pipeline),
            config.max_concurrent_processing,
            Duration::from_secs(config.processing_timeout_secs),
            in_flight.clone(),
            shutdown.clone(),
        ));
        tasks.close();
        info!(
            max_concurrent = config.max_concurrent_processing,
            health = %format!("http://{health_addr}/healthz"),
            "inference service started"
        );
        Ok(Inference {
            health,
            pipeline,
            tasks,
            in_flight,
            shutdown,
            grace: Duration::from_secs(config.processing_timeout_secs),
            client,
        })
    }

    /// Stops fetching, lets in-flight events finish (bounded by the processing timeout), and
    /// returns. Events not finished in time are redelivered by the server.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.wait().await;
        self.in_flight.close();
        if tokio::time::timeout(self.grace, self.in_flight.wait())
            .await
            .is_err()
        {
            warn!("in-flight events did not finish in time; they will be redelivered");
        }
        // The last acks and naks are only queued in the client: send them before exiting.
        if let Err(error) = tokio::time::timeout(Duration::from_secs(2), self.client.flush())
            .await
            .map_err(|_| "timed out".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            warn!(%error, "final acks not flushed; those events will be redelivered");
        }
        info!("inference service stopped");
    }
}
