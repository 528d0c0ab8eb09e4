//! The durable consumers of the inference service: one pull consumer per tenant and
//! priority (a "lane"), and one headers-only discovery consumer that finds new tenants.
//! Definitions follow `nats/consumers/inference.json`.

use std::time::Duration;

use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::stream::Stream;
use leadbus_shared::{Config, Priority, TenantId};
use serde::Deserialize;
use tracing::{info, warn};

const TEMPLATE: &str = include_str!("../../../../nats/consumers/inference.json");

#[derive(Debug, Deserialize)]
struct Template {
    lane_prefix: String,
    discovery_name: String,
}

fn template() -> Template {
    serde_json::from_str(TEMPLATE).unwrap_or_else(|_| Template {
        lane_prefix: "inference-t".into(),
        discovery_name: "inference-discovery".into(),
    })
}

/// The durable name of a tenant's lane at one priority.
pub fn lane_name(tenant: &TenantId, priority: Priority) -> String {
    format!("{}-{tenant}-{priority}", template().lane_prefix)
}

/// The tenant and priority of a lane's durable name, if it is one.
pub fn parse_lane_name(name: &str) -> Option<(TenantId, Priority)> {
    let rest = name.strip_prefix(&format!("{}-", template().lane_prefix))?;
    let (tenant, priority) = rest.rsplit_once('-')?;
    Some((TenantId::new(tenant).ok()?, priority.parse().ok()?))
}

/// The discovery consumer's durable name.
pub fn discovery_name() -> String {
    template().discovery_name
}

/// The configuration of a lane; `start` is the first sequence it covers when created.
pub fn lane_config(
    tenant: &TenantId,
    priority: Priority,
    start: Option<u64>,
    config: &Config,
) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(lane_name(tenant, priority)),
        description: Some(format!(
            "leadbus inference, tenant {tenant}, {priority} priority"
        )),
        filter_subject: format!("leads.events.{tenant}.{priority}.*.*"),
        ack_policy: AckPolicy::Explicit,
        deliver_policy: match start {
            Some(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
            None => DeliverPolicy::All,
        },
        ack_wait: Duration::from_secs(config.ack_wait_secs),
        // One more than ours: the service dead-letters at max_deliver; the server must not
        // silently stop delivering before it gets the chance.
        max_deliver: config.max_deliver + 1,
        max_ack_pending: config.tenant_max_ack_pending,
        ..Default::default()
    }
}

/// Gets or creates a lane; re-applies the settings when an existing one differs.
pub async fn ensure_lane(
    stream: &Stream,
    tenant: &TenantId,
    priority: Priority,
    start: Option<u64>,
    config: &Config,
) -> Result<PullConsumer, String> {
    let wanted = lane_config(tenant, priority, start, config);
    let name = lane_name(tenant, priority);
    let mut consumer: PullConsumer = stream
        .get_or_create_consumer(&name, wanted.clone())
        .await
        .map_err(|e| format!("consumer {name}: {e}"))?;
    if let Ok(info) = consumer.info().await {
        let c = &info.config;
        if c.ack_wait != wanted.ack_wait
            || c.max_deliver != wanted.max_deliver
            || c.max_ack_pending != wanted.max_ack_pending
        {
            let update = consumer::pull::Config {
                deliver_policy: c.deliver_policy,
                ..wanted
            };
            match stream.create_consumer(update).await {
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

/// Gets or creates the discovery consumer: every event's headers, no acks, durable so a
/// restarted service continues where it stopped and misses no new tenant.
pub async fn ensure_discovery(stream: &Stream) -> Result<PullConsumer, String> {
    let name = discovery_name();
    let config = consumer::pull::Config {
        durable_name: Some(name.clone()),
        description: Some("leadbus inference: finds tenants for their lanes".into()),
        filter_subject: "leads.events.>".into(),
        ack_policy: AckPolicy::None,
        deliver_policy: DeliverPolicy::All,
        headers_only: true,
        ..Default::default()
    };
    stream
        .get_or_create_consumer(&name, config)
        .await
        .map_err(|e| format!("consumer {name}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_names_round_trip_with_dashes_in_the_tenant() {
        let t = TenantId::new("big-co_1").unwrap();
        let name = lane_name(&t, Priority::High);
        assert_eq!(name, "inference-t-big-co_1-high");
        assert_eq!(parse_lane_name(&name), Some((t, Priority::High)));
        assert_eq!(parse_lane_name("inference-discovery"), None);
    }
}
