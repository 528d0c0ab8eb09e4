//! Settings of every leadbus part, from defaults, an optional TOML file and `LEADBUS_*`
//! environment variables, in that order of precedence (last wins).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Secret used when none is configured; fine for a laptop, never for production.
pub const DEV_JWT_SECRET: &str = "leadbus-dev-secret-change-me";

/// All settings. Each field is also `LEADBUS_<FIELD>` in the environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// NATS server URL.
    pub nats_url: String,
    /// Redis URL (the L2 cache).
    pub redis_url: String,
    /// Where the gateway listens.
    pub gateway_listen: SocketAddr,
    /// Where the inference service answers `/healthz`.
    pub inference_listen: SocketAddr,
    /// HS256 secret for client tokens.
    pub jwt_secret: String,
    /// Folder with the public datasets (`leads/`, `churn/`, `properties/`).
    pub data_dir: PathBuf,
    /// Folder with model artifacts; empty means the artifacts built into the binary.
    pub models_dir: Option<PathBuf>,
    /// Events processed at once by one inference service.
    pub max_concurrent_processing: usize,
    /// Longest time one event may take before it is given up and retried.
    pub processing_timeout_secs: u64,
    /// Redis (L2) cache entry lifetime.
    pub cache_ttl_secs: u64,
    /// In-process (L1) cache entry lifetime.
    pub l1_ttl_secs: u64,
    /// Entries the L1 cache holds at most.
    pub l1_capacity: u64,
    /// Lead profiles kept in process (with their bucket revision) in front of the profile
    /// bucket; 0 reads every profile from the bucket.
    pub profile_cache_entries: u64,
    /// Longest a Redis command may take before the cache is skipped for it.
    pub redis_timeout_ms: u64,
    /// Largest event payload accepted, in bytes.
    pub max_payload_bytes: usize,
    /// How long streams keep messages.
    pub stream_max_age_secs: u64,
    /// Largest size of each stream, in bytes; -1 for no limit but the age.
    pub stream_max_bytes: i64,
    /// Window in which a repeated `Nats-Msg-Id` is dropped by the stream.
    pub duplicate_window_secs: u64,
    /// Time a delivered event may stay unacknowledged before redelivery.
    pub ack_wait_secs: u64,
    /// Deliveries of one event before it is dead-lettered.
    pub max_deliver: i64,
    /// Messages each priority consumer may have delivered and unacknowledged.
    pub max_ack_pending: i64,
    /// Events one tenant may have delivered and unacknowledged per priority: the bound that
    /// keeps one tenant's backlog from holding up another tenant's events.
    pub tenant_max_ack_pending: i64,
    /// While a higher priority is busy, a lower one whose queue has stood for a second keeps
    /// its cap on work in flight divided by this: higher is kinder to the higher priority's
    /// latency and costlier in the backlog's throughput; 1 turns the yield off.
    pub backlog_yield_divisor: usize,
    /// Models switched off (`lead_score`, `churn`, `property_match`): their documented
    /// fallback is used and results are marked degraded. A kill switch for a bad model.
    pub disabled_models: Vec<String>,
    /// Where `leadbus run` keeps the data of servers it starts itself.
    pub state_dir: PathBuf,
    /// Messages the gateway queues per WebSocket before it closes a client as too slow.
    pub ws_send_queue: usize,
    /// Seconds between the gateway's WebSocket pings.
    pub ws_ping_secs: u64,
    /// Seconds of silence (not even a pong) after which a WebSocket is closed as dead.
    pub ws_idle_secs: u64,
    /// Seconds the gateway keeps answering (`/readyz` with 503) after a shutdown signal
    /// before it stops accepting connections, so load balancers see it leave.
    pub drain_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nats_url: "nats://127.0.0.1:4222".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            gateway_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            inference_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            jwt_secret: DEV_JWT_SECRET.into(),
            data_dir: PathBuf::from("../shared/data"),
            models_dir: None,
            max_concurrent_processing: 100,
            processing_timeout_secs: 30,
            cache_ttl_secs: 300,
            l1_ttl_secs: 30,
            l1_capacity: 100_000,
            profile_cache_entries: 20_000,
            redis_timeout_ms: 250,
            max_payload_bytes: crate::validate::DEFAULT_MAX_PAYLOAD,
            stream_max_age_secs: 7 * 24 * 3600,
            // No size reservation by default: the age bounds the streams, and a size limit is
            // reserved up front by nats-server, which refuses streams larger than its free disk.
            stream_max_bytes: -1,
            duplicate_window_secs: 120,
            ack_wait_secs: 30,
            max_deliver: 5,
            max_ack_pending: 1000,
            tenant_max_ack_pending: 64,
            backlog_yield_divisor: 4,
            disabled_models: Vec::new(),
            state_dir: PathBuf::from(".leadbus"),
            ws_send_queue: 1024,
            ws_ping_secs: 20,
            ws_idle_secs: 60,
            drain_secs: 2,
        }
    }
}

