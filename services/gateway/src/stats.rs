//! Figures the gateway derives from the intelligence it relays, per tenant: how many events
//! completed, how long processing and delivery took (HDR histograms), throughput, and where
//! each model output came from (L1, L2, computed). `GET /v1/metrics` reads them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tracing::warn;

/// Tenants tracked at most; a tenant beyond this is relayed but not measured.
pub const MAX_TENANTS: usize = 1000;
/// Seconds of per-second history kept for the charts.
pub const SERIES_SECS: usize = 120;
/// Seconds over which `events_per_second` is averaged.
const RATE_WINDOW_SECS: i64 = 10;
/// Largest latency recorded, in microseconds (one hour); larger values are clamped.
const MAX_MICROS: u64 = 3_600_000_000;

/// The parts of an `intelligence_complete` the figures need.
#[derive(Debug, Deserialize)]
pub struct Summary {
    /// Time from receipt to publish in the inference service.
    #[serde(default)]
    pub processing_time_ms: f64,
    /// Where each part came from: `l1`, `l2`, `computed`, `fallback`.
    #[serde(default)]
    pub cache: BTreeMap<String, String>,
    /// When it was produced.
    pub generated_at: Option<DateTime<Utc>>,
    /// A fallback stood in for a model.
    #[serde(default)]
    pub degraded: bool,
    /// Produced by a replay.
    #[serde(default)]
    pub replay: bool,
    #[serde(default)]
    lead_score: Option<Versioned>,
    #[serde(default)]
    churn: Option<Versioned>,
    #[serde(default)]
    matches: Option<Versioned>,
}

#[derive(Debug, Deserialize)]
struct Versioned {
    #[serde(default)]
    model_version: Option<String>,
}

/// Percentiles of one latency, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub avg: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// One second of the throughput and latency charts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Second {
    /// Unix time, seconds.
    pub t: i64,
    /// Events completed in that second.
    pub events: u64,
    /// Mean processing time of those events, milliseconds.
    pub processing_ms: f64,
    /// Mean delivery time (produced to relayed) of those events, milliseconds.
    pub delivery_ms: f64,
}

/// Where model outputs came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CacheFigures {
    /// Model outputs seen.
    pub lookups: u64,
    /// Served by the in-process cache.
    pub l1: u64,
    /// Served by Redis.
    pub l2: u64,
    /// Computed by the model.
    pub computed: u64,
    /// A fallback stood in.
    pub fallback: u64,
    /// `l1 / lookups`.
    pub l1_hit_rate: f64,
    /// `l2 / (lookups - l1)`: how often Redis had what L1 did not.
    pub l2_hit_rate: f64,
    /// `(l1 + l2) / lookups`.
    pub hit_rate: f64,
}

/// A tenant's figures at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TenantSnapshot {
    /// `intelligence_complete` messages relayed (one per event).
    pub events_completed: u64,
    /// Every intelligence message relayed, partial updates included.
    pub intel_messages: u64,
    /// Completed events a fallback stood in for.
    pub degraded: u64,
    /// Completed events produced by a replay.
    pub replayed: u64,
    /// Events taken in over `POST /v1/events` by this gateway.
    pub ingested: u64,
    /// Processing time in the inference service.
    pub processing_ms: Latency,
    /// From `generated_at` to the gateway relaying it.
    pub delivery_ms: Latency,
    /// Completed events per second over the last ten seconds.
    pub events_per_second: f64,
    /// The last minutes, one entry per second with traffic.
    pub series: Vec<Second>,
    /// Cache levels.
    pub cache: CacheFigures,
    /// Latest model version seen per part.
    pub models: BTreeMap<String, String>,
}

#[derive(Debug)]
struct TenantStats {
    completed: u64,
    messages: u64,
    degraded: u64,
    replayed: u64,
    ingested: u64,
    processing: Histogram<u32>,
    delivery: Histogram<u32>,
    processing_sum_ms: f64,
    delivery_sum_ms: f64,
    seconds: VecDeque<SecondAcc>,
    cache: CacheFigures,
    models: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy)]
struct SecondAcc {
    t: i64,
    events: u64,
    processing_ms: f64,
    delivery_ms: f64,
}

fn histogram() -> Option<Histogram<u32>> {
    Histogram::new_with_bounds(1, MAX_MICROS, 2).ok()
}

impl TenantStats {
    fn new() -> Option<Self> {
        Some(TenantStats {
            completed: 0,
            messages: 0,
            degraded: 0,
            replayed: 0,
            ingested: 0,
            processing: histogram()?,
            delivery: histogram()?,
            processing_sum_ms: 0.0,
            delivery_sum_ms: 0.0,
            seconds: VecDeque::with_capacity(SERIES_SECS),
            cache: CacheFigures::default(),
            models: BTreeMap::new(),
        })
    }

