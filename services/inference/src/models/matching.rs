//! Property matching: ranks the catalogue against a lead's stated preferences.
//!
//! Hard filters first, in this order: location (the zip code, or within `radius_km` of the
//! point, default [`DEFAULT_RADIUS_KM`]; either passes when both are given), budget
//! (`budget_min..=budget_max`), bedrooms (at least the number wanted), type (when the listing
//! records one). Then a weighted score in 0..1 over the parts the lead gave:
//!
//! | part | weight | 1.0 when | falls to 0 |
//! |---|---|---|---|
//! | price | 0.35 | at the target: budget midpoint, 0.9 × max alone, 1.1 × min alone | one target away |
//! | distance | 0.25 | at the point | at the radius |
//! | bedrooms | 0.20 | exactly as wanted | 4 more than wanted |
//! | type | 0.10 | type as wanted (0.5 when not recorded) | - |
//! | size | 0.10 | at least the median living area of its market and bedrooms (0.5 unknown) | 0 m² |
//!
//! Weights of parts the lead did not state are left out and the rest renormalised. Ties are
//! broken by property id, so the same preferences always give the same list. Budgets are
//! compared in each listing's own currency (USD in King County, AUD in Melbourne): the
//! preferences carry no currency, and location is what keeps the markets apart.

use leadbus_shared::event::PropertyPreferences;
use leadbus_shared::intel::{Matches, PropertyMatch};
use serde::{Deserialize, Serialize};

use super::catalogue_index::{CatalogueIndex, distance_km};
use super::{Model, ModelError};
use crate::datasets::properties::{Listing, PropertyType};
use crate::profile::LeadProfile;

/// Version of the matching rules; the catalogue hash is appended.
pub const MATCHER_VERSION: &str = "property-match-1";
/// Radius used when a location has none.
pub const DEFAULT_RADIUS_KM: f64 = 10.0;
/// Listings returned at most.
pub const TOP_K: usize = 10;
/// Reason when the lead has given nothing to match on.
pub const NO_PREFERENCES: &str = "lead has stated no property preferences";
/// Reason when no catalogue could be read.
pub const NO_CATALOGUE: &str = "no property catalogue loaded";

const W_PRICE: f64 = 0.35;
const W_DISTANCE: f64 = 0.25;
const W_BEDROOMS: f64 = 0.20;
const W_TYPE: f64 = 0.10;
const W_SIZE: f64 = 0.10;

/// Exactly what matching reads from a profile: the current preferences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchInput {
    /// The lead's preferences; `None` when it stated none.
    pub preferences: Option<PropertyPreferences>,
}

/// The matcher: the catalogue, indexed, and its version.
#[derive(Debug)]
pub struct PropertyMatcher {
    index: CatalogueIndex,
    version: String,
}

/// Preferences checked and resolved once per match.
struct Query<'a> {
    prefs: &'a PropertyPreferences,
    point: Option<(f64, f64, f64)>,
    zip: Option<&'a str>,
    lo: f64,
    hi: f64,
    kind: Option<Option<PropertyType>>,
}

/// Filters, in the order they apply; the index is the stage at which a listing fails.
const STAGES: [&str; 4] = ["location", "budget", "bedrooms", "property type"];

impl PropertyMatcher {
    /// A matcher over `listings` (the order does not matter).
    pub fn new(listings: Vec<Listing>) -> Self {
        let index = CatalogueIndex::new(listings);
        let version = if index.listings.is_empty() {
            format!("{MATCHER_VERSION}+catalogue-none")
        } else {
            format!(
                "{MATCHER_VERSION}+catalogue-{:08x}",
                index.fingerprint() as u32
            )
        };
        PropertyMatcher { index, version }
    }

    /// A matcher with no catalogue: every match is empty with [`NO_CATALOGUE`].
    pub fn empty() -> Self {
        PropertyMatcher::new(Vec::new())
    }

    /// Listings in the catalogue.
    pub fn len(&self) -> usize {
        self.index.listings.len()
    }

    /// True when no catalogue is loaded.
    pub fn is_empty(&self) -> bool {
        self.index.listings.is_empty()
    }

