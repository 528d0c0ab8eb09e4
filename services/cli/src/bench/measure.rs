//! Matching results to sends. Every event a bench run publishes has the id
//! `{run}.{phase}.{index}`, so a receipt finds its phase and the moment the event was offered
//! without any shared map; each phase keeps a latency histogram and where each model's output
//! came from (the `cache` map of the intelligence).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use serde::Serialize;

/// Longest latency the histograms hold, in microseconds (one hour).
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Where one model's outputs came from, counted over a phase.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct CacheCounts {
    /// From the in-process cache.
    pub(crate) l1: u64,
    /// From Redis.
    pub(crate) l2: u64,
    /// The model ran.
    pub(crate) computed: u64,
    /// A fallback stood in.
    pub(crate) fallback: u64,
}

impl CacheCounts {
    /// All outputs counted.
    pub(crate) fn total(&self) -> u64 {
        self.l1 + self.l2 + self.computed + self.fallback
    }

    /// Share served from either cache level, 0..1; `None` without outputs.
    pub(crate) fn hit_rate(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| (self.l1 + self.l2) as f64 / total as f64)
    }

    fn add(&mut self, other: &CacheCounts) {
        self.l1 += other.l1;
        self.l2 += other.l2;
        self.computed += other.computed;
        self.fallback += other.fallback;
    }
}

#[derive(Debug)]
struct Inner {
    latency_us: Histogram<u64>,
    /// The inference service's own time per event (`processing_time_ms`).
    processing_us: Histogram<u64>,
    /// From the results being stored (`generated_at`) to their receipt by the client: the
    /// intelligence's way through LEAD_INTEL, the gateway's feed and the WebSocket.
    delivery_us: Histogram<u64>,
    /// From the scheduled publish to the stream's ack: the event's way into LEAD_EVENTS.
    ingest_us: Histogram<u64>,
    cache: BTreeMap<String, CacheCounts>,
    last_receipt: Option<Instant>,
}

/// One batch of events offered together and measured together.
#[derive(Debug)]
pub(crate) struct Phase {
    id: u32,
    run: Arc<str>,
    /// What the report calls it.
    pub(crate) label: String,
    epoch: Instant,
    /// The wall clock at `epoch`, to compare with the `generated_at` stamps of results.
    epoch_wall: DateTime<Utc>,
    /// Nanoseconds after `epoch` at which each event was offered, plus one; 0 = not yet.
    offered_at: Vec<AtomicU64>,
    received_flag: Vec<AtomicBool>,
    sent: AtomicU64,
    failed: AtomicU64,
    received: AtomicU64,
    duplicates: AtomicU64,
    degraded: AtomicU64,
    first_offer: Mutex<Option<Instant>>,
    inner: Mutex<Inner>,
}

impl Phase {
    /// The event id of the `index`th event.
    pub(crate) fn event_id(&self, index: usize) -> String {
        format!("{}.{}.{index}", self.run, self.id)
    }

    /// Room for this many events.
    pub(crate) fn capacity(&self) -> usize {
        self.offered_at.len()
    }

    /// Notes that event `index` was offered at `at` (its scheduled time in an open loop).
    pub(crate) fn offered(&self, index: usize, at: Instant) {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos() as u64 + 1;
        if let Some(slot) = self.offered_at.get(index) {
            slot.store(nanos, Ordering::Relaxed);
        }
        let mut first = self
            .first_offer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if first.is_none_or(|f| at < f) {
            *first = Some(at);
        }
    }

    /// Notes that the stream acknowledged event `index` at `at`.
    pub(crate) fn stored(&self, index: usize, at: Instant) {
        let Some(nanos) = self
            .offered_at
            .get(index)
            .map(|o| o.load(Ordering::Relaxed))
        else {
            return;
        };
        if nanos == 0 {
            return;
        }
        let offered = self.epoch + Duration::from_nanos(nanos - 1);
        let us = at.saturating_duration_since(offered).as_micros() as u64;
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = inner.ingest_us.record(us.clamp(1, MAX_LATENCY_US));
    }