/// A configuration that could not be read or makes no sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be parsed.
    #[error("cannot read configuration: {0}")]
    Read(#[from] Box<figment::Error>),
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then `file` when given, then `LEADBUS_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            figment = figment.merge(Toml::file_exact(path));
        }
        // LEADBUS_CONFIG names the file; it is not a setting itself.
        // Only the settings' own names: other LEADBUS_* variables (LEADBUS_CONFIG names the
        // file, LEADBUS_TEST_* configure tests) are not settings.
        let known = Config::field_names();
        figment = figment.merge(
            Env::prefixed("LEADBUS_")
                .filter(move |key| known.iter().any(|k| key.as_str().eq_ignore_ascii_case(k))),
        );
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// The names of every setting.
    pub fn field_names() -> Vec<String> {
        match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Rejects values no deployment could want.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.max_concurrent_processing == 0 {
            return fail("max_concurrent_processing must be at least 1");
        }
        if self.backlog_yield_divisor == 0 {
            return fail("backlog_yield_divisor must be at least 1 (1 turns the yield off)");
        }
        if let Some(dir) = &self.models_dir
            && !dir.is_dir()
        {
            return Err(ConfigError::Invalid(format!(
                "models_dir {} is not a folder",
                dir.display()
            )));
        }
        if self.max_payload_bytes < 1024 {
            return fail("max_payload_bytes must be at least 1024");
        }
        if self.jwt_secret.len() < 16 {
            return fail("jwt_secret must be at least 16 bytes");
        }
        if self.max_deliver < 1 || self.max_ack_pending < 1 || self.tenant_max_ack_pending < 1 {
            return fail("max_deliver and max_ack_pending must be at least 1");
        }
        if self.duplicate_window_secs == 0 || self.ack_wait_secs == 0 {
            return fail("duplicate_window_secs and ack_wait_secs must be at least 1");
        }
        if let Some(bad) = self
            .disabled_models
            .iter()
            .find(|m| !["lead_score", "churn", "property_match"].contains(&m.as_str()))
        {
            return Err(ConfigError::Invalid(format!(
                "disabled_models names {bad:?}; known models are lead_score, churn, property_match"
            )));
        }
        if self.ws_send_queue == 0 || self.ws_ping_secs == 0 || self.ws_idle_secs == 0 {
            return fail("ws_send_queue, ws_ping_secs and ws_idle_secs must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_config_parses_and_overrides() {
        let dir = std::env::temp_dir().join(format!("leadbus-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("leadbus.toml");
        std::fs::write(
            &file,
            "nats_url = \"nats://10.0.0.1:4222\"\nmax_concurrent_processing = 7\n",
        )
        .unwrap();
        let c = Config::load(Some(&file)).unwrap();
        assert_eq!(c.max_concurrent_processing, 7);
        assert_eq!(c.nats_url, "nats://10.0.0.1:4222");
        assert_eq!(c.cache_ttl_secs, 300);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("leadbus-cfg2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("leadbus.toml");
        std::fs::write(&file, "nats_ulr = \"x\"\n").unwrap();
        assert!(Config::load(Some(&file)).is_err());
    }
}
