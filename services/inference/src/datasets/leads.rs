//! The X Education leads CSV (`leads/{train,eval}.csv`) and the events each row stands for.
//!
//! A row becomes a `lead_created` event with the lead's stated attributes, then the
//! `interaction_recorded` event its activity columns describe. Training, offline evaluation and
//! the live system all build the lead profile from these events, so the score a model gives a
//! row offline is the score the running service gives it.
//!
//! Activity mapping (deterministic, and exact in floating point):
//! - `TotalVisits` = n gives n `site_visit` interactions, one second apart after `at`.
//! - `Total Time Spent on Website` (whole seconds) is spread over the visits: each gets
//!   `floor(t / n)` seconds and the first `t mod n` visits one second more, so the profile's
//!   sum is exactly `t` whatever the order of addition.
//! - Page views: `round(Page Views Per Visit × n)` pages, spread the same way.
//! - `TotalVisits` blank or 0 with time on site > 0: one visit carrying all the time (time on
//!   the site implies a visit); its page views are unknown (absent) when the column is blank.
//!   In these files only blank `TotalVisits` occurs this way (Lead Add Form and Lead Import
//!   rows); a 0 with time never does.
//! - No visits and no time: no interaction event at all.
//! - Visits are split over several events of at most [`MAX_VISITS_PER_EVENT`] interactions,
//!   which keeps every event far below the 64 KiB payload limit (the largest row has 251).

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use leadbus_shared::event::Interaction;
use leadbus_shared::ids::IdError;
use leadbus_shared::{EventType, LeadEvent, LeadId, TenantId};
use tracing::warn;

use super::{DatasetError, Loaded, derived_event_id, number, open_csv, snake_token, text, yes_no};

/// Interactions per `interaction_recorded` event built from a row.
pub const MAX_VISITS_PER_EVENT: usize = 256;

/// Visits above this are capped (the files top out at 251); keeps a corrupt row from
/// producing thousands of events.
const MAX_VISITS: u64 = 10_000;

/// The label column.
pub const LABEL_COLUMN: &str = "Converted";

/// One lead from the CSV, with the columns leadbus reads.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadRow {
    /// `Prospect ID` (a UUID); unique per row.
    pub prospect_id: String,
    /// `Converted`: the label.
    pub converted: bool,
    /// `Lead Source`, as a token (`google`, `reference`, `olark_chat`...).
    pub source: Option<String>,
    /// `Lead Origin`, as a token (`landing_page_submission`, `api`, `lead_add_form`...).
    pub origin: Option<String>,
    /// `What is your current occupation`, as a token.
    pub occupation: Option<String>,
    /// `City`, as a token.
    pub city: Option<String>,
    /// `Do Not Email`.
    pub do_not_email: Option<bool>,
    /// `Do Not Call`.
    pub do_not_call: Option<bool>,
    /// `TotalVisits`; blank is `None`.
    pub total_visits: Option<f64>,
    /// `Total Time Spent on Website`, in seconds.
    pub time_on_site_s: Option<f64>,
    /// `Page Views Per Visit`.
    pub page_views_per_visit: Option<f64>,
}

impl LeadRow {
    /// The lead id this row gets in leadbus: its Prospect ID.
    pub fn lead_id(&self) -> Result<LeadId, IdError> {
        LeadId::new(self.prospect_id.as_str())
    }
}

/// Reads a leads CSV. A row without a Prospect ID or with a label other than 0/1 is skipped
/// and counted.
pub fn read(path: &Path) -> Result<Loaded<LeadRow>, DatasetError> {
    let (mut reader, header) = open_csv(path)?;
    let col = |name: &str| header.require(name);
    let c_id = col("Prospect ID")?;
    let c_label = col(LABEL_COLUMN)?;
    let c_source = col("Lead Source")?;
    let c_origin = col("Lead Origin")?;
    let c_occupation = col("What is your current occupation")?;
    let c_city = col("City")?;
    let c_email = col("Do Not Email")?;
    let c_call = col("Do Not Call")?;
    let c_visits = col("TotalVisits")?;
    let c_time = col("Total Time Spent on Website")?;
    let c_pages = col("Page Views Per Visit")?;

    let mut rows = Vec::new();
    let mut skipped = 0;
    for (line, record) in reader.records().enumerate() {
        let Ok(record) = record else {
            skipped += 1;
            continue;
        };
        let (Some(id), Some(converted)) = (text(&record, c_id), yes_no(text(&record, c_label)))
        else {
            skipped += 1;
            warn!(path = %path.display(), line = line + 2, "lead row without id or label skipped");
            continue;
        };
        rows.push(LeadRow {
            prospect_id: id.to_owned(),
            converted,
            source: category(text(&record, c_source)),
            origin: category(text(&record, c_origin)),
            occupation: category(text(&record, c_occupation)),
            city: category(text(&record, c_city)),
            do_not_email: yes_no(text(&record, c_email)),
            do_not_call: yes_no(text(&record, c_call)),
            total_visits: number(&record, c_visits).filter(|v| *v >= 0.0),
            time_on_site_s: number(&record, c_time).filter(|v| *v >= 0.0),
            page_views_per_visit: number(&record, c_pages).filter(|v| *v >= 0.0),
        });
    }
    Ok(Loaded { rows, skipped })
}

