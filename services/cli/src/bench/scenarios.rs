//! The five scenarios of issue 4. Each opens WebSocket clients for its tenants, offers its
//! phases and returns what they measured.

use std::sync::Arc;
use std::time::Duration;

use leadbus_shared::Priority;
use serde::Serialize;

use super::events::{Population, rescore, simple};
use super::listen::{Listeners, listen};
use super::measure::{PhaseSummary, Registry};
use super::run_phase::{Driver, IDLE};
use super::settings::Settings;

/// What one scenario measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ScenarioResult {
    /// Scenario name.
    pub(crate) name: &'static str,
    /// Its phases, in order.
    pub(crate) phases: Vec<PhaseSummary>,
    /// Facts that explain the figures (backlog sizes, the rate found...).
    pub(crate) notes: Vec<String>,
    /// Highest rate that met the latency bound (max scenario only).
    pub(crate) max_sustained_rate: Option<f64>,
    /// Peak resident memory of each process during the scenario, KiB.
    pub(crate) peak_memory_kib: std::collections::BTreeMap<String, u64>,
    /// CPU time each process used per offered event, milliseconds.
    pub(crate) cpu_ms_per_event: std::collections::BTreeMap<String, f64>,
    /// Writes to each stream per offered event.
    pub(crate) jetstream_writes: std::collections::BTreeMap<String, Writes>,
}

/// What one event cost a stream.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Writes {
    /// Messages written per event.
    pub(crate) messages_per_event: f64,
    /// Growth of the stored bytes per event (less than written when limits remove old
    /// messages, as the profile bucket does: it keeps one entry per lead).
    pub(crate) stored_bytes_per_event: f64,
}

impl ScenarioResult {
    fn new(name: &'static str) -> Self {
        ScenarioResult {
            name,
            phases: Vec::new(),
            notes: Vec::new(),
            max_sustained_rate: None,
            peak_memory_kib: Default::default(),
            jetstream_writes: Default::default(),
            cpu_ms_per_event: Default::default(),
        }
    }
}

/// What the scenarios share.
#[derive(Debug)]
pub(crate) struct Scenarios {
    /// Offers and waits.
    pub(crate) driver: Driver,
    /// Matches results.
    pub(crate) registry: Arc<Registry>,
    /// Gateway address.
    pub(crate) gateway: std::net::SocketAddr,
    /// Token secret.
    pub(crate) secret: String,
    /// Run tag (prefix of lead and event ids).
    pub(crate) run: String,
    /// Sizes and rates.
    pub(crate) settings: Settings,
}

/// Says so when the gateway closed a bench client: its results are then missing.
fn note_closed(clients: &Listeners, result: &mut ScenarioResult) {
    let closed = clients.closed.load(std::sync::atomic::Ordering::Relaxed);
    if closed > 0 {
        result.notes.push(format!(
            "{closed} WebSocket client(s) closed by the gateway during the scenario (slow client?)"
        ));
    }
}

fn count(rate: f64, secs: f64) -> usize {
    (rate * secs).round().max(1.0) as usize
}

impl Scenarios {
    async fn listen(&self, pop: &Population) -> anyhow::Result<Listeners> {
        listen(
            self.gateway,
            &self.secret,
            pop.tenants(),
            Arc::clone(&self.registry),
        )
        .await
    }

    fn tenants(&self, prefix: &str) -> Vec<String> {
        (0..self.settings.tenants)
            .map(|n| format!("{prefix}{n:02}"))
            .collect()
    }

    fn population(&self, tag: &str, leads: usize) -> anyhow::Result<Population> {
        let tenants = self.tenants("t");
        let names: Vec<&str> = tenants.iter().map(String::as_str).collect();
        Population::new(&names, leads, &format!("{}-{tag}", self.run))
    }

    /// Creates every lead of `pop` once, as a burst, and waits for the results: tenants' lanes
    /// exist and profiles are known before a measured phase starts, as in a system that has
    /// been running. Reported as a phase of its own.
    async fn warm_up(&self, scenario: &str, pop: &Population) -> anyhow::Result<PhaseSummary> {
        let leads = pop.len();
        let phase = self
            .registry
            .phase(&format!("{scenario}: warm-up (leads created)"), leads)?;
        let p = pop.clone();
        Ok(self
            .driver
            .run(phase, leads, None, move |i| {
                let (tenant, lead) = p.lead(i);
                p.event(leadbus_shared::EventType::LeadCreated, tenant, lead, 0)
            })
            .await)
    }

