//! The reasons shown with each match, in the order of the score's parts.

use super::query::Query;
use crate::datasets::properties::Listing;

/// Why `l` matched `q`; `distance` is its distance from the requested point, when within the
/// radius.
pub(super) fn reasons(q: &Query<'_>, l: &Listing, distance: Option<f64>) -> Vec<String> {
    let price = format!("price {} {}", money(l.price), l.market.currency());
    let mut out = Vec::with_capacity(5);
    out.push(match (q.prefs.budget_min, q.prefs.budget_max) {
        (Some(lo), Some(hi)) => format!("{price}, within budget {}-{}", money(lo), money(hi)),
        (None, Some(hi)) => format!("{price}, within budget up to {}", money(hi)),
        (Some(lo), None) => format!("{price}, above the minimum {}", money(lo)),
        (None, None) => price,
    });
    out.push(match (distance, &q.zip, &l.zipcode) {
        (Some(d), _, _) => format!("{d:.1} km from the requested location ({})", l.place),
        (None, Some(_), Some(z)) => format!("in zip code {z} ({})", l.place),
        _ => format!("in {}", l.place),
    });
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

/// `1225000.0` as `1,225,000`.
pub(super) fn money(v: f64) -> String {
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
