//! The events a bench run offers: a population of leads across tenants, and a deterministic
//! mix of event types and priorities drawn from an index (no random-number crate: a hash of
//! the index is enough, and a run can be repeated exactly).

use chrono::Utc;
use leadbus_shared::event::{Account, Interaction, PropertyPreferences};
use leadbus_shared::{EventType, LeadEvent, LeadId, Priority, TenantId};

/// A 64-bit mix of `x` (splitmix64's finaliser): well spread, cheap, stateless.
pub(crate) fn hash(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Leads spread evenly over tenants; ids are prefixed so runs never share profiles.
#[derive(Debug, Clone)]
pub(crate) struct Population {
    tenants: Vec<TenantId>,
    leads: Vec<LeadId>,
}

impl Population {
    /// `leads` leads over the given tenants, ids `{prefix}-{n}`.
    pub(crate) fn new(tenants: &[&str], leads: usize, prefix: &str) -> anyhow::Result<Self> {
        let tenants = tenants
            .iter()
            .map(|t| TenantId::new(*t))
            .collect::<Result<Vec<_>, _>>()?;
        let leads = (0..leads.max(1))
            .map(|n| LeadId::new(format!("{prefix}-{n}")))
            .collect::<Result<Vec<_>, _>>()?;
        anyhow::ensure!(!tenants.is_empty(), "a population needs a tenant");
        Ok(Population { tenants, leads })
    }

    /// The tenants.
    pub(crate) fn tenants(&self) -> &[TenantId] {
        &self.tenants
    }

    /// Number of leads.
    pub(crate) fn len(&self) -> usize {
        self.leads.len()
    }

    /// The `n`th lead (modulo the population) and its tenant.
    pub(crate) fn lead(&self, n: usize) -> (&TenantId, &LeadId) {
        let i = n % self.leads.len();
        (&self.tenants[i % self.tenants.len()], &self.leads[i])
    }

    /// Event `i` of the mixed load: types and priorities in fixed shares, on a lead drawn
    /// from the population.
    pub(crate) fn mixed(&self, i: usize) -> LeadEvent {
        let h = hash(i as u64);
        let (tenant, lead) = self.lead((h >> 32) as usize);
        let event_type = match h % 100 {
            0..5 => EventType::LeadCreated,
            5..20 => EventType::LeadUpdated,
            20..60 => EventType::InteractionRecorded,
            60..75 => EventType::PropertyViewed,
            75..90 => EventType::ScoreRefreshRequested,
            _ => EventType::ChurnCheckRequested,
        };
        let priority = match (h >> 8) % 100 {
            0..5 => Priority::Critical,
            5..25 => Priority::High,
            25..75 => Priority::Medium,
            _ => Priority::Low,
        };
        let mut event = self.event(event_type, tenant, lead, h);
        event.priority = priority;
        event
    }

    /// An event of `event_type` for `lead`, with data the type would carry; `h` varies it.
    pub(crate) fn event(
        &self,
        event_type: EventType,
        tenant: &TenantId,
        lead: &LeadId,
        h: u64,
    ) -> LeadEvent {
        let mut event = LeadEvent::new(event_type, tenant.clone(), lead.clone());
        let now = Utc::now();
        let d = &mut event.data;
        match event_type {
            EventType::LeadCreated => {
                // Stable per lead: a re-created lead states the same facts.
                let k = lead_kind(lead);
                d.source = Some(
                    ["google", "reference", "direct_traffic", "olark_chat"][k as usize].into(),
                );
                d.city = Some("Mumbai".into());
                d.account = Some(Account {
                    tenure_months: Some(6.0 + k as f64),
                    contract: Some("month_to_month".into()),
                    monthly_fee: Some(70.0),
                    payment_method: Some("credit_card".into()),
                    ..Default::default()
                });
                d.property_preferences = Some(preferences(k));
            }
            EventType::LeadUpdated => {
                d.occupation = Some(
                    ["unemployed", "working_professional", "student"][(h % 3) as usize].into(),
                );
            }
            EventType::InteractionRecorded => {
                d.interactions = vec![Interaction {
                    kind: ["site_visit", "email_open", "call"][(h % 3) as usize].into(),
                    at: now,
                    duration_s: Some((h % 600) as f64),
                    page_views: Some((h % 7) as f64),
                    extra: Default::default(),
                }];
            }
            EventType::PropertyViewed => {
                d.property_id = Some(format!("p{}", h % 500));
            }
            _ => {}
        }
        event
    }
}

/// One of four kinds of lead, fixed by the lead id.
fn lead_kind(lead: &LeadId) -> u64 {
    let folded = lead
        .as_str()
        .bytes()
        .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
    hash(folded) % 4
}

/// Preferences of one of a few kinds of buyer.
pub(crate) fn preferences(k: u64) -> PropertyPreferences {
    PropertyPreferences {
        bedrooms: Some(2 + (k % 3) as u32),
        property_type: Some("house".into()),
        budget_min: Some(300_000.0),
        budget_max: Some(600_000.0 + 100_000.0 * k as f64),
        location: None,
        zipcode: None,
    }
}

/// The "unchanged input" events of the cache scenario: a score refresh or a churn check,
/// neither of which changes what any model reads.
pub(crate) fn rescore(tenant: &TenantId, lead: &LeadId, i: usize) -> LeadEvent {
    let event_type = if i.is_multiple_of(2) {
        EventType::ScoreRefreshRequested
    } else {
        EventType::ChurnCheckRequested
    };
    LeadEvent::new(event_type, tenant.clone(), lead.clone())
}

/// A one-event-type, one-priority stream on one tenant's leads (priority and noisy tenant).
pub(crate) fn simple(pop: &Population, i: usize, priority: Priority) -> LeadEvent {
    let h = hash(i as u64 ^ 0x5eed);
    let (tenant, lead) = pop.lead((h >> 32) as usize);
    let mut event = pop.event(EventType::InteractionRecorded, tenant, lead, h);
    event.priority = priority;
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadbus_shared::validate::check_values;

    #[test]
    fn mixed_events_are_valid_and_spread_over_types_and_priorities() {
        let pop = Population::new(&["t0", "t1"], 10, "r1").unwrap();
        let mut types = std::collections::HashSet::new();
        let mut priorities = std::collections::HashSet::new();
        for i in 0..2000 {
            let e = pop.mixed(i);
            check_values(&e, Utc::now()).unwrap();
            types.insert(e.event_type);
            priorities.insert(e.priority);
        }
        assert_eq!(types.len(), 6);
        assert_eq!(priorities.len(), 4);
    }
}