    /// Mixed event types and priorities at a fixed rate.
    pub(crate) async fn steady(&self) -> anyhow::Result<ScenarioResult> {
        let s = &self.settings;
        let pop = self.population("s", s.leads)?;
        let clients = self.listen(&pop).await?;
        let mut result = ScenarioResult::new("steady");
        result.phases.push(self.warm_up("steady", &pop).await?);
        let n = count(s.rate, s.duration_secs);
        let label = format!("steady {:.0}/s", s.rate);
        let phase = self.registry.phase(&label, n)?;
        let summary = self
            .driver
            .run(phase, n, Some(s.rate), move |i| pop.mixed(i))
            .await;
        result.notes.push(format!(
            "{n} events over {} leads in {} tenants; types and priorities mixed",
            s.leads, s.tenants
        ));
        result.phases.push(summary);
        note_closed(&clients, &mut result);
        Ok(result)
    }

    /// Steps the rate up until the p99 bound breaks, then bisects between the last rate that
    /// held and the first that did not.
    pub(crate) async fn max(&self) -> anyhow::Result<ScenarioResult> {
        let s = &self.settings;
        let pop = self.population("m", s.leads)?;
        let clients = self.listen(&pop).await?;
        let mut result = ScenarioResult::new("max");
        result.phases.push(self.warm_up("max", &pop).await?);
        let (mut best, mut worst): (Option<f64>, Option<f64>) = (None, None);
        let mut rate = s.max_start;
        for _ in 0..s.max_steps {
            let n = count(rate, s.step_secs);
            let label = format!("max {rate:.0}/s");
            let phase = self.registry.phase(&label, n)?;
            let p = pop.clone();
            let summary = self
                .driver
                .run(phase, n, Some(rate), move |i| p.mixed(i))
                .await;
            let held = summary.lost == 0
                && summary.publish_failures == 0
                && summary.p99_ms.is_some_and(|p99| p99 < s.max_p99_ms);
            result.phases.push(summary);
            if held {
                best = Some(best.map_or(rate, |b: f64| b.max(rate)));
            } else {
                worst = Some(worst.map_or(rate, |w: f64| w.min(rate)));
            }
            // Start the next step on an empty queue.
            self.driver.drain(Duration::from_secs(120)).await;
            let next = match (best, worst) {
                (Some(b), None) => b * s.max_factor,
                (None, Some(w)) => w / 2.0,
                (Some(b), Some(w)) => (b + w) / 2.0,
                (None, None) => break,
            };
            let close = match (best, worst) {
                (Some(b), Some(w)) => (w - b) / w < 0.1,
                _ => false,
            };
            if close || next > s.max_limit || next < 50.0 {
                break;
            }
            rate = next;
        }
        result.max_sustained_rate = best;
        result.notes.push(match best {
            Some(b) => format!(
                "highest rate with p99 < {} ms and nothing lost: {b:.0} events/s (steps of {} s)",
                s.max_p99_ms, s.step_secs
            ),
            None => format!("no rate met p99 < {} ms", s.max_p99_ms),
        });
        note_closed(&clients, &mut result);
        Ok(result)
    }

    /// A low-priority backlog, then critical events at a fixed rate on top of it.
    pub(crate) async fn priority(&self) -> anyhow::Result<ScenarioResult> {
        let s = &self.settings;
        let pop = self.population("p", s.leads)?;
        let clients = self.listen(&pop).await?;
        let mut result = ScenarioResult::new("priority");

        let backlog_phase = self.registry.phase("priority: low backlog", s.backlog)?;
        let p = pop.clone();
        let backlog = self.driver.start(backlog_phase, s.backlog, None, move |i| {
            simple(&p, i, Priority::Low)
        });
        // Critical events start once the backlog is stored, so it is there in full.
        while !backlog.sender_done() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let before = self.driver.queued(Priority::Low).await.unwrap_or(0);

        let n = count(s.critical_rate, s.critical_secs);
        let label = format!("priority: critical {:.0}/s", s.critical_rate);
        let critical_phase = self.registry.phase(&label, n)?;
        let p = pop.clone();
        let critical = self
            .driver
            .start(critical_phase, n, Some(s.critical_rate), move |i| {
                simple(&p, i + 1_000_000, Priority::Critical)
            });
        while !critical.sender_done() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let after = self.driver.queued(Priority::Low).await.unwrap_or(0);
        result.phases.push(critical.finish(IDLE).await);
        result.phases.push(backlog.finish(IDLE).await);
        result.notes.push(format!(
            "low events queued: {before} when the critical events started, {after} when the last was sent"
        ));
        note_closed(&clients, &mut result);
        Ok(result)
    }

