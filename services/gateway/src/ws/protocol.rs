//! The messages of `GET /v1/ws` (the README's WebSocket section is the reference) and the
//! close codes.

use std::collections::HashSet;

use leadbus_shared::{IntelType, LeadId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::feed::FeedItem;

/// Normal closure, after the client's own close.
pub const CLOSE_NORMAL: u16 = 1000;
/// The gateway is shutting down; reconnect (elsewhere) with `resume_from`.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Resuming failed on the gateway's side (the stream could not be read); retry.
pub const CLOSE_INTERNAL: u16 = 1011;
/// Too many clients are resuming at once; retry shortly.
pub const CLOSE_TRY_AGAIN: u16 = 1013;
/// No pong (nor any other frame) within the idle limit: the connection was dead.
pub const CLOSE_TIMEOUT: u16 = 4000;
/// Close code when the client's token expires while connected.
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;
/// The client did not read fast enough and its send queue filled up.
pub const CLOSE_SLOW_CLIENT: u16 = 4008;

/// Leads one subscription may name at most.
pub const MAX_LEADS: usize = 1000;

/// What a client may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Replace the connection's subscription.
    Subscribe {
        /// Intel types wanted; empty means all.
        #[serde(default)]
        intel_types: Vec<String>,
        /// Leads wanted; empty means all of the tenant.
        #[serde(default)]
        leads: Vec<String>,
        /// Last sequence the client has; everything after it is sent first.
        #[serde(default)]
        resume_from: Option<u64>,
    },
    /// Application-level keep-alive for clients (browsers) that cannot send WebSocket pings.
    Ping {
        /// Echoed back.
        #[serde(default)]
        id: Option<Value>,
    },
}

/// Which messages of the tenant a connection wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    intel_types: HashSet<String>,
    leads: HashSet<String>,
}

impl Filter {
    /// Checks every name; an unknown intel type or an invalid lead id is an error for the client.
    pub fn new(intel_types: Vec<String>, leads: Vec<String>) -> Result<Filter, String> {
        if leads.len() > MAX_LEADS {
            return Err(format!(
                "{} leads in one subscription; the limit is {MAX_LEADS}",
                leads.len()
            ));
        }
        for t in &intel_types {
            t.parse::<IntelType>()?;
        }
        for l in &leads {
            LeadId::new(l.as_str()).map_err(|e| e.to_string())?;
        }
        Ok(Filter {
            intel_types: intel_types.into_iter().collect(),
            leads: leads.into_iter().collect(),
        })
    }

    /// True when the connection wants `item`.
    pub fn admits(&self, lead: &str, intel_type: &str) -> bool {
        (self.intel_types.is_empty() || self.intel_types.contains(intel_type))
            && (self.leads.is_empty() || self.leads.contains(lead))
    }

    /// True when the connection wants `item`.
    pub fn admits_item(&self, item: &FeedItem) -> bool {
        self.admits(&item.lead, &item.intel_type)
    }

    /// The filter as the client named it, sorted.
    pub fn describe(&self) -> Value {
        let mut types: Vec<_> = self.intel_types.iter().collect();
        let mut leads: Vec<_> = self.leads.iter().collect();
        types.sort();
        leads.sort();
        json!({ "intel_types": types, "leads": leads })
    }
}

/// Splits a comma-separated query value; empty parts are dropped.
pub fn split_list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// How a resume went, told to the client before the replayed messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumeInfo {
    /// The client's `resume_from`.
    pub from: u64,
    /// First sequence LEAD_INTEL still holds.
    pub first_seq: u64,
    /// Last sequence LEAD_INTEL holds.
    pub last_seq: u64,
}

impl ResumeInfo {
    /// True when nothing after `from` has left the stream, and `from` is a position the
    /// stream has had.
    pub fn complete(&self) -> bool {
        self.from.saturating_add(1) >= self.first_seq && self.from <= self.last_seq
    }

    /// The `resume` object of a `subscribed` message.
    pub fn to_json(self) -> Value {
        let missed = if self.from > self.last_seq {
            Some(format!(
                "resume_from {} is past the stream's last sequence {}: the stream was reset",
                self.from, self.last_seq
            ))
        } else if !self.complete() {
            Some(format!(
                "messages {} to {} have left the stream (retention); they cannot be replayed",
                self.from + 1,
                self.first_seq - 1
            ))
        } else {
            None
        };
        json!({
            "from": self.from,
            "complete": self.complete(),
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "missed": missed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_is_complete_only_when_nothing_left_the_stream() {
        let r = |from, first_seq, last_seq| ResumeInfo {
            from,
            first_seq,
            last_seq,
        };
        assert!(r(0, 1, 10).complete());
        assert!(r(10, 1, 10).complete());
        assert!(r(4, 5, 10).complete());
        assert!(!r(3, 5, 10).complete());
        assert!(!r(11, 1, 10).complete());
        // An empty stream after a purge: first = last + 1.
        assert!(r(10, 11, 10).complete());
    }

    #[test]
    fn filters_check_names() {
        assert!(Filter::new(vec!["lead_score_update".into()], vec!["c_1".into()]).is_ok());
        assert!(Filter::new(vec!["nope".into()], vec![]).is_err());
        assert!(Filter::new(vec![], vec!["a.b".into()]).is_err());
        let f = Filter::new(vec![], vec!["c_1".into()]).unwrap_or_default();
        assert!(f.admits("c_1", "intelligence_complete"));
        assert!(!f.admits("c_2", "intelligence_complete"));
    }
}