    fn record_complete(&mut self, s: &Summary, now: DateTime<Utc>) {
        self.completed += 1;
        self.degraded += u64::from(s.degraded);
        self.replayed += u64::from(s.replay);
        let processing_ms = s.processing_time_ms.max(0.0);
        let delivery_ms = s
            .generated_at
            .map(|at| (now - at).num_microseconds().unwrap_or(0).max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        metrics::histogram!("leadbus_gateway_delivery_seconds").record(delivery_ms / 1000.0);
        self.processing.saturating_record(micros(processing_ms));
        self.delivery.saturating_record(micros(delivery_ms));
        self.processing_sum_ms += processing_ms;
        self.delivery_sum_ms += delivery_ms;

        let t = now.timestamp();
        match self.seconds.back_mut() {
            Some(last) if last.t == t => {
                last.events += 1;
                last.processing_ms += processing_ms;
                last.delivery_ms += delivery_ms;
            }
            _ => {
                if self.seconds.len() == SERIES_SECS {
                    self.seconds.pop_front();
                }
                self.seconds.push_back(SecondAcc {
                    t,
                    events: 1,
                    processing_ms,
                    delivery_ms,
                });
            }
        }

        for source in s.cache.values() {
            self.cache.lookups += 1;
            match source.as_str() {
                "l1" => self.cache.l1 += 1,
                "l2" => self.cache.l2 += 1,
                "computed" => self.cache.computed += 1,
                _ => self.cache.fallback += 1,
            }
        }
        for (part, versioned) in [
            ("lead_score", &s.lead_score),
            ("churn", &s.churn),
            ("property_match", &s.matches),
        ] {
            if let Some(v) = versioned.as_ref().and_then(|v| v.model_version.as_ref())
                && self.models.get(part) != Some(v)
            {
                self.models.insert(part.to_owned(), v.clone());
            }
        }
    }

    fn snapshot(&self, now: DateTime<Utc>) -> TenantSnapshot {
        let now_s = now.timestamp();
        // Whole seconds only: the current one is still filling.
        let recent: u64 = self
            .seconds
            .iter()
            .filter(|s| s.t < now_s && s.t >= now_s - RATE_WINDOW_SECS)
            .map(|s| s.events)
            .sum();
        let mut cache = self.cache.clone();
        let rate = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
        cache.l1_hit_rate = rate(cache.l1, cache.lookups);
        cache.l2_hit_rate = rate(cache.l2, cache.lookups.saturating_sub(cache.l1));
        cache.hit_rate = rate(cache.l1 + cache.l2, cache.lookups);
        TenantSnapshot {
            events_completed: self.completed,
            intel_messages: self.messages,
            degraded: self.degraded,
            replayed: self.replayed,
            ingested: self.ingested,
            processing_ms: latency(&self.processing, self.processing_sum_ms),
            delivery_ms: latency(&self.delivery, self.delivery_sum_ms),
            events_per_second: recent as f64 / RATE_WINDOW_SECS as f64,
            series: self
                .seconds
                .iter()
                .map(|s| Second {
                    t: s.t,
                    events: s.events,
                    processing_ms: s.processing_ms / s.events.max(1) as f64,
                    delivery_ms: s.delivery_ms / s.events.max(1) as f64,
                })
                .collect(),
            cache,
            models: self.models.clone(),
        }
    }
}

fn micros(ms: f64) -> u64 {
    ((ms * 1000.0) as u64).clamp(1, MAX_MICROS)
}

fn latency(h: &Histogram<u32>, sum_ms: f64) -> Latency {
    let count = h.len();
    if count == 0 {
        return Latency::default();
    }
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Latency {
        count,
        avg: sum_ms / count as f64,
        p50: ms(0.50),
        p95: ms(0.95),
        p99: ms(0.99),
        max: h.max() as f64 / 1000.0,
    }
}

/// Every tenant's figures.
#[derive(Debug, Default)]
pub struct Stats {
    tenants: Mutex<HashMap<String, TenantStats>>,
    limit_warned: AtomicBool,
}

impl Stats {
    fn with_tenant(&self, tenant: &str, f: impl FnOnce(&mut TenantStats)) {
        let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(stats) = tenants.get_mut(tenant) {
            f(stats);
            return;
        }
        if tenants.len() >= MAX_TENANTS {
            if !self.limit_warned.swap(true, Ordering::Relaxed) {
                warn!(
                    limit = MAX_TENANTS,
                    %tenant,
                    "tenant limit of the gateway's figures reached; new tenants are not measured"
                );
            }
            return;
        }
        if let Some(mut stats) = TenantStats::new() {
            f(&mut stats);
            tenants.insert(tenant.to_owned(), stats);
        }
    }

    /// Counts one intelligence message of `tenant`; `complete` carries the summary of an
    /// `intelligence_complete`.
    pub fn record(&self, tenant: &str, complete: Option<&Summary>) {
        let now = Utc::now();
        self.with_tenant(tenant, |t| {
            t.messages += 1;
            if let Some(summary) = complete {
                t.record_complete(summary, now);
            }
        });
    }

    /// Counts one event taken in over HTTP.
    pub fn ingested(&self, tenant: &str) {
        self.with_tenant(tenant, |t| t.ingested += 1);
    }

    /// The figures of `tenant` now (zeros when it has none yet).
    pub fn snapshot(&self, tenant: &str) -> TenantSnapshot {
        let tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        tenants
            .get(tenant)
            .map(|t| t.snapshot(Utc::now()))
            .unwrap_or_default()
    }
}
