//! The intelligence cache: a bounded in-process L1 in front of Redis (L2).
//!
//! Entries are keyed by tenant, model, model version and a hash of the model's input, so an
//! unchanged input is a hit and a changed one is never served stale. Redis is an
//! accelerator only: when it is slow or gone the model runs and the result is still right.

mod l2;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use leadbus_shared::TenantId;
use leadbus_shared::intel::CacheSource;
use moka::future::Cache;
use tracing::debug;

pub use l2::RedisL2;

use crate::models::{Model, ModelError};

/// Cache settings.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Entries in L1 at most.
    pub l1_capacity: u64,
    /// L1 lifetime.
    pub l1_ttl: Duration,
    /// L2 lifetime.
    pub l2_ttl: Duration,
}

impl From<&leadbus_shared::Config> for CacheConfig {
    fn from(config: &leadbus_shared::Config) -> Self {
        CacheConfig {
            l1_capacity: config.l1_capacity,
            l1_ttl: Duration::from_secs(config.l1_ttl_secs),
            l2_ttl: Duration::from_secs(config.cache_ttl_secs),
        }
    }
}

/// L1 plus optional L2.
#[derive(Debug, Clone)]
pub struct IntelCache {
    l1: Cache<String, Bytes>,
    l2: Option<Arc<RedisL2>>,
    l2_ttl: Duration,
}

/// The output of one model for one event, and where it came from.
#[derive(Debug)]
pub struct Lookup<T> {
    /// The output, or the model's error.
    pub output: Result<T, ModelError>,
    /// L1, L2 or computed.
    pub source: CacheSource,
}

impl IntelCache {
    /// A cache; `l2` is `None` to run without Redis.
    pub fn new(config: &CacheConfig, l2: Option<Arc<RedisL2>>) -> Self {
        let l1 = Cache::builder()
            .max_capacity(config.l1_capacity)
            .time_to_live(config.l1_ttl)
            .build();
        IntelCache {
            l1,
            l2,
            l2_ttl: config.l2_ttl,
        }
    }

    /// The L2 handle, for health reporting.
    pub fn l2(&self) -> Option<&Arc<RedisL2>> {
        self.l2.as_ref()
    }

    /// Returns the cached output of `model` for `input`, or runs the model and stores it.
    pub async fn get_or_run<M: Model>(
        &self,
        tenant: &TenantId,
        model: &M,
        input: &M::Input,
    ) -> Lookup<M::Output> {
        let key = format!("leadbus:{tenant}:{}", model.cache_key(input));
        let name = model.name();

        if let Some(bytes) = self.l1.get(&key).await
            && let Ok(output) = serde_json::from_slice(&bytes)
        {
            count_hit(name, "l1");
            return Lookup {
                output: Ok(output),
                source: CacheSource::L1,
            };
        }

        if let Some(l2) = &self.l2
            && let Some(bytes) = l2.get(&key).await
        {
            if let Ok(output) = serde_json::from_slice(&bytes) {
                count_hit(name, "l2");
                self.l1.insert(key, bytes).await;
                return Lookup {
                    output: Ok(output),
                    source: CacheSource::L2,
                };
            }
            debug!(model = name, %key, "unreadable L2 entry ignored");
        }

        metrics::counter!("leadbus_cache_misses_total", "model" => name).increment(1);
        let output = model.run(input);
        if let Ok(out) = &output
            && let Ok(json) = serde_json::to_vec(out)
        {
            let bytes = Bytes::from(json);
            self.l1.insert(key.clone(), bytes.clone()).await;
            if let Some(l2) = &self.l2 {
                l2.set_in_background(key, bytes, self.l2_ttl);
            }
        }
        Lookup {
            output,
            source: CacheSource::Computed,
        }
    }

    /// Runs `model` on `input` and writes the output to both levels, waiting for Redis.
    /// Returns whether Redis took it. Used by `rebuild` to refill an emptied cache.
    pub async fn warm<M: Model>(
        &self,
        tenant: &TenantId,
        model: &M,
        input: &M::Input,
    ) -> Result<bool, ModelError> {
        let key = format!("leadbus:{tenant}:{}", model.cache_key(input));
        let output = model.run(input)?;
        let json = serde_json::to_vec(&output).map_err(|e| ModelError {
            model: model.name(),
            reason: format!("output does not serialise: {e}"),
        })?;
        let bytes = Bytes::from(json);
        self.l1.insert(key.clone(), bytes.clone()).await;
        Ok(match &self.l2 {
            Some(l2) => l2.set(&key, &bytes, self.l2_ttl).await,
            None => false,
        })
    }

    /// Drops every L1 entry (tests and `rebuild`).
    pub fn clear_l1(&self) {
        self.l1.invalidate_all();
    }
}

fn count_hit(model: &'static str, level: &'static str) {
    metrics::counter!("leadbus_cache_hits_total", "model" => model, "level" => level).increment(1);
}
