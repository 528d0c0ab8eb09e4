//! Decoding and validating an event off the wire. Every failure is a [`Rejection`] with a
//! kind and a reason a person can act on; nothing here panics on input.

use chrono::{DateTime, Datelike, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{EventData, EventType, LeadEvent, SCHEMA_VERSION};
use crate::ids::{LeadId, TenantId};
use crate::subjects::EventSubject;

/// Default payload limit, in bytes (DESIGN.md section 3).
pub const DEFAULT_MAX_PAYLOAD: usize = 64 * 1024;

/// Class of a refused event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    /// Larger than the payload limit.
    Oversize,
    /// Not UTF-8.
    InvalidUtf8,
    /// Not JSON, or not a JSON object.
    MalformedJson,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type or shape.
    WrongType,
    /// `event_type` is not one we know.
    UnknownEventType,
    /// A tenant or lead id is not a single subject token.
    InvalidId,
    /// The body disagrees with the subject it came on.
    SubjectMismatch,
    /// `schema` is newer than this build.
    UnsupportedSchema,
    /// A value is out of range (negative budget, year 9999...).
    InvalidValue,
    /// Processing failed after the retry limit.
    RetriesExhausted,
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {reason}")]
pub struct Rejection {
    /// Class of the failure.
    pub kind: RejectKind,
    /// What was wrong.
    pub reason: String,
    /// The event id, when it could be read.
    pub event_id: Option<String>,
}

impl Rejection {
    fn new(kind: RejectKind, reason: impl Into<String>) -> Self {
        Rejection {
            kind,
            reason: reason.into(),
            event_id: None,
        }
    }
}

/// Longest accepted event id.
pub const MAX_EVENT_ID_LEN: usize = 128;
const MAX_TEXT_LEN: usize = 512;
const MAX_INTERACTIONS: usize = 1000;
const MAX_BUDGET: f64 = 1e10;

/// Decodes `payload` received on `subject`. `fallback_id` names the event when the producer
/// gave no `event_id` (the inference service passes one derived from the stream sequence, so
/// a redelivery gets the same id).
pub fn decode_event(
    subject: Option<EventSubject<'_>>,
    payload: &[u8],
    max_payload: usize,
    fallback_id: impl FnOnce() -> String,
) -> Result<LeadEvent, Rejection> {
    if payload.len() > max_payload {
        return Err(Rejection::new(
            RejectKind::Oversize,
            format!(
                "payload is {} bytes; the limit is {max_payload}",
                payload.len()
            ),
        ));
    }
    let text = std::str::from_utf8(payload).map_err(|e| {
        Rejection::new(
            RejectKind::InvalidUtf8,
            format!("payload is not UTF-8: {e}"),
        )
    })?;
    let mut value: Value = serde_json::from_str(text).map_err(|e| {
        Rejection::new(
            RejectKind::MalformedJson,
            format!("payload is not JSON: {e}"),
        )
    })?;
    let Some(obj) = value.as_object_mut() else {
        return Err(Rejection::new(
            RejectKind::MalformedJson,
            "payload is not a JSON object",
        ));
    };

    // Read the id first, so every later rejection can name the event.
    let event_id = match obj.get("event_id") {
        None | Some(Value::Null) => {
            let id = fallback_id();
            obj.insert("event_id".into(), Value::String(id.clone()));
            id
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(Rejection::new(
                RejectKind::WrongType,
                "event_id is not a string",
            ));
        }
    };
    let with_id = |mut r: Rejection| {
        r.event_id = Some(event_id.clone());
        r
    };
    check_event_id(&event_id).map_err(with_id)?;
    check_envelope(obj, subject).map_err(with_id)?;
    // No priority in the body: the subject's is the event's (found by fuzzing: the default
    // would disagree with the subject it came on).
    if let Some(tokens) = subject
        && matches!(obj.get("priority"), None | Some(Value::Null))
    {
        obj.insert("priority".into(), Value::from(tokens.priority));
    }

    let event: LeadEvent = serde_json::from_value(value).map_err(|e| {
        let kind = if e.to_string().starts_with("missing field") {
            RejectKind::MissingField
        } else {
            RejectKind::WrongType
        };
        with_id(Rejection::new(
            kind,
            format!("event does not fit the envelope: {e}"),
        ))
    })?;
    check_values(&event, Utc::now()).map_err(with_id)?;
    Ok(event)
}

/// Checks an event id: 1 to [`MAX_EVENT_ID_LEN`] of `A-Z a-z 0-9 - _ . :`.
pub fn check_event_id(id: &str) -> Result<(), Rejection> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    if id.is_empty() || id.len() > MAX_EVENT_ID_LEN || !id.chars().all(ok_char) {
        return Err(Rejection::new(
            RejectKind::InvalidId,
            format!("event_id must be 1 to {MAX_EVENT_ID_LEN} of A-Z a-z 0-9 - _ . :"),
        ));
    }
    Ok(())
}

