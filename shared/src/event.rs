//! The lead event envelope producers publish to LEAD_EVENTS (DESIGN.md section 3).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::{LeadId, TenantId};

/// Version of the message shapes this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// What happened to a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A new lead entered the CRM.
    LeadCreated,
    /// Contact fields or preferences changed.
    LeadUpdated,
    /// The lead did something: a visit, an email open, a call.
    InteractionRecorded,
    /// The lead looked at a listing.
    PropertyViewed,
    /// Someone asked for a fresh score.
    ScoreRefreshRequested,
    /// Someone asked whether the lead is going cold.
    ChurnCheckRequested,
    /// A probe that runs no model; it proves the path is alive.
    SystemHealthCheck,
}

impl EventType {
    /// Every event type, in the order of DESIGN.md.
    pub const ALL: [EventType; 7] = [
        EventType::LeadCreated,
        EventType::LeadUpdated,
        EventType::InteractionRecorded,
        EventType::PropertyViewed,
        EventType::ScoreRefreshRequested,
        EventType::ChurnCheckRequested,
        EventType::SystemHealthCheck,
    ];

    /// The subject token of this type.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::LeadCreated => "lead_created",
            EventType::LeadUpdated => "lead_updated",
            EventType::InteractionRecorded => "interaction_recorded",
            EventType::PropertyViewed => "property_viewed",
            EventType::ScoreRefreshRequested => "score_refresh_requested",
            EventType::ChurnCheckRequested => "churn_check_requested",
            EventType::SystemHealthCheck => "system_health_check",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown event type {s:?}"))
    }
}

/// Scheduling class of an event; also a subject token.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Served first.
    Critical,
    /// Served after critical.
    High,
    /// The default.
    #[default]
    Medium,
    /// Bulk and replay work.
    Low,
}

impl Priority {
    /// Every priority, highest first.
    pub const ALL: [Priority; 4] = [
        Priority::Critical,
        Priority::High,
        Priority::Medium,
        Priority::Low,
    ];

    /// The subject token of this priority.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::High => "high",
            Priority::Medium => "medium",
            Priority::Low => "low",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown priority {s:?}"))
    }
}

/// One lead event, as published on `leads.events.{tenant}.{priority}.{event_type}.{lead}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadEvent {
    /// Message shape version; [`SCHEMA_VERSION`].
    pub schema: u32,
    /// Unique id; the `Nats-Msg-Id` of the publish. UUIDv7 when the producer gives none.
    pub event_id: String,
    /// What happened.
    pub event_type: EventType,
    /// Whose lead.
    pub tenant_id: TenantId,
    /// Which lead.
    pub lead_id: LeadId,
    /// Scheduling class.
    #[serde(default)]
    pub priority: Priority,
    /// When it happened at the source.
    pub occurred_at: DateTime<Utc>,
    /// What the event says about the lead.
    #[serde(default)]
    pub data: EventData,
}

impl LeadEvent {
    /// A new event with a fresh UUIDv7 id, occurring now, with empty data.
    pub fn new(event_type: EventType, tenant_id: TenantId, lead_id: LeadId) -> Self {
        LeadEvent {
            schema: SCHEMA_VERSION,
            event_id: uuid::Uuid::now_v7().to_string(),
            event_type,
            tenant_id,
            lead_id,
            priority: Priority::default(),
            occurred_at: Utc::now(),
            data: EventData::default(),
        }
    }
}

/// The body of an event. Known fields are typed; anything else is kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventData {
    /// Contact name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Contact email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Contact phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Marketing source the lead came from (google, reference, direct_traffic...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// How the lead entered the CRM (landing_page_submission, api, lead_add_form...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// What the lead does for a living.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occupation: Option<String>,
    /// City the lead gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// The lead asked not to be emailed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub do_not_email: Option<bool>,
    /// The lead asked not to be called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub do_not_call: Option<bool>,
    /// Relationship and household facts used by the churn model (see the models README).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    /// Things the lead did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interactions: Vec<Interaction>,
    /// What the lead is looking for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_preferences: Option<PropertyPreferences>,
    /// The listing a `property_viewed` event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_id: Option<String>,
    /// Fields this version does not know; kept, never rejected.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Relationship facts a CRM keeps about a lead once there is an agreement or account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Months the lead has been a client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenure_months: Option<f64>,
    /// Length of the agreement: `month_to_month`, `one_year`, `two_year`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    /// Monthly fee or retainer the lead pays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_fee: Option<f64>,
    /// Total billed so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_billed: Option<f64>,
    /// How the lead pays: `electronic_check`, `mailed_check`, `bank_transfer`, `credit_card`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    /// The lead receives paperless statements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paperless: Option<bool>,
    /// Services the lead subscribes to (alerts, valuation, mortgage_advice...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<String>>,
    /// Household facts: `senior`, `partner`, `dependents`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household: Option<Vec<String>>,
}

/// One thing a lead did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    /// Kind: `site_visit`, `email_open`, `email_click`, `call`, `form_submit`, `showing`...
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Seconds spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// Pages seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_views: Option<f64>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What a lead wants; the input of property matching.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PropertyPreferences {
    /// Minimum bedrooms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bedrooms: Option<u32>,
    /// `house`, `unit`, `townhouse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_type: Option<String>,
    /// Lowest price considered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_min: Option<f64>,
    /// Highest price considered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_max: Option<f64>,
    /// Where: a point with a radius.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<GeoPoint>,
    /// Where: a zip or post code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zipcode: Option<String>,
}

impl PropertyPreferences {
    /// True when no field is set: matching then has nothing to go on.
    pub fn is_empty(&self) -> bool {
        self == &PropertyPreferences::default()
    }
}

/// A point on the map, with an optional search radius.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Search radius in kilometres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius_km: Option<f64>,
}
