//! `leadbus publish`: one lead event from flags, validated before it reaches NATS.

use anyhow::Context;
use leadbus_shared::client::Producer;
use leadbus_shared::event::EventData;
use leadbus_shared::{Config, EventType, LeadEvent, LeadId, Priority, TenantId};

/// Arguments of `leadbus publish`.
#[derive(Debug, clap::Args)]
pub(crate) struct PublishArgs {
    /// Tenant of the lead.
    #[arg(long)]
    tenant: TenantId,
    /// The lead.
    #[arg(long)]
    lead: LeadId,
    /// Event type (lead_created, interaction_recorded, property_viewed, ...).
    #[arg(long = "type", default_value = "lead_created")]
    event_type: EventType,
    /// Priority: critical, high, medium, low.
    #[arg(long, default_value = "medium")]
    priority: Priority,
    /// The event's `data` object as JSON, e.g.
    /// '{"source":"reference","property_preferences":{"bedrooms":3,"budget_max":650000}}'.
    #[arg(long, default_value = "{}")]
    data: String,
    /// Event id; a UUIDv7 when not given.
    #[arg(long)]
    event_id: Option<String>,
}

/// Publishes and prints the event id and stream sequence.
pub(crate) async fn run(config: &Config, args: PublishArgs) -> anyhow::Result<()> {
    let data: EventData =
        serde_json::from_str(&args.data).context("--data is not a valid data object")?;
    let mut event = LeadEvent::new(args.event_type, args.tenant, args.lead);
    event.priority = args.priority;
    event.data = data;
    if let Some(id) = args.event_id {
        event.event_id = id;
    }
    let nats = async_nats::connect(&config.nats_url)
        .await
        .with_context(|| format!("cannot connect to NATS at {}", config.nats_url))?;
    let stored = Producer::new(async_nats::jetstream::new(nats))
        .with_max_payload(config.max_payload_bytes)
        .publish(&event)
        .await?;
    println!(
        "{{\"event_id\":\"{}\",\"stream_sequence\":{},\"duplicate\":{}}}",
        event.event_id, stored.sequence, stored.duplicate
    );
    Ok(())
}