    /// The best listings for `prefs`, or why there are none.
    pub fn find(&self, prefs: Option<&PropertyPreferences>) -> Matches {
        let empty = |reason: String| Matches {
            items: Vec::new(),
            reason: Some(reason),
            model_version: self.version.clone(),
        };
        let Some(prefs) = prefs.filter(|p| !p.is_empty()) else {
            return empty(NO_PREFERENCES.into());
        };
        if self.is_empty() {
            return empty(NO_CATALOGUE.into());
        }
        let q = Query::new(prefs);

        // Candidates from the most selective index the preferences allow.
        let mut candidates = match (q.point, q.zip) {
            (Some((lat, lon, r)), zip) => {
                let mut c = self.index.near(lat, lon, r);
                c.extend_from_slice(zip.map_or(&[][..], |z| self.index.in_zip(z)));
                c.sort_unstable();
                c.dedup();
                c
            }
            (None, Some(z)) => self.index.in_zip(z).to_vec(),
            (None, None) => self.index.priced_within(q.lo, q.hi),
        };
        candidates.sort_unstable();

        let mut failed = [0usize; STAGES.len()];
        let mut scored: Vec<(f64, u32)> = Vec::with_capacity(candidates.len());
        for &i in &candidates {
            let l = &self.index.listings[i as usize];
            match q.first_failure(l) {
                Some(stage) => failed[stage] += 1,
                None => scored.push((self.score(&q, l), i)),
            }
        }
        if scored.is_empty() {
            return empty(q.explain_empty(self.len(), candidates.len(), &failed));
        }

        let by_rank = |a: &(f64, u32), b: &(f64, u32)| {
            let (la, lb) = (
                &self.index.listings[a.1 as usize],
                &self.index.listings[b.1 as usize],
            );
            b.0.total_cmp(&a.0).then_with(|| la.id.cmp(&lb.id))
        };
        if scored.len() > TOP_K {
            scored.select_nth_unstable_by(TOP_K - 1, by_rank);
            scored.truncate(TOP_K);
        }
        scored.sort_by(by_rank);
        let items = scored
            .into_iter()
            .map(|(score, i)| {
                let l = &self.index.listings[i as usize];
                PropertyMatch {
                    property_id: l.id.clone(),
                    score: (score * 10_000.0).round() / 10_000.0,
                    reasons: self.reasons(&q, l),
                }
            })
            .collect();
        Matches {
            items,
            reason: None,
            model_version: self.version.clone(),
        }
    }

    /// Weighted score in 0..1 over the parts the lead stated.
    fn score(&self, q: &Query<'_>, l: &Listing) -> f64 {
        let mut parts: [(f64, f64); 5] = [(0.0, 0.0); 5];
        if let Some(target) = q.target_price() {
            parts[0] = (W_PRICE, (1.0 - (l.price - target).abs() / target).max(0.0));
        }
        if let (Some((lat, lon, r)), Some(la), Some(lo)) = (q.point, l.lat, l.lon) {
            parts[1] = (
                W_DISTANCE,
                (1.0 - distance_km(lat, lon, la, lo) / r).clamp(0.0, 1.0),
            );
        }
        if let Some(want) = q.prefs.bedrooms {
            let extra = f64::from(l.bedrooms.saturating_sub(want));
            parts[2] = (W_BEDROOMS, (1.0 - 0.25 * extra).max(0.0));
        }
        if q.kind.is_some() {
            parts[3] = (W_TYPE, if l.property_type.is_some() { 1.0 } else { 0.5 });
        }
        parts[4] = (W_SIZE, self.size_fit(l).unwrap_or(0.5));
        let weight: f64 = parts.iter().map(|p| p.0).sum();
        parts.iter().map(|(w, s)| w * s).sum::<f64>() / weight
    }

    fn size_fit(&self, l: &Listing) -> Option<f64> {
        let typical = self.index.typical_m2(l.market, l.bedrooms)?;
        Some((l.living_m2? / typical).min(1.0))
    }

    /// Human-readable reasons, in the order of the score parts.
    fn reasons(&self, q: &Query<'_>, l: &Listing) -> Vec<String> {
        let cur = l.market.currency();
        let mut out = Vec::with_capacity(5);
        out.push(match (q.prefs.budget_min, q.prefs.budget_max) {
            (Some(lo), Some(hi)) => {
                format!(
                    "price {} {cur}, within budget {}-{}",
                    money(l.price),
                    money(lo),
                    money(hi)
                )
            }
            (None, Some(hi)) => format!(
                "price {} {cur}, within budget up to {}",
                money(l.price),
                money(hi)
            ),
            (Some(lo), None) => format!(
                "price {} {cur}, above the minimum {}",
                money(l.price),
                money(lo)
            ),
            (None, None) => format!("price {} {cur}", money(l.price)),
        });
        match (q.point, l.lat, l.lon) {
            (Some((lat, lon, r)), Some(la), Some(lo)) if distance_km(lat, lon, la, lo) <= r => out
                .push(format!(
                    "{:.1} km from the requested location ({})",
                    distance_km(lat, lon, la, lo),
                    l.place
                )),
            _ => match (&q.zip, &l.zipcode) {
                (Some(_), Some(z)) => out.push(format!("in zip code {z} ({})", l.place)),
                _ => out.push(format!("in {}", l.place)),
            },
        }
        out.push(match q.prefs.bedrooms {
            Some(want) => format!("{} bedrooms (wanted {want} or more)", l.bedrooms),
            None => format!("{} bedrooms", l.bedrooms),
        });
        match (q.kind, l.property_type) {
            (Some(_), Some(t)) => out.push(format!("{}, as wanted", t.as_str())),
            (Some(_), None) => out.push("type not recorded in this catalogue".into()),
            (None, Some(t)) => out.push(t.as_str().to_owned()),
            (None, None) => {}
        }
        if let Some(m2) = l.living_m2 {
            out.push(format!("{m2:.0} m² living area"));
        }
        out
    }
}

