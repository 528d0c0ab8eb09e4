//! Subject names of DESIGN.md section 2, built from validated ids only.

use crate::event::{EventType, Priority};
use crate::ids::{LeadId, TenantId};
use crate::intel::IntelType;

/// Header carrying the de-duplication id of every publish.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// Header marking an event copy made by a replay; its value is the replay's name.
pub const REPLAY_HEADER: &str = "Leadbus-Replay";

/// Stream of lead events.
pub const EVENTS_STREAM: &str = "LEAD_EVENTS";
/// Stream of intelligence.
pub const INTEL_STREAM: &str = "LEAD_INTEL";
/// Stream of dead letters.
pub const DLQ_STREAM: &str = "LEAD_DLQ";

/// Tenant token used in a dead-letter subject when the event's own tenant is unusable.
pub const UNKNOWN_TOKEN: &str = "_unknown";

/// `Nats-Msg-Id` of an event: `{tenant}:{event_id}`. Scoped by tenant, so one tenant reusing
/// another's event id can never make the stream drop the other's event as a duplicate.
pub fn event_msg_id(tenant: &TenantId, event_id: &str) -> String {
    format!("{tenant}:{event_id}")
}

/// `Nats-Msg-Id` of an intelligence message: `{tenant}:{lead}:{result_id}:{intel_type}`,
/// where `result_id` is the event id (plus `:replay-{name}` for a replayed event).
pub fn intel_msg_id(
    tenant: &TenantId,
    lead: &LeadId,
    result_id: &str,
    intel_type: IntelType,
) -> String {
    format!("{tenant}:{lead}:{result_id}:{intel_type}")
}

/// The event id inside an event's `Nats-Msg-Id`: the part after `{tenant}:` when the id
/// has that form, else the whole header (a producer's own id).
pub fn event_id_from_msg_id<'a>(tenant: &str, msg_id: &'a str) -> &'a str {
    msg_id
        .strip_prefix(tenant)
        .and_then(|rest| rest.strip_prefix(':'))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(msg_id)
}

/// `leads.events.{tenant}.{priority}.{event_type}.{lead}`.
pub fn event_subject(
    tenant: &TenantId,
    priority: Priority,
    event_type: EventType,
    lead: &LeadId,
) -> String {
    format!("leads.events.{tenant}.{priority}.{event_type}.{lead}")
}

/// `leads.intel.{tenant}.{lead}.{intel_type}`.
pub fn intel_subject(tenant: &TenantId, lead: &LeadId, intel_type: IntelType) -> String {
    format!("leads.intel.{tenant}.{lead}.{intel_type}")
}

/// `leads.intel.{tenant}.>`: everything of one tenant.
pub fn tenant_intel_filter(tenant: &TenantId) -> String {
    format!("leads.intel.{tenant}.>")
}

/// `leads.dlq.{tenant}.{event_type}`; tokens that are not valid become [`UNKNOWN_TOKEN`].
pub fn dlq_subject(tenant_token: &str, event_type_token: &str) -> String {
    let tenant = if crate::ids::check_token("tenant_id", tenant_token).is_ok() {
        tenant_token
    } else {
        UNKNOWN_TOKEN
    };
    let event_type = match event_type_token.parse::<EventType>() {
        Ok(t) => t.as_str(),
        Err(_) => "unknown",
    };
    format!("leads.dlq.{tenant}.{event_type}")
}

/// The events of one priority, for that priority's consumer.
pub fn priority_filter(priority: Priority) -> String {
    format!("leads.events.*.{priority}.*.*")
}

/// The tokens of an event subject, as received (not yet validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSubject<'a> {
    /// Tenant token.
    pub tenant: &'a str,
    /// Priority token.
    pub priority: &'a str,
    /// Event type token.
    pub event_type: &'a str,
    /// Lead token.
    pub lead: &'a str,
}

/// Splits `leads.events.{tenant}.{priority}.{event_type}.{lead}`; `None` for any other shape.
pub fn parse_event_subject(subject: &str) -> Option<EventSubject<'_>> {
    let mut parts = subject.split('.');
    if parts.next()? != "leads" || parts.next()? != "events" {
        return None;
    }
    let parsed = EventSubject {
        tenant: parts.next()?,
        priority: parts.next()?,
        event_type: parts.next()?,
        lead: parts.next()?,
    };
    parts.next().is_none().then_some(parsed)
}

/// The tokens of an intel subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntelSubject<'a> {
    /// Tenant token.
    pub tenant: &'a str,
    /// Lead token.
    pub lead: &'a str,
    /// Intel type token.
    pub intel_type: &'a str,
}

/// Splits `leads.intel.{tenant}.{lead}.{intel_type}`; `None` for any other shape.
pub fn parse_intel_subject(subject: &str) -> Option<IntelSubject<'_>> {
    let mut parts = subject.split('.');
    if parts.next()? != "leads" || parts.next()? != "intel" {
        return None;
    }
    let parsed = IntelSubject {
        tenant: parts.next()?,
        lead: parts.next()?,
        intel_type: parts.next()?,
    };
    parts.next().is_none().then_some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_parses_event_subjects() {
        let t = TenantId::new("acme").unwrap();
        let l = LeadId::new("c_9f2k1").unwrap();
        let s = event_subject(&t, Priority::High, EventType::InteractionRecorded, &l);
        assert_eq!(s, "leads.events.acme.high.interaction_recorded.c_9f2k1");
        let p = parse_event_subject(&s).unwrap();
        assert_eq!((p.tenant, p.priority, p.lead), ("acme", "high", "c_9f2k1"));
        assert!(parse_event_subject("leads.events.a.b.c").is_none());
        assert!(parse_event_subject("leads.events.a.b.c.d.e").is_none());
    }

    #[test]
    fn dlq_subject_never_carries_bad_tokens() {
        assert_eq!(
            dlq_subject("acme", "lead_created"),
            "leads.dlq.acme.lead_created"
        );
        assert_eq!(dlq_subject("a b", "nope"), "leads.dlq._unknown.unknown");
    }
}
