//! The lead profile: a merge of a lead's events that gives the same result whatever the
//! delivery order and however often an event is delivered.
//!
//! Counters add, attributes are last-writer-wins by `(occurred_at, event_id)`, and the ids of
//! applied events are remembered so a redelivery is recognised and not counted twice.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use leadbus_shared::event::{Account, PropertyPreferences};
use leadbus_shared::{EventType, LeadEvent, LeadId, TenantId};
use serde::{Deserialize, Serialize};

pub use crate::seen::{REMEMBERED_EVENTS, SeenEvents};

/// A value with the stamp of the event that set it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped<T> {
    /// The value.
    pub value: T,
    /// When the setting event occurred.
    pub at: DateTime<Utc>,
    /// The setting event, to break ties.
    pub event_id: String,
}

/// Attributes a lead states about itself; each keeps the newest value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attributes {
    /// Marketing source.
    pub source: Option<Stamped<String>>,
    /// How the lead entered the CRM.
    pub origin: Option<Stamped<String>>,
    /// Occupation.
    pub occupation: Option<Stamped<String>>,
    /// City.
    pub city: Option<Stamped<String>>,
    /// Asked not to be emailed.
    pub do_not_email: Option<Stamped<bool>>,
    /// Asked not to be called.
    pub do_not_call: Option<Stamped<bool>>,
    /// Relationship facts (churn inputs).
    pub account: Option<Stamped<Account>>,
    /// What the lead is looking for.
    pub preferences: Option<Stamped<PropertyPreferences>>,
}

/// Everything leadbus knows about one lead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadProfile {
    /// Whose lead.
    pub tenant_id: TenantId,
    /// Which lead.
    pub lead_id: LeadId,
    /// Grows by one with every applied event.
    pub revision: u64,
    /// The most recent applied events (hashes of their ids), oldest first. Read under its
    /// former name too, when profiles held the ids as text.
    #[serde(rename = "recent_events", alias = "recent_event_ids")]
    pub recent_events: SeenEvents,
    /// Earliest event time seen.
    pub first_seen: Option<DateTime<Utc>>,
    /// Latest event or interaction time seen.
    pub last_activity: Option<DateTime<Utc>>,
    /// Stated attributes.
    pub attributes: Attributes,
    /// Site visits.
    pub visits: u64,
    /// Seconds spent on the site, over all interactions.
    pub time_on_site_s: f64,
    /// Pages seen, over all interactions.
    pub page_views: f64,
    /// Interactions by type.
    pub interactions: BTreeMap<String, u64>,
    /// `property_viewed` events.
    pub properties_viewed: u64,
}

impl LeadProfile {
    /// An empty profile.
    pub fn new(tenant_id: TenantId, lead_id: LeadId) -> Self {
        LeadProfile {
            tenant_id,
            lead_id,
            revision: 0,
            recent_events: SeenEvents::default(),
            first_seen: None,
            last_activity: None,
            attributes: Attributes::default(),
            visits: 0,
            time_on_site_s: 0.0,
            page_views: 0.0,
            interactions: BTreeMap::new(),
            properties_viewed: 0,
        }
    }

    /// True when this event was already merged.
    pub fn has_applied(&self, event_id: &str) -> bool {
        self.recent_events.contains(event_id)
    }

    /// Merges `event`; returns false (and changes nothing) when it was already merged.
    pub fn apply(&mut self, event: &LeadEvent) -> bool {
        if self.has_applied(&event.event_id) {
            return false;
        }
        self.revision += 1;
        self.recent_events.remember(&event.event_id);
        self.first_seen = Some(
            self.first_seen
                .map_or(event.occurred_at, |t| t.min(event.occurred_at)),
        );
        self.touch(event.occurred_at);

        let d = &event.data;
        let a = &mut self.attributes;
        let (at, id) = (event.occurred_at, event.event_id.as_str());
        merge(&mut a.source, d.source.clone(), at, id);
        merge(&mut a.origin, d.origin.clone(), at, id);
        merge(&mut a.occupation, d.occupation.clone(), at, id);
        merge(&mut a.city, d.city.clone(), at, id);
        merge(&mut a.do_not_email, d.do_not_email, at, id);
        merge(&mut a.do_not_call, d.do_not_call, at, id);
        merge(&mut a.account, d.account.clone(), at, id);
        merge(&mut a.preferences, d.property_preferences.clone(), at, id);

        for it in &d.interactions {
            if it.kind == "site_visit" {
                self.visits += 1;
            }
            self.time_on_site_s += it.duration_s.unwrap_or(0.0);
            self.page_views += it.page_views.unwrap_or(0.0);
            *self.interactions.entry(it.kind.clone()).or_insert(0) += 1;
            self.touch(it.at);
        }
        if event.event_type == EventType::PropertyViewed {
            self.properties_viewed += 1;
        }
        true
    }

    /// The lead's current preferences, if it stated any.
    pub fn preferences(&self) -> Option<&PropertyPreferences> {
        self.attributes.preferences.as_ref().map(|s| &s.value)
    }

    fn touch(&mut self, at: DateTime<Utc>) {
        self.last_activity = Some(self.last_activity.map_or(at, |t| t.max(at)));
    }
}

/// Keeps the value of the newest event; ties go to the larger event id, so every order of
/// delivery ends in the same state.
fn merge<T>(slot: &mut Option<Stamped<T>>, value: Option<T>, at: DateTime<Utc>, event_id: &str) {
    let Some(value) = value else { return };
    let newer = match slot {
        None => true,
        Some(cur) => (at, event_id) > (cur.at, cur.event_id.as_str()),
    };
    if newer {
        *slot = Some(Stamped {
            value,
            at,
            event_id: event_id.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use leadbus_shared::event::Interaction;

    fn event(id: &str, secs: i64, source: &str, visits: usize) -> LeadEvent {
        let mut e = LeadEvent::new(
            EventType::InteractionRecorded,
            TenantId::new("t").unwrap(),
            LeadId::new("l").unwrap(),
        );
        e.event_id = id.into();
        e.occurred_at = Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap();
        e.data.source = Some(source.into());
        e.data.interactions = (0..visits)
            .map(|_| Interaction {
                kind: "site_visit".into(),
                at: e.occurred_at,
                duration_s: Some(10.0),
                page_views: Some(2.0),
                extra: Default::default(),
            })
            .collect();
        e
    }

    #[test]
    fn merge_is_order_independent_and_idempotent() {
        let events = [
            event("a", 1, "google", 2),
            event("b", 5, "reference", 1),
            event("c", 3, "x", 0),
        ];
        let fresh = || LeadProfile::new(TenantId::new("t").unwrap(), LeadId::new("l").unwrap());
        let mut forward = fresh();
        for e in &events {
            forward.apply(e);
        }
        let mut backward = fresh();
        for e in events.iter().rev().chain(events.iter()) {
            backward.apply(e);
        }
        assert_eq!(forward.visits, 3);
        assert_eq!(backward.visits, 3);
        assert_eq!(forward.attributes.source, backward.attributes.source);
        assert_eq!(
            forward.attributes.source.as_ref().unwrap().value,
            "reference"
        );
        assert_eq!(forward.revision, 3);
        assert_eq!(backward.revision, 3);
        assert!(!backward.apply(&events[0]));
    }
}
