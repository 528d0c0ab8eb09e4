//! A match request resolved once: the filters a listing must pass, and its score.

use leadbus_shared::event::PropertyPreferences;

use super::DEFAULT_RADIUS_KM;
use super::index::{CatalogueIndex, Origin, Spot, haversine_of_km, km_of_haversine};
use super::reasons::money;
use crate::datasets::properties::PropertyType;

const W_PRICE: f64 = 0.35;
const W_DISTANCE: f64 = 0.25;
const W_BEDROOMS: f64 = 0.20;
const W_TYPE: f64 = 0.10;
const W_SIZE: f64 = 0.10;

/// Filters, in the order they apply; the index is the stage at which a listing fails.
pub(super) const STAGES: [&str; 4] = ["location", "budget", "bedrooms", "property type"];

/// A point with its search radius.
#[derive(Debug, Clone, Copy)]
pub(super) struct Point {
    pub(super) lat: f64,
    pub(super) lon: f64,
    pub(super) radius_km: f64,
    origin: Origin,
    /// Haversine term of the radius: a listing is near when its term is at most this.
    bound: f64,
}

/// Preferences checked and resolved once per match.
#[derive(Debug)]
pub(super) struct Query<'a> {
    pub(super) prefs: &'a PropertyPreferences,
    pub(super) point: Option<Point>,
    pub(super) zip: Option<&'a str>,
    /// The zip's id in the catalogue; `None` when no listing has it.
    zip_id: Option<u32>,
    pub(super) lo: f64,
    pub(super) hi: f64,
    /// The type wanted: `Some(None)` when the lead named one the catalogue does not know.
    pub(super) kind: Option<Option<PropertyType>>,
    target_price: Option<f64>,
}

impl<'a> Query<'a> {
    pub(super) fn new(prefs: &'a PropertyPreferences, index: &CatalogueIndex) -> Self {
        let point = prefs
            .location
            .as_ref()
            .filter(|g| g.lat.is_finite() && g.lon.is_finite());
        let point = point.map(|g| {
            let radius_km = g.radius_km.filter(|r| r.is_finite() && *r > 0.0);
            let radius_km = radius_km.unwrap_or(DEFAULT_RADIUS_KM);
            let (origin, bound) = (Origin::new(g.lat, g.lon), haversine_of_km(radius_km));
            Point {
                lat: g.lat,
                lon: g.lon,
                radius_km,
                origin,
                bound,
            }
        });
        let zip = prefs
            .zipcode
            .as_deref()
            .map(str::trim)
            .filter(|z| !z.is_empty());
        let target_price = match (prefs.budget_min, prefs.budget_max) {
            (Some(lo), Some(hi)) => Some((lo + hi) / 2.0),
            (None, Some(hi)) => Some(0.9 * hi),
            (Some(lo), None) => Some(1.1 * lo),
            (None, None) => None,
        };
        Query {
            prefs,
            point,
            zip,
            zip_id: zip.and_then(|z| index.zip_id(z)),
            lo: prefs.budget_min.filter(|v| v.is_finite()).unwrap_or(0.0),
            hi: prefs
                .budget_max
                .filter(|v| v.is_finite())
                .unwrap_or(f64::INFINITY),
            kind: prefs.property_type.as_deref().map(PropertyType::parse),
            target_price: target_price.filter(|t| t.is_finite() && *t > 0.0),
        }
    }

    /// The candidates the indexes give: near the point and in the zip code when either is
    /// given, else within the budget.
    pub(super) fn candidates(&self, index: &CatalogueIndex) -> Vec<u32> {
        let in_zip = self.zip_id.map_or(&[][..], |z| index.in_zip(z));
        match self.point {
            Some(p) if !in_zip.is_empty() => {
                let mut c = index.near(p.lat, p.lon, p.radius_km);
                c.extend_from_slice(in_zip);
                c.sort_unstable();
                c.dedup();
                c
            }
            Some(p) => index.near(p.lat, p.lon, p.radius_km),
            None if self.zip.is_some() => in_zip.to_vec(),
            None => index.priced_within(self.lo, self.hi),
        }
    }

    /// Passes `s` through the filters: its distance in km when a point was given and it is
    /// within the radius, or the index into [`STAGES`] of the first filter it fails.
    pub(super) fn check(&self, s: &Spot) -> Result<Option<f64>, usize> {
        // A listing without coordinates has a NaN term, which is never within the bound.
        let near = self.point.and_then(|p| {
            let h = p.origin.haversine(s);
            (h <= p.bound).then_some(h)
        });
        let in_zip = self.zip_id.is_some_and(|z| s.zip == z);
        if (self.point.is_some() || self.zip.is_some()) && near.is_none() && !in_zip {
            return Err(0);
        }
        if s.price < self.lo || s.price > self.hi {
            return Err(1);
        }
        if self.prefs.bedrooms.is_some_and(|want| s.bedrooms < want) {
            return Err(2);
        }
        if let (Some(want), Some(have)) = (self.kind, s.kind)
            && want != Some(have)
        {
            return Err(3);
        }
        Ok(near.map(km_of_haversine))
    }

    /// True when `s` passes budget, bedrooms and type (the filters that need no distance).
    pub(super) fn passes_attributes(&self, s: &Spot) -> bool {
        s.price >= self.lo
            && s.price <= self.hi
            && self.prefs.bedrooms.is_none_or(|want| s.bedrooms >= want)
            && match (self.kind, s.kind) {
                (Some(want), Some(have)) => want == Some(have),
                _ => true,
            }
    }

    /// Weighted score in 0..1 over the parts the lead stated; `distance` from [`Self::check`].
    pub(super) fn score(&self, s: &Spot, distance: Option<f64>) -> f64 {
        let mut weight = W_SIZE;
        let mut sum = W_SIZE * s.size_fit;
        let mut add = |w: f64, fit: f64| {
            weight += w;
            sum += w * fit;
        };
        if let Some(target) = self.target_price {
            add(W_PRICE, (1.0 - (s.price - target).abs() / target).max(0.0));
        }
        if let Some(p) = self.point {
            // In the zip code but outside the radius (or unplaced): no distance credit.
            let fit = distance.map_or(0.0, |d| (1.0 - d / p.radius_km).clamp(0.0, 1.0));
            add(W_DISTANCE, fit);
        }
        if let Some(want) = self.prefs.bedrooms {
            let extra = f64::from(s.bedrooms.saturating_sub(want));
            add(W_BEDROOMS, (1.0 - 0.25 * extra).max(0.0));
        }
        if self.kind.is_some() {
            add(W_TYPE, if s.kind.is_some() { 1.0 } else { 0.5 });
        }
        sum / weight
    }

    /// Which filter left nothing, with what it was asked. `total` is the catalogue size,
    /// `candidates` what the indexes gave, `failed` how many failed at each stage.
    pub(super) fn explain_empty(
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
                (Some(p), Some(z)) => format!(
                    "no listing within {} km of ({}, {}) nor in zip code {z}",
                    p.radius_km, p.lat, p.lon
                ),
                (Some(p), None) => {
                    format!(
                        "no listing within {} km of ({}, {})",
                        p.radius_km, p.lat, p.lon
                    )
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
