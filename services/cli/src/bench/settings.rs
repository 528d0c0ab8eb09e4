//! Sizes and rates of a bench run, from the command line, checked before anything starts.

use std::path::PathBuf;

use anyhow::ensure;
use serde::Serialize;

/// A scenario of `leadbus bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Scenario {
    /// Mixed events at a fixed rate.
    Steady,
    /// The highest rate with p99 under the bound.
    Max,
    /// Critical events over a low-priority backlog.
    Priority,
    /// A quiet tenant while another floods.
    Noisy,
    /// Re-scoring unchanged leads.
    Cache,
}

impl Scenario {
    /// All of them, in the order they run.
    pub(crate) const ALL: [Scenario; 5] = [
        Scenario::Steady,
        Scenario::Max,
        Scenario::Priority,
        Scenario::Noisy,
        Scenario::Cache,
    ];
}

/// Arguments of `leadbus bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Scenarios to run, comma separated; all when not given.
    #[arg(long, value_delimiter = ',')]
    pub(crate) scenario: Vec<Scenario>,
    /// Use this nats-server (JetStream enabled) instead of starting one.
    #[arg(long)]
    pub(crate) nats_url: Option<String>,
    /// Use this redis-server instead of starting one.
    #[arg(long)]
    pub(crate) redis_url: Option<String>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Draw the latency percentile curves of each scenario into this PNG.
    #[arg(long)]
    pub(crate) plot: Option<PathBuf>,
    /// Small sizes everywhere (seconds, not minutes): a smoke run. Overrides the flags below.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Skip the raw JetStream measurement.
    #[arg(long)]
    pub(crate) no_raw: bool,
    #[command(flatten)]
    pub(crate) settings: Settings,
}

/// Sizes and rates.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub(crate) struct Settings {
    /// Set by `--quick`: smoke sizes, not to be judged against the targets.
    #[arg(skip)]
    pub(crate) quick: bool,
    /// steady: events per second.
    #[arg(long, default_value_t = 5000.0)]
    pub(crate) rate: f64,
    /// steady: seconds.
    #[arg(long = "duration", default_value_t = 30.0)]
    pub(crate) duration_secs: f64,
    /// Leads per scenario (spread over the tenants).
    #[arg(long, default_value_t = 1000)]
    pub(crate) leads: usize,
    /// Tenants per scenario.
    #[arg(long, default_value_t = 10)]
    pub(crate) tenants: usize,
    /// max: first rate tried, events per second.
    #[arg(long, default_value_t = 2000.0)]
    pub(crate) max_start: f64,
    /// max: factor between rates while every step holds.
    #[arg(long, default_value_t = 1.5)]
    pub(crate) max_factor: f64,
    /// max: highest rate tried.
    #[arg(long, default_value_t = 60000.0)]
    pub(crate) max_limit: f64,
    /// max: most steps.
    #[arg(long, default_value_t = 10)]
    pub(crate) max_steps: usize,
    /// max: seconds per step.
    #[arg(long = "step-secs", default_value_t = 10.0)]
    pub(crate) step_secs: f64,
    /// max: the p99 bound, milliseconds.
    #[arg(long, default_value_t = 50.0)]
    pub(crate) max_p99_ms: f64,
    /// priority: low-priority events queued first.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) backlog: usize,
    /// priority: critical events per second.
    #[arg(long, default_value_t = 100.0)]
    pub(crate) critical_rate: f64,
    /// priority: seconds of critical events.
    #[arg(long = "critical-secs", default_value_t = 20.0)]
    pub(crate) critical_secs: f64,
    /// noisy: events the noisy tenant floods.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) flood: usize,
    /// noisy: the quiet tenant's events per second.
    #[arg(long, default_value_t = 50.0)]
    pub(crate) quiet_rate: f64,
    /// noisy: seconds of the quiet tenant's events, alone and again during the flood.
    #[arg(long = "quiet-secs", default_value_t = 20.0)]
    pub(crate) quiet_secs: f64,
    /// cache: re-score events per second.
    #[arg(long, default_value_t = 2000.0)]
    pub(crate) cache_rate: f64,
    /// cache: seconds of re-scoring.
    #[arg(long = "cache-secs", default_value_t = 10.0)]
    pub(crate) cache_secs: f64,
    /// Messages of the raw JetStream measurement.
    #[arg(long, default_value_t = 200_000)]
    pub(crate) raw_messages: u64,
}

/// Most events one phase may hold (its bookkeeping is about 9 bytes an event).
const MAX_EVENTS: f64 = 20_000_000.0;

impl Settings {
    /// Sizes for a smoke run.
    pub(crate) fn quick(mut self) -> Self {
        self.quick = true;
        self.rate = self.rate.min(500.0);
        self.duration_secs = 2.0;
        self.leads = 50;
        self.tenants = 2;
        self.max_start = 200.0;
        self.max_factor = 2.0;
        self.max_limit = 800.0;
        self.max_steps = 3;
        self.step_secs = 1.0;
        self.backlog = 500;
        self.critical_secs = 1.0;
        self.flood = 500;
        self.quiet_secs = 1.0;
        self.cache_rate = 200.0;
        self.cache_secs = 1.0;
        self.raw_messages = 2000;
        self
    }

    /// Refuses values that cannot make a run (and would otherwise panic in timer arithmetic).
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        let rates = [
            ("rate", self.rate),
            ("max-start", self.max_start),
            ("max-limit", self.max_limit),
            ("critical-rate", self.critical_rate),
            ("quiet-rate", self.quiet_rate),
            ("cache-rate", self.cache_rate),
            ("max-p99-ms", self.max_p99_ms),
        ];
        for (name, v) in rates {
            ensure!(
                v.is_finite() && v > 0.0,
                "--{name} must be a positive number"
            );
        }
        ensure!(
            self.max_factor.is_finite() && self.max_factor > 1.0,
            "--max-factor must be above 1"
        );
        let spans = [
            ("rate × duration", self.rate, self.duration_secs),
            ("max-limit × step-secs", self.max_limit, self.step_secs),
            (
                "critical-rate × critical-secs",
                self.critical_rate,
                self.critical_secs,
            ),
            ("quiet-rate × quiet-secs", self.quiet_rate, self.quiet_secs),
            ("cache-rate × cache-secs", self.cache_rate, self.cache_secs),
        ];
        for (name, rate, secs) in spans {
            ensure!(
                secs.is_finite() && secs > 0.0,
                "durations must be positive numbers"
            );
            ensure!(
                rate * secs <= MAX_EVENTS,
                "{name} is over {MAX_EVENTS} events"
            );
        }
        ensure!(
            self.tenants >= 1 && self.tenants <= 100,
            "--tenants must be 1 to 100"
        );
        ensure!(
            self.leads >= 1 && self.leads <= 10_000_000,
            "--leads must be 1 to 10,000,000"
        );
        ensure!(
            self.backlog as f64 <= MAX_EVENTS && self.flood as f64 <= MAX_EVENTS,
            "--backlog and --flood must be at most {MAX_EVENTS}"
        );
        ensure!(self.max_steps >= 1, "--max-steps must be at least 1");
        Ok(())
    }
}