/// Checks the fields that decide routing, with precise reasons, before the typed decode.
fn check_envelope(
    obj: &serde_json::Map<String, Value>,
    subject: Option<EventSubject<'_>>,
) -> Result<(), Rejection> {
    let text = |field: &str| -> Result<&str, Rejection> {
        match obj.get(field) {
            None | Some(Value::Null) => Err(Rejection::new(
                RejectKind::MissingField,
                format!("{field} is missing"),
            )),
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(_) => Err(Rejection::new(
                RejectKind::WrongType,
                format!("{field} is not a string"),
            )),
        }
    };

    match obj.get("schema") {
        None => {
            return Err(Rejection::new(
                RejectKind::MissingField,
                "schema is missing",
            ));
        }
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 && n <= u64::from(SCHEMA_VERSION) => {}
            Some(n) => {
                return Err(Rejection::new(
                    RejectKind::UnsupportedSchema,
                    format!("schema {n} is not supported; this build reads 1..={SCHEMA_VERSION}"),
                ));
            }
            None => {
                return Err(Rejection::new(
                    RejectKind::WrongType,
                    "schema is not an integer",
                ));
            }
        },
    }

    let event_type = text("event_type")?;
    if event_type.parse::<EventType>().is_err() {
        return Err(Rejection::new(
            RejectKind::UnknownEventType,
            format!("unknown event_type {event_type:?}"),
        ));
    }
    let tenant = text("tenant_id")?;
    TenantId::new(tenant).map_err(|e| Rejection::new(RejectKind::InvalidId, e.to_string()))?;
    let lead = text("lead_id")?;
    LeadId::new(lead).map_err(|e| Rejection::new(RejectKind::InvalidId, e.to_string()))?;
    let priority = match obj.get("priority") {
        None | Some(Value::Null) => None,
        Some(_) => Some(text("priority")?),
    };

    if let Some(s) = subject {
        let mismatch = |field: &str, body: &str, subj: &str| {
            Rejection::new(
                RejectKind::SubjectMismatch,
                format!("{field} is {body:?} in the body but {subj:?} in the subject"),
            )
        };
        if s.tenant != tenant {
            return Err(mismatch("tenant_id", tenant, s.tenant));
        }
        if s.lead != lead {
            return Err(mismatch("lead_id", lead, s.lead));
        }
        if s.event_type != event_type {
            return Err(mismatch("event_type", event_type, s.event_type));
        }
        if let Some(p) = priority
            && p != s.priority
        {
            return Err(mismatch("priority", p, s.priority));
        }
    }
    Ok(())
}

/// Range checks on a typed event; `now` bounds timestamps from the future.
pub fn check_values(event: &LeadEvent, now: DateTime<Utc>) -> Result<(), Rejection> {
    let bad = |reason: String| Err(Rejection::new(RejectKind::InvalidValue, reason));
    check_time("occurred_at", event.occurred_at, now)?;
    let d: &EventData = &event.data;
    for (name, value) in [
        ("name", &d.name),
        ("email", &d.email),
        ("phone", &d.phone),
        ("source", &d.source),
        ("origin", &d.origin),
        ("occupation", &d.occupation),
        ("city", &d.city),
        ("property_id", &d.property_id),
    ] {
        if let Some(v) = value
            && v.len() > MAX_TEXT_LEN
        {
            return bad(format!(
                "data.{name} is {} bytes; the limit is {MAX_TEXT_LEN}",
                v.len()
            ));
        }
    }

    if d.interactions.len() > MAX_INTERACTIONS {
        return bad(format!(
            "{} interactions in one event; the limit is {MAX_INTERACTIONS}",
            d.interactions.len()
        ));
    }
    for (i, it) in d.interactions.iter().enumerate() {
        if it.kind.is_empty() || it.kind.len() > 64 {
            return bad(format!("interactions[{i}].type must be 1 to 64 bytes"));
        }
        check_time(&format!("interactions[{i}].at"), it.at, now)?;
        check_range(
            &format!("interactions[{i}].duration_s"),
            it.duration_s,
            0.0,
            86_400.0,
        )?;
        check_range(
            &format!("interactions[{i}].page_views"),
            it.page_views,
            0.0,
            10_000.0,
        )?;
    }

    if let Some(p) = &d.property_preferences {
        check_range("bedrooms", p.bedrooms.map(f64::from), 0.0, 50.0)?;
        check_range("budget_min", p.budget_min, 0.0, MAX_BUDGET)?;
        check_range("budget_max", p.budget_max, 0.0, MAX_BUDGET)?;
        if let (Some(lo), Some(hi)) = (p.budget_min, p.budget_max)
            && lo > hi
        {
            return bad(format!("budget_min {lo} is above budget_max {hi}"));
        }
        if let Some(loc) = &p.location {
            check_range("location.lat", Some(loc.lat), -90.0, 90.0)?;
            check_range("location.lon", Some(loc.lon), -180.0, 180.0)?;
            check_range("location.radius_km", loc.radius_km, 0.0, 20_000.0)?;
        }
        if let Some(z) = &p.zipcode
            && (z.is_empty() || z.len() > 16)
        {
            return bad("zipcode must be 1 to 16 bytes".into());
        }
    }

    if let Some(a) = &d.account {
        check_range("account.tenure_months", a.tenure_months, 0.0, 1200.0)?;
        check_range("account.monthly_fee", a.monthly_fee, 0.0, 1e7)?;
        check_range("account.total_billed", a.total_billed, 0.0, 1e9)?;
    }
    Ok(())
}