    /// A quiet tenant at a low rate, alone, then while another tenant floods the same priority.
    pub(crate) async fn noisy(&self) -> anyhow::Result<ScenarioResult> {
        let s = &self.settings;
        let quiet = Population::new(&["quiet"], 100, &format!("{}-q", self.run))?;
        let noisy = Population::new(&["noisy"], s.leads, &format!("{}-n", self.run))?;
        let quiet_client = self.listen(&quiet).await?;
        let noisy_client = self.listen(&noisy).await?;
        let mut result = ScenarioResult::new("noisy");
        let n = count(s.quiet_rate, s.quiet_secs);

        let label = format!("noisy: quiet {:.0}/s alone", s.quiet_rate);
        let alone = self.registry.phase(&label, n)?;
        let q = quiet.clone();
        let summary = self
            .driver
            .run(alone, n, Some(s.quiet_rate), move |i| {
                simple(&q, i, Priority::Medium)
            })
            .await;
        result.phases.push(summary);

        let flood_phase = self.registry.phase("noisy: flood", s.flood)?;
        let flood = self.driver.start(flood_phase, s.flood, None, move |i| {
            simple(&noisy, i, Priority::Medium)
        });
        let label = format!("noisy: quiet {:.0}/s in flood", s.quiet_rate);
        let with_flood = self.registry.phase(&label, n)?;
        let quiet_run = self
            .driver
            .start(with_flood, n, Some(s.quiet_rate), move |i| {
                simple(&quiet, i + 1_000_000, Priority::Medium)
            });
        let medium_queued = {
            tokio::time::sleep(Duration::from_secs_f64(s.quiet_secs.min(5.0) / 2.0)).await;
            self.driver.queued(Priority::Medium).await.unwrap_or(0)
        };
        result.phases.push(quiet_run.finish(IDLE).await);
        result.phases.push(flood.finish(IDLE).await);
        result.notes.push(format!(
            "{} flood events from tenant noisy; medium events queued shortly after the quiet tenant started: {medium_queued}",
            s.flood
        ));
        note_closed(&quiet_client, &mut result);
        note_closed(&noisy_client, &mut result);
        Ok(result)
    }

    /// Leads created once, then re-scored again and again with nothing changed.
    pub(crate) async fn cache(&self) -> anyhow::Result<ScenarioResult> {
        let s = &self.settings;
        let pop = self.population("c", s.leads)?;
        let clients = self.listen(&pop).await?;
        let mut result = ScenarioResult::new("cache");

        let leads = pop.len();
        let warm = self.registry.phase("cache: create leads", leads)?;
        let p = pop.clone();
        let summary = self
            .driver
            .run(warm, leads, None, move |i| {
                let (tenant, lead) = p.lead(i);
                p.event(leadbus_shared::EventType::LeadCreated, tenant, lead, 0)
            })
            .await;
        result.phases.push(summary);

        let n = count(s.cache_rate, s.cache_secs);
        let label = format!("cache: re-score {:.0}/s", s.cache_rate);
        let phase = self.registry.phase(&label, n)?;
        let summary = self
            .driver
            .run(phase, n, Some(s.cache_rate), move |i| {
                let (tenant, lead) = pop.lead(i);
                rescore(tenant, lead, i / leads)
            })
            .await;
        result.phases.push(summary);
        result.notes.push(format!(
            "{leads} leads created, then each re-scored about {} times with unchanged inputs",
            n / leads.max(1)
        ));
        note_closed(&clients, &mut result);
        Ok(result)
    }
}