    /// Counts a publish the stream accepted, or one it refused.
    pub(crate) fn publish_result(&self, ok: bool) {
        if ok {
            self.sent.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events the stream accepted so far.
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Results received so far.
    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    fn record(&self, index: usize, receipt: &Receipt<'_>, now: Instant) {
        let (Some(offered), Some(flag)) =
            (self.offered_at.get(index), self.received_flag.get(index))
        else {
            return;
        };
        if flag.swap(true, Ordering::Relaxed) {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let nanos = offered.load(Ordering::Relaxed);
        if nanos == 0 {
            return;
        }
        let offered = self.epoch + Duration::from_nanos(nanos - 1);
        let us = now.saturating_duration_since(offered).as_micros() as u64;
        self.received.fetch_add(1, Ordering::Relaxed);
        if receipt.degraded {
            self.degraded.fetch_add(1, Ordering::Relaxed);
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        // Clamped into the histogram's range, so recording cannot fail.
        let _ = inner.latency_us.record(us.clamp(1, MAX_LATENCY_US));
        let processing = (receipt.processing_time_ms.max(0.0) * 1000.0) as u64;
        let _ = inner
            .processing_us
            .record(processing.clamp(1, MAX_LATENCY_US));
        if let Some(generated) = receipt.generated_at {
            // Both clocks are this machine's: the wall time of the receipt, less the stamp.
            let receipt_wall = self.epoch_wall
                + chrono::Duration::from_std(now.saturating_duration_since(self.epoch))
                    .unwrap_or_default();
            let delivery = (receipt_wall - generated).num_microseconds().unwrap_or(0);
            let _ = inner
                .delivery_us
                .record((delivery.max(1) as u64).min(MAX_LATENCY_US));
        }
        for (model, source) in &receipt.cache {
            let counts = inner.cache.entry((*model).to_owned()).or_default();
            match *source {
                "l1" => counts.l1 += 1,
                "l2" => counts.l2 += 1,
                "computed" => counts.computed += 1,
                _ => counts.fallback += 1,
            }
        }
        inner.last_receipt = Some(now);
    }

    /// What the phase measured so far.
    pub(crate) fn summary(&self) -> PhaseSummary {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let h = &inner.latency_us;
        let ms = |us: u64| us as f64 / 1000.0;
        let has = !h.is_empty();
        let q = |quantile: f64| has.then(|| ms(h.value_at_quantile(quantile)));
        let first_offer = *self
            .first_offer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let received = self.received();
        let span = match (first_offer, inner.last_receipt) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        let mut all = CacheCounts::default();
        for counts in inner.cache.values() {
            all.add(counts);
        }
        PhaseSummary {
            label: self.label.clone(),
            offered_rate: None,
            sent: self.sent(),
            publish_failures: self.failed.load(Ordering::Relaxed),
            received,
            lost: self.sent().saturating_sub(received),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            degraded: self.degraded.load(Ordering::Relaxed),
            span_s: span,
            throughput: if span > 0.0 {
                received as f64 / span
            } else {
                0.0
            },
            p50_ms: q(0.50),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            max_ms: has.then(|| ms(h.max())),
            curve: if has { curve(h) } else { Vec::new() },
            processing_p50_ms: has.then(|| ms(inner.processing_us.value_at_quantile(0.5))),
            processing_p99_ms: has.then(|| ms(inner.processing_us.value_at_quantile(0.99))),
            ingest_p50_ms: (!inner.ingest_us.is_empty())
                .then(|| ms(inner.ingest_us.value_at_quantile(0.5))),
            ingest_p99_ms: (!inner.ingest_us.is_empty())
                .then(|| ms(inner.ingest_us.value_at_quantile(0.99))),
            delivery_p50_ms: (!inner.delivery_us.is_empty())
                .then(|| ms(inner.delivery_us.value_at_quantile(0.5))),
            delivery_p99_ms: (!inner.delivery_us.is_empty())
                .then(|| ms(inner.delivery_us.value_at_quantile(0.99))),
            cache: inner.cache.clone(),
            hit_rate: all.hit_rate(),
            max_send_lag_ms: None,
        }
    }
}

/// The latency at percentiles spread evenly over the "nines" (0, 90, 99, 99.9...) up to
/// 99.999, then the maximum: (percentile, ms), for the plot and the JSON.
fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = (0..=50)
        .map(|k| {
            let p = 100.0 * (1.0 - 10f64.powf(-f64::from(k) / 10.0));
            (p, h.value_at_percentile(p) as f64 / 1000.0)
        })
        .collect();
    points.push((100.0, h.max() as f64 / 1000.0));
    points
}

/// What one phase measured; also its JSON form.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PhaseSummary {
    /// Name in the table.
    pub(crate) label: String,
    /// Events per second offered, for an open-loop phase.
    pub(crate) offered_rate: Option<f64>,
    /// Events the stream accepted.
    pub(crate) sent: u64,
    /// Publishes refused or timed out.
    pub(crate) publish_failures: u64,
    /// `intelligence_complete` received over the WebSocket.
    pub(crate) received: u64,
    /// Accepted events without a result at the end of the phase.
    pub(crate) lost: u64,
    /// Results received twice.
    pub(crate) duplicates: u64,
    /// Results marked degraded.
    pub(crate) degraded: u64,
    /// Seconds from the first offer to the last receipt.
    pub(crate) span_s: f64,
    /// Results per second over that span.
    pub(crate) throughput: f64,
    /// Latency percentiles, publish (scheduled) to WebSocket receipt.
    pub(crate) p50_ms: Option<f64>,
    /// 95th percentile.
    pub(crate) p95_ms: Option<f64>,
    /// 99th percentile.
    pub(crate) p99_ms: Option<f64>,
    /// Largest.
    pub(crate) max_ms: Option<f64>,
    /// Median of the inference service's own time per event (receipt to results stored).
    pub(crate) processing_p50_ms: Option<f64>,
    /// Its 99th percentile.
    pub(crate) processing_p99_ms: Option<f64>,
    /// Median time from the scheduled publish to the stream's ack.
    pub(crate) ingest_p50_ms: Option<f64>,
    /// Its 99th percentile.
    pub(crate) ingest_p99_ms: Option<f64>,
    /// Median time from the results being stored to their receipt by the client.
    pub(crate) delivery_p50_ms: Option<f64>,
    /// Its 99th percentile.
    pub(crate) delivery_p99_ms: Option<f64>,
    /// (percentile, ms) points of the latency distribution.
    pub(crate) curve: Vec<(f64, f64)>,
    /// Per model: where the outputs came from.
    pub(crate) cache: BTreeMap<String, CacheCounts>,
    /// Share of all model outputs served from L1 or L2.
    pub(crate) hit_rate: Option<f64>,
    /// Longest the sender ran behind its schedule (open loop only).
    pub(crate) max_send_lag_ms: Option<f64>,
}

/// The fields of a WebSocket message the bench reads.
#[derive(Debug, serde::Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    intel_type: Option<&'a str>,
    #[serde(borrow)]
    data: Option<Receipt<'a>>,
}

#[derive(Debug, serde::Deserialize)]
struct Receipt<'a> {
    #[serde(borrow)]
    event_id: &'a str,
    #[serde(default, borrow)]
    cache: HashMap<&'a str, &'a str>,
    #[serde(default)]
    degraded: bool,
    #[serde(default)]
    processing_time_ms: f64,
    #[serde(default)]
    generated_at: Option<DateTime<Utc>>,
}

