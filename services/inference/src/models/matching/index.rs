//! Indexes over the property catalogue, so a match looks at a few hundred candidates instead
//! of every listing: by price (sorted), by zip code, and by a coarse latitude/longitude grid.

use std::collections::HashMap;

use crate::datasets::properties::{Listing, Market};

/// Grid cell edge, in degrees (about 11 km of latitude).
const CELL_DEG: f64 = 0.1;
/// Kilometres per degree of latitude.
const KM_PER_DEG: f64 = 111.32;
/// Mean Earth radius, for distances.
const EARTH_RADIUS_KM: f64 = 6371.0;

/// The catalogue with its indexes. Listings are sorted by id, so every answer built from it is
/// independent of file order.
#[derive(Debug, Default)]
pub(crate) struct CatalogueIndex {
    pub(crate) listings: Vec<Listing>,
    by_price: Vec<u32>,
    by_zip: HashMap<String, Vec<u32>>,
    grid: HashMap<(i32, i32), Vec<u32>>,
    typical_m2: HashMap<(Market, u32), f64>,
}

impl CatalogueIndex {
    /// Builds the indexes; duplicate ids keep the first listing.
    pub(crate) fn new(mut listings: Vec<Listing>) -> Self {
        listings.sort_by(|a, b| a.id.cmp(&b.id));
        listings.dedup_by(|b, a| a.id == b.id);
        let mut by_price: Vec<u32> = (0..listings.len() as u32).collect();
        by_price.sort_by(|&a, &b| {
            listings[a as usize]
                .price
                .total_cmp(&listings[b as usize].price)
        });

        let mut by_zip: HashMap<String, Vec<u32>> = HashMap::new();
        let mut grid: HashMap<(i32, i32), Vec<u32>> = HashMap::new();
        let mut sizes: HashMap<(Market, u32), Vec<f64>> = HashMap::new();
        for (i, l) in listings.iter().enumerate() {
            let i = i as u32;
            if let Some(z) = &l.zipcode {
                by_zip.entry(z.clone()).or_default().push(i);
            }
            if let (Some(lat), Some(lon)) = (l.lat, l.lon) {
                grid.entry(cell(lat, lon)).or_default().push(i);
            }
            if let Some(m2) = l.living_m2 {
                sizes.entry((l.market, l.bedrooms)).or_default().push(m2);
            }
        }
        let typical_m2 = sizes
            .into_iter()
            .map(|(key, mut v)| {
                v.sort_by(f64::total_cmp);
                (key, v[v.len() / 2])
            })
            .collect();
        CatalogueIndex {
            listings,
            by_price,
            by_zip,
            grid,
            typical_m2,
        }
    }

    /// Listings priced within `[lo, hi]`.
    pub(crate) fn priced_within(&self, lo: f64, hi: f64) -> Vec<u32> {
        let price = |i: &u32| self.listings[*i as usize].price;
        let start = self.by_price.partition_point(|i| price(i) < lo);
        let end = self.by_price.partition_point(|i| price(i) <= hi);
        self.by_price
            .get(start..end.max(start))
            .map(<[u32]>::to_vec)
            .unwrap_or_default()
    }

    /// Listings with zip code `zip`.
    pub(crate) fn in_zip(&self, zip: &str) -> &[u32] {
        self.by_zip.get(zip).map_or(&[], Vec::as_slice)
    }

    /// Listings in grid cells that may lie within `radius_km` of a point (a superset: the
    /// caller checks the distance).
    pub(crate) fn near(&self, lat: f64, lon: f64, radius_km: f64) -> Vec<u32> {
        let dlat = radius_km / KM_PER_DEG;
        let dlon = radius_km / (KM_PER_DEG * lat.to_radians().cos().abs().max(0.01));
        let (lo, hi) = (cell(lat - dlat, lon - dlon), cell(lat + dlat, lon + dlon));
        let span = |a: i32, b: i32| f64::from(b) - f64::from(a) + 1.0;
        let cells = span(lo.0, hi.0) * span(lo.1, hi.1);
        let wraps = lon - dlon < -180.0 || lon + dlon > 180.0;
        if wraps || !cells.is_finite() || cells > self.grid.len() as f64 {
            // A huge radius, or one across the antimeridian: every located listing is a
            // candidate (cheaper than walking the box cell by cell).
            return self.grid.values().flatten().copied().collect();
        }
        let mut out = Vec::new();
        for a in lo.0..=hi.0 {
            for b in lo.1..=hi.1 {
                if let Some(ids) = self.grid.get(&(a, b)) {
                    out.extend_from_slice(ids);
                }
            }
        }
        out
    }

    /// Median living area of listings with this market and bedroom count.
    pub(crate) fn typical_m2(&self, market: Market, bedrooms: u32) -> Option<f64> {
        self.typical_m2.get(&(market, bedrooms)).copied()
    }

    /// A short stable hash of what the matcher reads from every listing.
    pub(crate) fn fingerprint(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for l in &self.listings {
            let text = format!(
                "{}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}\n",
                l.id, l.price, l.bedrooms, l.property_type, l.zipcode, l.lat, l.lon, l.living_m2
            );
            h.update(text.as_bytes());
        }
        h.digest()
    }
}

fn cell(lat: f64, lon: f64) -> (i32, i32) {
    (
        (lat / CELL_DEG).floor() as i32,
        (lon / CELL_DEG).floor() as i32,
    )
}

/// Great-circle distance in kilometres.
pub(crate) fn distance_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_plausible() {
        // Seattle to Bellevue is about 10 km.
        let d = distance_km(47.6062, -122.3321, 47.6101, -122.2015);
        assert!((9.0..11.0).contains(&d), "{d}");
        assert_eq!(distance_km(1.0, 2.0, 1.0, 2.0), 0.0);
    }
}