fn check_time(field: &str, at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Rejection> {
    if at.year() < 1990 || at > now + Duration::days(1) {
        return Err(Rejection::new(
            RejectKind::InvalidValue,
            format!("{field} {at} is outside 1990 to one day from now"),
        ));
    }
    Ok(())
}

fn check_range(field: &str, value: Option<f64>, lo: f64, hi: f64) -> Result<(), Rejection> {
    match value {
        Some(v) if !v.is_finite() || v < lo || v > hi => Err(Rejection::new(
            RejectKind::InvalidValue,
            format!("{field} is {v}; it must be within {lo} to {hi}"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subjects::parse_event_subject;

    const SUBJECT: &str = "leads.events.acme.high.interaction_recorded.c_1";

    fn decode(body: &str) -> Result<LeadEvent, Rejection> {
        decode_event(
            parse_event_subject(SUBJECT),
            body.as_bytes(),
            DEFAULT_MAX_PAYLOAD,
            || "fallback-1".into(),
        )
    }

    fn body(extra: &str) -> String {
        format!(
            r#"{{"schema":1,"event_type":"interaction_recorded","tenant_id":"acme",
            "lead_id":"c_1","priority":"high","occurred_at":"2026-01-01T00:00:00Z"{extra}}}"#
        )
    }

    #[test]
    fn accepts_a_good_event_and_fills_the_id() {
        let e = decode(&body(
            r#","data":{"interactions":[{"type":"call","at":"2026-01-01T00:00:00Z"}],"x":1}"#,
        ))
        .unwrap();
        assert_eq!(e.event_id, "fallback-1");
        assert_eq!(e.data.extra.get("x"), Some(&Value::from(1)));
    }

    #[test]
    fn names_each_failure() {
        let cases = [
            ("{", RejectKind::MalformedJson),
            ("[]", RejectKind::MalformedJson),
            (r#"{"schema":1}"#, RejectKind::MissingField),
            (
                &body("").replace("interaction_recorded", "teleported"),
                RejectKind::UnknownEventType,
            ),
            (
                &body("").replace("\"c_1\"", "\"c 1\""),
                RejectKind::InvalidId,
            ),
            (
                &body("").replace("\"acme\"", "\"beta\""),
                RejectKind::SubjectMismatch,
            ),
            (
                &body("").replace("2026-01-01", "9999-01-01"),
                RejectKind::InvalidValue,
            ),
            (
                &body("").replace("\"schema\":1", "\"schema\":7"),
                RejectKind::UnsupportedSchema,
            ),
            (
                &body(r#","data":{"property_preferences":{"budget_max":-5}}"#),
                RejectKind::InvalidValue,
            ),
            (
                &body(r#","data":{"interactions":"many"}"#),
                RejectKind::WrongType,
            ),
        ];
        for (input, kind) in cases {
            assert_eq!(decode(input).unwrap_err().kind, kind, "{input}");
        }
    }

    #[test]
    fn a_missing_priority_is_the_subjects() {
        let e = decode(&body("").replace(r#""priority":"high","#, "")).unwrap();
        assert_eq!(e.priority, crate::Priority::High);
    }

    #[test]
    fn refuses_oversize_and_non_utf8() {
        let big = vec![b' '; DEFAULT_MAX_PAYLOAD + 1];
        let r = decode_event(None, &big, DEFAULT_MAX_PAYLOAD, String::new).unwrap_err();
        assert_eq!(r.kind, RejectKind::Oversize);
        let r = decode_event(None, &[0xff, 0xfe], DEFAULT_MAX_PAYLOAD, String::new).unwrap_err();
        assert_eq!(r.kind, RejectKind::InvalidUtf8);
    }
}