/// Every phase of a run, by id.
#[derive(Debug)]
pub(crate) struct Registry {
    run: Arc<str>,
    epoch: Instant,
    epoch_wall: DateTime<Utc>,
    next: AtomicU32,
    phases: RwLock<HashMap<u32, Arc<Phase>>>,
    /// Intelligence whose event id is not one of this run's.
    pub(crate) foreign: AtomicU64,
}

impl Registry {
    /// A registry whose event ids start with `run`.
    pub(crate) fn new(run: &str) -> Self {
        Registry {
            run: run.into(),
            epoch: Instant::now(),
            epoch_wall: Utc::now(),
            next: AtomicU32::new(1),
            phases: RwLock::default(),
            foreign: AtomicU64::new(0),
        }
    }

    /// A new phase with room for `capacity` events.
    pub(crate) fn phase(&self, label: &str, capacity: usize) -> anyhow::Result<Arc<Phase>> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let phase = Arc::new(Phase {
            id,
            run: Arc::clone(&self.run),
            label: label.to_owned(),
            epoch: self.epoch,
            epoch_wall: self.epoch_wall,
            offered_at: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            received_flag: (0..capacity).map(|_| AtomicBool::new(false)).collect(),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            degraded: AtomicU64::new(0),
            first_offer: Mutex::new(None),
            inner: Mutex::new(Inner {
                latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?,
                processing_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?,
                delivery_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?,
                ingest_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?,
                cache: BTreeMap::new(),
                last_receipt: None,
            }),
        });
        self.phases
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::clone(&phase));
        Ok(phase)
    }

    /// Records one WebSocket text message; anything but an `intelligence_complete` of this
    /// run is ignored.
    pub(crate) fn record(&self, text: &str, now: Instant) {
        let Ok(env) = serde_json::from_str::<Envelope<'_>>(text) else {
            return;
        };
        if env.kind != "intel" || env.intel_type != Some("intelligence_complete") {
            return;
        }
        let Some(receipt) = env.data else { return };
        let Some((phase, index)) = self.parse_id(receipt.event_id) else {
            self.foreign.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let phase = self
            .phases
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&phase)
            .cloned();
        match phase {
            Some(p) => p.record(index, &receipt, now),
            None => {
                self.foreign.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn parse_id(&self, id: &str) -> Option<(u32, usize)> {
        let rest = id.strip_prefix(&*self.run)?.strip_prefix('.')?;
        let (phase, index) = rest.split_once('.')?;
        Some((phase.parse().ok()?, index.parse().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_finds_its_phase_and_counts_its_cache_sources() {
        let registry = Registry::new("rtest");
        let phase = registry.phase("steady", 4).unwrap();
        let t0 = Instant::now();
        phase.offered(2, t0);
        phase.publish_result(true);
        let id = phase.event_id(2);
        let msg = format!(
            r#"{{"type":"intel","seq":9,"intel_type":"intelligence_complete","lead_id":"l","data":{{"event_id":"{id}","cache":{{"lead_score":"l1","churn":"computed"}},"degraded":false}}}}"#
        );
        registry.record(&msg, t0 + Duration::from_millis(3));
        registry.record(&msg, t0 + Duration::from_millis(4));
        registry.record(r#"{"type":"intel","intel_type":"intelligence_complete","data":{"event_id":"other.1.1"}}"#, t0);
        registry.record("not json", t0);
        let s = phase.summary();
        assert_eq!((s.received, s.duplicates, s.lost), (1, 1, 0));
        assert_eq!(registry.foreign.load(Ordering::Relaxed), 1);
        assert_eq!(s.cache["lead_score"].l1, 1);
        assert_eq!(s.cache["churn"].computed, 1);
        assert_eq!(s.hit_rate, Some(0.5));
        let p50 = s.p50_ms.unwrap();
        assert!((2.9..3.1).contains(&p50), "{p50}");
    }
}