/// A dropdown value as a token; `Select` (an untouched dropdown) and blanks are missing.
fn category(raw: Option<&str>) -> Option<String> {
    raw.filter(|s| !s.eq_ignore_ascii_case("select"))
        .and_then(snake_token)
}

/// The events a CRM would have sent for `row`: `lead_created`, then the interactions its
/// activity columns describe (none when there was no activity). Event ids are derived from
/// tenant, lead and row, so publishing the same row twice is de-duplicated by the stream.
pub fn row_events(
    row: &LeadRow,
    tenant: &TenantId,
    lead_id: &LeadId,
    at: DateTime<Utc>,
) -> Vec<LeadEvent> {
    let id = |kind: &str| {
        derived_event_id(&[
            "xeducation",
            tenant.as_str(),
            lead_id.as_str(),
            &row.prospect_id,
            kind,
        ])
    };
    let mut created = LeadEvent::new(EventType::LeadCreated, tenant.clone(), lead_id.clone());
    created.event_id = id("created");
    created.occurred_at = at;
    created.data.source = row.source.clone();
    created.data.origin = row.origin.clone();
    created.data.occupation = row.occupation.clone();
    created.data.city = row.city.clone();
    created.data.do_not_email = row.do_not_email;
    created.data.do_not_call = row.do_not_call;

    let visits = visits(row, at);
    let mut events = vec![created];
    for (n, chunk) in visits.chunks(MAX_VISITS_PER_EVENT).enumerate() {
        let mut e = LeadEvent::new(
            EventType::InteractionRecorded,
            tenant.clone(),
            lead_id.clone(),
        );
        e.event_id = id(&format!("activity-{n}"));
        e.occurred_at = chunk.last().map_or(at, |v| v.at);
        e.data.interactions = chunk.to_vec();
        events.push(e);
    }
    events
}

/// The site visits a row's activity columns describe (see the module docs for the rules).
fn visits(row: &LeadRow, at: DateTime<Utc>) -> Vec<Interaction> {
    // Float-to-int `as` saturates; the inputs are already non-negative and finite.
    let time = row.time_on_site_s.map_or(0, |t| t.round() as u64);
    let stated = row
        .total_visits
        .map_or(0, |v| v.round().min(MAX_VISITS as f64) as u64);
    let n = if stated == 0 && time > 0 { 1 } else { stated };
    if n == 0 {
        return Vec::new();
    }
    // A visit lasts at most a day (the event validation limit).
    let time = time.min(86_400 * n);
    let pages = match (row.total_visits, row.page_views_per_visit) {
        (Some(_), Some(ppv)) => Some((ppv * n as f64).round().min(10_000.0 * n as f64) as u64),
        _ => None,
    };
    (0..n)
        .map(|i| Interaction {
            kind: "site_visit".into(),
            at: at + Duration::seconds(i as i64 + 1),
            duration_s: Some(share(time, n, i) as f64),
            page_views: pages.map(|p| share(p, n, i) as f64),
            extra: Default::default(),
        })
        .collect()
}

