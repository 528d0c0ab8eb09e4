//! The durable pull consumers, one per priority, created or checked at start-up.

use std::time::Duration;

use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::stream::Stream;
use leadbus_shared::subjects::priority_filter;
use leadbus_shared::{Config, Priority};
use serde::Deserialize;
use tracing::{info, warn};

const TEMPLATE: &str = include_str!("../../../../nats/consumers/inference.json");

#[derive(Debug, Deserialize)]
struct Template {
    durable_name_prefix: String,
}

/// The durable name of a priority's consumer, from `nats/consumers/inference.json`.
pub fn durable_name(priority: Priority) -> String {
    let prefix = serde_json::from_str::<Template>(TEMPLATE)
        .map(|t| t.durable_name_prefix)
        .unwrap_or_else(|_| "inference".into());
    format!("{prefix}-{priority}")
}

/// The consumer configuration of one priority.
pub fn consumer_config(priority: Priority, config: &Config) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(durable_name(priority)),
        description: Some(format!("leadbus inference, {priority} priority")),
        filter_subject: priority_filter(priority),
        ack_policy: AckPolicy::Explicit,
        deliver_policy: DeliverPolicy::All,
        ack_wait: Duration::from_secs(config.ack_wait_secs),
        // One more than ours: the service dead-letters at max_deliver; the server must not
        // silently stop delivering before it gets the chance.
        max_deliver: config.max_deliver + 1,
        max_ack_pending: config.max_ack_pending,
        ..Default::default()
    }
}

/// Gets or creates the consumer of `priority`; warns when an existing one differs.
pub async fn ensure_consumer(
    stream: &Stream,
    priority: Priority,
    config: &Config,
) -> Result<PullConsumer, String> {
    let wanted = consumer_config(priority, config);
    let name = durable_name(priority);
    let mut consumer: PullConsumer = stream
        .get_or_create_consumer(&name, wanted.clone())
        .await
        .map_err(|e| format!("consumer {name}: {e}"))?;
    if let Ok(info) = consumer.info().await {
        let c = &info.config;
        if c.filter_subject != wanted.filter_subject
            || c.ack_wait != wanted.ack_wait
            || c.max_deliver != wanted.max_deliver
            || c.max_ack_pending != wanted.max_ack_pending
        {
            match stream.create_consumer(wanted).await {
                Ok(updated) => {
                    info!(consumer = %name, "consumer settings updated");
                    consumer = updated;
                }
                Err(error) => {
                    warn!(consumer = %name, %error, "consumer differs from configuration and could not be updated")
                }
            }
        }
    }
    Ok(consumer)
}
