//! Property matching: ranks the catalogue against a lead's stated preferences.
//!
//! Hard filters first, in this order: location (the zip code, or within `radius_km` of the
//! point, default [`DEFAULT_RADIUS_KM`]; either passes when both are given), budget
//! (`budget_min..=budget_max`), bedrooms (at least the number wanted), type (when the listing
//! records one). Then a weighted score in 0..1 over the parts the lead gave:
//!
//! - price, 0.35: 1 at the target (the budget midpoint; 0.9 × max or 1.1 × min when only one
//!   is given), falling to 0 one target away;
//! - distance, 0.25: 1 at the point, 0 at the radius (and outside it, when matched by zip);
//! - bedrooms, 0.20: 1 for exactly as many as wanted, 0 for four more;
//! - type, 0.10: 1 for the type wanted, 0.5 when the listing records none;
//! - size, 0.10: living area against the median of its market and bedroom count, capped at
//!   1; 0.5 when unknown.
//!
//! Weights of parts the lead did not state are left out and the rest renormalised. Ties are
//! broken by property id, so the same preferences always give the same list. Budgets are
//! compared in each listing's own currency (USD in King County, AUD in Melbourne): the
//! preferences carry no currency, and location is what keeps the markets apart.

use leadbus_shared::event::PropertyPreferences;
use leadbus_shared::intel::{Matches, PropertyMatch};
use serde::{Deserialize, Serialize};

use self::index::CatalogueIndex;
use self::query::{Query, STAGES};
use self::reasons::reasons;
use super::{Model, ModelError};
use crate::datasets::properties::Listing;
use crate::profile::LeadProfile;

mod index;
mod query;
mod reasons;
#[cfg(test)]
mod tests;

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

/// Exactly what matching reads from a profile: the current preferences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchInput {
    /// The lead's preferences; `None` when it stated none.
    pub preferences: Option<PropertyPreferences>,
}

/// The matcher: the catalogue, indexed, and its version.
pub struct PropertyMatcher {
    index: CatalogueIndex,
    version: String,
}

impl std::fmt::Debug for PropertyMatcher {
    // Tens of thousands of listings make no useful debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PropertyMatcher")
            .field("version", &self.version)
            .field("listings", &self.len())
            .finish()
    }
}

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
        let q = Query::new(prefs, &self.index);

        let candidates = q.candidates(&self.index);
        let spots = &self.index.spots;
        let mut scored: Vec<(f64, u32)> = Vec::with_capacity(candidates.len().min(4096));
        for &i in &candidates {
            // The cheap filters first: most candidates fail one and skip the distance.
            let s = &spots[i as usize];
            if q.passes_attributes(s)
                && let Ok(distance) = q.check(s)
            {
                scored.push((q.score(s, distance), i));
            }
        }
        if scored.is_empty() {
            // Rare: count, filter by filter in their stated order, what emptied the list.
            let mut failed = [0usize; STAGES.len()];
            for &i in &candidates {
                if let Err(stage) = q.check(&spots[i as usize]) {
                    failed[stage] += 1;
                }
            }
            return empty(q.explain_empty(self.len(), candidates.len(), &failed));
        }

        // Best score first; listings are sorted by id, so the position breaks ties by id.
        let by_rank = |a: &(f64, u32), b: &(f64, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if scored.len() > TOP_K {
            scored.select_nth_unstable_by(TOP_K - 1, by_rank);
            scored.truncate(TOP_K);
        }
        scored.sort_by(by_rank);
        let items = scored
            .into_iter()
            .map(|(score, i)| {
                let l = &self.index.listings[i as usize];
                let distance = q.check(&self.index.spots[i as usize]).ok().flatten();
                PropertyMatch {
                    property_id: l.id.clone(),
                    score: (score * 10_000.0).round() / 10_000.0,
                    reasons: reasons(&q, l, distance),
                }
            })
            .collect();
        Matches {
            items,
            reason: None,
            model_version: self.version.clone(),
        }
    }
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