/// The `i`-th of `n` whole shares of `total`: the first `total mod n` get one more.
fn share(total: u64, n: u64, i: u64) -> u64 {
    total / n + u64::from(i < total % n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::evaluate::profile_of;
    use chrono::TimeZone;
    use leadbus_shared::validate::{DEFAULT_MAX_PAYLOAD, check_values};

    fn row(visits: Option<f64>, time: Option<f64>, ppv: Option<f64>) -> LeadRow {
        LeadRow {
            prospect_id: "7927b2df-8bba-4d29-b9a2-b6e0beafe620".into(),
            converted: true,
            source: Some("reference".into()),
            origin: Some("api".into()),
            occupation: None,
            city: Some("mumbai".into()),
            do_not_email: Some(false),
            do_not_call: Some(false),
            total_visits: visits,
            time_on_site_s: time,
            page_views_per_visit: ppv,
        }
    }

    fn events(r: &LeadRow) -> Vec<LeadEvent> {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let t = TenantId::new("acme").unwrap();
        row_events(r, &t, &r.lead_id().unwrap(), at)
    }

    fn profile(r: &LeadRow) -> crate::profile::LeadProfile {
        let e = events(r);
        profile_of(&e, &e[0].tenant_id, &e[0].lead_id)
    }

    #[test]
    fn activity_is_spread_exactly_over_the_visits() {
        let r = row(Some(3.0), Some(100.0), Some(2.67));
        let e = events(&r);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].event_type, EventType::LeadCreated);
        assert_eq!(e[0].data.source.as_deref(), Some("reference"));
        let visits = &e[1].data.interactions;
        let secs: Vec<_> = visits.iter().map(|v| v.duration_s.unwrap()).collect();
        let pages: Vec<_> = visits.iter().map(|v| v.page_views.unwrap()).collect();
        assert_eq!(secs, [34.0, 33.0, 33.0]);
        assert_eq!(pages, [3.0, 3.0, 2.0]);
        let p = profile(&r);
        assert_eq!((p.visits, p.time_on_site_s, p.page_views), (3, 100.0, 8.0));
        // Applied in reverse, the profile is the same.
        let mut rev = e.clone();
        rev.reverse();
        let q = profile_of(&rev, &e[0].tenant_id, &e[0].lead_id);
        assert_eq!((q.visits, q.time_on_site_s, q.page_views), (3, 100.0, 8.0));
    }

    #[test]
    fn time_without_visits_is_one_visit_and_no_activity_is_no_event() {
        let p = profile(&row(None, Some(417.0), None));
        assert_eq!((p.visits, p.time_on_site_s, p.page_views), (1, 417.0, 0.0));
        let p = profile(&row(Some(0.0), Some(60.0), Some(0.0)));
        assert_eq!((p.visits, p.time_on_site_s), (1, 60.0));
        assert_eq!(events(&row(Some(0.0), Some(0.0), Some(0.0))).len(), 1);
        assert_eq!(events(&row(None, None, None)).len(), 1);
    }

    #[test]
    fn events_are_valid_small_and_stable() {
        let r = row(Some(2000.0), Some(2272.0), Some(55.0));
        let e = events(&r);
        assert_eq!(e.len(), 1 + 2000usize.div_ceil(MAX_VISITS_PER_EVENT));
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        for ev in &e {
            assert!(check_values(ev, now).is_ok(), "{:?}", check_values(ev, now));
            assert!(serde_json::to_vec(ev).unwrap().len() < DEFAULT_MAX_PAYLOAD);
        }
        let ids: Vec<_> = e.iter().map(|e| e.event_id.clone()).collect();
        assert_eq!(
            ids,
            events(&r)
                .iter()
                .map(|e| e.event_id.clone())
                .collect::<Vec<_>>()
        );
        assert_eq!(profile(&r).time_on_site_s, 2272.0);
    }

    #[test]
    fn reads_select_as_missing_and_skips_rows_without_a_label() {
        let dir = std::env::temp_dir().join(format!("leadbus-leads-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("leads.csv");
        let header = "Prospect ID,Lead Number,Lead Origin,Lead Source,Do Not Email,Do Not Call,\
Converted,TotalVisits,Total Time Spent on Website,Page Views Per Visit,City,\
What is your current occupation";
        std::fs::write(
            &path,
            format!(
                "{header}\r\na-1,1,Landing Page Submission,Olark Chat,Yes,No,1,,674,,Select,\
Working Professional\r\na-2,2,API,Google,No,No,maybe,1,1,1,Mumbai,\r\n"
            ),
        )
        .unwrap();
        let loaded = read(&path).unwrap();
        assert_eq!((loaded.rows.len(), loaded.skipped), (1, 1));
        let r = &loaded.rows[0];
        assert_eq!(r.origin.as_deref(), Some("landing_page_submission"));
        assert_eq!(r.source.as_deref(), Some("olark_chat"));
        assert_eq!(r.occupation.as_deref(), Some("working_professional"));
        assert_eq!(
            (r.city.as_deref(), r.total_visits, r.do_not_email),
            (None, None, Some(true))
        );
        assert!(matches!(
            read(&dir.join("absent.csv")),
            Err(DatasetError::Io { .. })
        ));
    }
}