impl<'a> Query<'a> {
    fn new(prefs: &'a PropertyPreferences) -> Self {
        let point = prefs
            .location
            .as_ref()
            .filter(|g| g.lat.is_finite() && g.lon.is_finite())
            .map(|g| {
                let r = g.radius_km.filter(|r| r.is_finite() && *r > 0.0);
                (g.lat, g.lon, r.unwrap_or(DEFAULT_RADIUS_KM))
            });
        let zip = prefs
            .zipcode
            .as_deref()
            .map(str::trim)
            .filter(|z| !z.is_empty());
        let lo = prefs.budget_min.filter(|v| v.is_finite()).unwrap_or(0.0);
        let hi = prefs
            .budget_max
            .filter(|v| v.is_finite())
            .unwrap_or(f64::INFINITY);
        let kind = prefs.property_type.as_deref().map(PropertyType::parse);
        Query {
            prefs,
            point,
            zip,
            lo,
            hi,
            kind,
        }
    }

    /// The first filter `l` fails, as an index into [`STAGES`].
    fn first_failure(&self, l: &Listing) -> Option<usize> {
        let in_zip = self.zip.is_some() && l.zipcode.as_deref() == self.zip;
        let near = match (self.point, l.lat, l.lon) {
            (Some((lat, lon, r)), Some(la), Some(lo)) => distance_km(lat, lon, la, lo) <= r,
            _ => false,
        };
        if (self.point.is_some() || self.zip.is_some()) && !(in_zip || near) {
            return Some(0);
        }
        if l.price < self.lo || l.price > self.hi {
            return Some(1);
        }
        if self.prefs.bedrooms.is_some_and(|want| l.bedrooms < want) {
            return Some(2);
        }
        if let (Some(want), Some(have)) = (self.kind, l.property_type)
            && want != Some(have)
        {
            return Some(3);
        }
        None
    }

    fn target_price(&self) -> Option<f64> {
        let t = match (self.prefs.budget_min, self.prefs.budget_max) {
            (Some(lo), Some(hi)) => (lo + hi) / 2.0,
            (None, Some(hi)) => 0.9 * hi,
            (Some(lo), None) => 1.1 * lo,
            (None, None) => return None,
        };
        (t.is_finite() && t > 0.0).then_some(t)
    }

    /// Which filter left nothing, with what it was asked. `total` is the catalogue size.
    fn explain_empty(
        &self,
        total: usize,
        candidates: usize,
        failed: &[usize; STAGES.len()],
    ) -> String {
        // With no candidate at all, the index that produced none is to blame: location when
        // one was given, else the price index.
        let mut stage = usize::from(self.point.is_none() && self.zip.is_none());
        let mut left = candidates;
        if candidates > 0 {
            for (i, f) in failed.iter().enumerate() {
                stage = i;
                left = left.saturating_sub(*f);
                if left == 0 {
                    break;
                }
            }
        }
        let detail = match stage {
            0 => match (self.point, self.zip) {
                (Some((lat, lon, r)), Some(z)) => {
                    format!("no listing within {r} km of ({lat}, {lon}) nor in zip code {z}")
                }
                (Some((lat, lon, r)), None) => {
                    format!("no listing within {r} km of ({lat}, {lon})")
                }
                (None, Some(z)) => format!("no listing in zip code {z}"),
                (None, None) => "no listing matches the location".into(),
            },
            1 => format!("no listing priced within the budget {}", self.budget_text()),
            2 => format!(
                "no listing with {} or more bedrooms",
                self.prefs.bedrooms.unwrap_or(0)
            ),
            _ => format!(
                "no listing of type {}",
                self.prefs.property_type.as_deref().unwrap_or("(unknown)")
            ),
        };
        let before = if candidates == 0 {
            total
        } else {
            failed[stage]
        };
        format!(
            "{detail} (the {} filter left none of {before} candidates)",
            STAGES[stage]
        )
    }

    fn budget_text(&self) -> String {
        match (self.prefs.budget_min, self.prefs.budget_max) {
            (Some(lo), Some(hi)) => format!("{}-{}", money(lo), money(hi)),
            (None, Some(hi)) => format!("up to {}", money(hi)),
            (Some(lo), None) => format!("from {}", money(lo)),
            (None, None) => "(none)".into(),
        }
    }
}

/// `1225000.0` as `1,225,000`.
fn money(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if v < 0.0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Model for PropertyMatcher {
    type Input = MatchInput;
    type Output = Matches;

    fn name(&self) -> &'static str {
        "property_match"
    }

    fn version(&self) -> &str {
        &self.version
    }

    fn input(&self, profile: &LeadProfile) -> MatchInput {
        MatchInput {
            preferences: profile.preferences().cloned(),
        }
    }

    fn run(&self, input: &MatchInput) -> Result<Matches, ModelError> {
        Ok(self.find(input.preferences.as_ref()))
    }
}
