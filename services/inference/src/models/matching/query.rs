//! A match request resolved once: the filters a listing must pass, its score, and the
//! reasons shown to people.

use leadbus_shared::event::PropertyPreferences;

use super::DEFAULT_RADIUS_KM;
use super::index::{CatalogueIndex, distance_km};
use crate::datasets::properties::{Listing, PropertyType};

const W_PRICE: f64 = 0.35;
const W_DISTANCE: f64 = 0.25;
const W_BEDROOMS: f64 = 0.20;
const W_TYPE: f64 = 0.10;
const W_SIZE: f64 = 0.10;

/// Preferences checked and resolved once per match.
pub(super) struct Query<'a> {
    pub(super) prefs: &'a PropertyPreferences,
    pub(super) point: Option<(f64, f64, f64)>,
    pub(super) zip: Option<&'a str>,
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) kind: Option<Option<PropertyType>>,
}

/// Filters, in the order they apply; the index is the stage at which a listing fails.
pub(super) const STAGES: [&str; 4] = ["location", "budget", "bedrooms", "property type"];

impl<'a> Query<'a> {
    pub(super) fn new(prefs: &'a PropertyPreferences) -> Self {
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
    pub(super) fn first_failure(&self, l: &Listing) -> Option<usize> {
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

    /// Weighted score in 0..1 over the parts the lead stated.
    pub(super) fn score(&self, index: &CatalogueIndex, l: &Listing) -> f64 {
        let mut parts: [(f64, f64); 5] = [(0.0, 0.0); 5];
        if let Some(target) = self.target_price() {
            parts[0] = (W_PRICE, (1.0 - (l.price - target).abs() / target).max(0.0));
        }
        if let (Some((lat, lon, r)), Some(la), Some(lo)) = (self.point, l.lat, l.lon) {
            parts[1] = (
                W_DISTANCE,
                (1.0 - distance_km(lat, lon, la, lo) / r).clamp(0.0, 1.0),
            );
        }
        if let Some(want) = self.prefs.bedrooms {
            let extra = f64::from(l.bedrooms.saturating_sub(want));
            parts[2] = (W_BEDROOMS, (1.0 - 0.25 * extra).max(0.0));
        }
        if self.kind.is_some() {
            parts[3] = (W_TYPE, if l.property_type.is_some() { 1.0 } else { 0.5 });
        }
        parts[4] = (W_SIZE, size_fit(index, l).unwrap_or(0.5));
        let weight: f64 = parts.iter().map(|p| p.0).sum();
        parts.iter().map(|(w, s)| w * s).sum::<f64>() / weight
    }

    /// Human-readable reasons, in the order of the score parts.
    pub(super) fn reasons(&self, l: &Listing) -> Vec<String> {
        let cur = l.market.currency();
        let mut out = Vec::with_capacity(5);
        out.push(match (self.prefs.budget_min, self.prefs.budget_max) {
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
        match (self.point, l.lat, l.lon) {
            (Some((lat, lon, r)), Some(la), Some(lo)) if distance_km(lat, lon, la, lo) <= r => out
                .push(format!(
                    "{:.1} km from the requested location ({})",
                    distance_km(lat, lon, la, lo),
                    l.place
                )),
            _ => match (&self.zip, &l.zipcode) {
                (Some(_), Some(z)) => out.push(format!("in zip code {z} ({})", l.place)),
                _ => out.push(format!("in {}", l.place)),
            },
        }
        out.push(match self.prefs.bedrooms {
            Some(want) => format!("{} bedrooms (wanted {want} or more)", l.bedrooms),
            None => format!("{} bedrooms", l.bedrooms),
        });
        match (self.kind, l.property_type) {
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

/// Living area against the median of the same market and bedroom count, capped at 1.
fn size_fit(index: &CatalogueIndex, l: &Listing) -> Option<f64> {
    let typical = index.typical_m2(l.market, l.bedrooms)?;
    Some((l.living_m2? / typical).min(1.0))
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
