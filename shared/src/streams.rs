//! The three streams, defined in `nats/streams/*.json` and applied idempotently at start-up.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use tracing::info;

use crate::config::Config;

const DEFINITIONS: [(&str, &str); 3] = [
    (
        "lead_events.json",
        include_str!("../../nats/streams/lead_events.json"),
    ),
    (
        "lead_intel.json",
        include_str!("../../nats/streams/lead_intel.json"),
    ),
    (
        "lead_dlq.json",
        include_str!("../../nats/streams/lead_dlq.json"),
    ),
];

/// Setting up a stream failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamSetupError {
    /// A definition file does not parse.
    #[error("stream definition {file} is invalid: {source}")]
    Definition {
        /// The file under `nats/streams/`.
        file: &'static str,
        /// Why.
        source: serde_json::Error,
    },
    /// The server refused to create or update a stream.
    #[error("cannot create or update stream {name}: {source}")]
    Apply {
        /// The stream.
        name: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The stream configurations, with limits from `config`.
pub fn definitions(config: &Config) -> Result<Vec<stream::Config>, StreamSetupError> {
    DEFINITIONS
        .iter()
        .map(|(file, text)| {
            let mut def: stream::Config = serde_json::from_str(text)
                .map_err(|source| StreamSetupError::Definition { file, source })?;
            def.max_age = Duration::from_secs(config.stream_max_age_secs);
            def.max_bytes = config.stream_max_bytes;
            def.duplicate_window = Duration::from_secs(config.duplicate_window_secs);
            Ok(def)
        })
        .collect()
}

/// Creates each stream, or updates it when its settings differ. Safe to run on every start.
pub async fn ensure_streams(
    js: &jetstream::Context,
    config: &Config,
) -> Result<(), StreamSetupError> {
    for def in definitions(config)? {
        let name = def.name.clone();
        let apply = |e: Box<dyn std::error::Error + Send + Sync>| StreamSetupError::Apply {
            name: name.clone(),
            source: e,
        };
        match js.get_stream(&name).await {
            Ok(mut existing) => {
                let current = existing
                    .info()
                    .await
                    .map_err(|e| apply(Box::new(e)))?
                    .config
                    .clone();
                if differs(&current, &def) {
                    js.update_stream(&def)
                        .await
                        .map_err(|e| apply(Box::new(e)))?;
                    info!(stream = %name, "stream updated");
                }
            }
            Err(_) => {
                js.create_stream(def.clone())
                    .await
                    .map_err(|e| apply(Box::new(e)))?;
                info!(stream = %name, "stream created");
            }
        }
    }
    Ok(())
}

fn differs(current: &stream::Config, wanted: &stream::Config) -> bool {
    current.subjects != wanted.subjects
        || current.max_age != wanted.max_age
        || current.max_bytes != wanted.max_bytes
        || current.duplicate_window != wanted.duplicate_window
        || current.retention != wanted.retention
        || current.max_message_size != wanted.max_message_size
        || current.discard != wanted.discard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_parse_with_design_settings() {
        let defs = definitions(&Config::default()).unwrap();
        let names: Vec<_> = defs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["LEAD_EVENTS", "LEAD_INTEL", "LEAD_DLQ"]);
        for d in &defs {
            assert_eq!(d.retention, stream::RetentionPolicy::Limits);
            assert_eq!(d.storage, stream::StorageType::File);
            assert_eq!(d.duplicate_window, Duration::from_secs(120));
            assert_eq!(d.max_age, Duration::from_secs(7 * 24 * 3600));
        }
    }
}
