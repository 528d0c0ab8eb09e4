//! The catalogue prepared for matching: a compact record per listing for the hot loop, and
//! indexes so a match looks at a few thousand candidates instead of every listing: by price
//! (sorted), by zip code, and by a latitude/longitude grid.

use std::collections::HashMap;

use crate::datasets::properties::{Listing, Market, PropertyType};

/// Grid cell edge, in degrees (about 5.6 km of latitude).
const CELL_DEG: f64 = 0.05;
/// Kilometres per degree of latitude.
const KM_PER_DEG: f64 = 111.32;
/// Mean Earth radius, for distances.
pub(crate) const EARTH_RADIUS_KM: f64 = 6371.0;
/// Zip id of a listing without a zip code.
pub(crate) const NO_ZIP: u32 = u32::MAX;

/// What the filters and the score read of one listing, precomputed and small.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spot {
    /// Latitude in radians (NaN when unknown).
    pub(crate) lat: f64,
    /// Longitude in radians (NaN when unknown).
    pub(crate) lon: f64,
    /// Cosine of the latitude, for haversine.
    pub(crate) cos_lat: f64,
    pub(crate) price: f64,
    /// Living area against the median of its market and bedroom count, capped at 1; 0.5
    /// when unknown.
    pub(crate) size_fit: f64,
    pub(crate) bedrooms: u32,
    /// Index into the zip table, or [`NO_ZIP`].
    pub(crate) zip: u32,
    pub(crate) kind: Option<PropertyType>,
}

impl Spot {
    fn located(&self) -> bool {
        self.lat.is_finite() && self.lon.is_finite()
    }
}

/// The catalogue with its indexes. Listings are sorted by id, so a listing's position orders
/// it like its id, and every answer is independent of file order.
#[derive(Debug, Default)]
pub(crate) struct CatalogueIndex {
    pub(crate) listings: Vec<Listing>,
    pub(crate) spots: Vec<Spot>,
    by_price: Vec<u32>,
    zip_ids: HashMap<String, u32>,
    by_zip: Vec<Vec<u32>>,
    grid: HashMap<(i32, i32), Vec<u32>>,
}

impl CatalogueIndex {
    /// Builds the indexes; of listings sharing an id, the first is kept.
    pub(crate) fn new(mut listings: Vec<Listing>) -> Self {
        listings.sort_by(|a, b| a.id.cmp(&b.id));
        listings.dedup_by(|b, a| a.id == b.id);

        let mut sizes: HashMap<(Market, u32), Vec<f64>> = HashMap::new();
        for l in &listings {
            if let Some(m2) = l.living_m2 {
                sizes.entry((l.market, l.bedrooms)).or_default().push(m2);
            }
        }
        let typical: HashMap<(Market, u32), f64> = sizes
            .into_iter()
            .map(|(key, mut v)| {
                v.sort_by(f64::total_cmp);
                (key, v[v.len() / 2])
            })
            .collect();

        let mut index = CatalogueIndex::default();
        for (i, l) in listings.iter().enumerate() {
            let i = i as u32;
            let zip = match &l.zipcode {
                Some(z) => {
                    let next = index.by_zip.len() as u32;
                    let id = *index.zip_ids.entry(z.clone()).or_insert(next);
                    if id == next {
                        index.by_zip.push(Vec::new());
                    }
                    index.by_zip[id as usize].push(i);
                    id
                }
                None => NO_ZIP,
            };
            if let (Some(lat), Some(lon)) = (l.lat, l.lon) {
                index.grid.entry(cell(lat, lon)).or_default().push(i);
            }
            let size_fit = match (l.living_m2, typical.get(&(l.market, l.bedrooms))) {
                (Some(m2), Some(t)) if *t > 0.0 => (m2 / t).min(1.0),
                _ => 0.5,
            };
            let (lat, lon) = (
                l.lat.map_or(f64::NAN, f64::to_radians),
                l.lon.map_or(f64::NAN, f64::to_radians),
            );
            index.spots.push(Spot {
                lat,
                lon,
                cos_lat: lat.cos(),
                price: l.price,
                size_fit,
                bedrooms: l.bedrooms,
                zip,
                kind: l.property_type,
            });
        }
        index.by_price = (0..listings.len() as u32).collect();
        let spots = &index.spots;
        index
            .by_price
            .sort_by(|&a, &b| spots[a as usize].price.total_cmp(&spots[b as usize].price));
        index.listings = listings;
        index
    }

    /// Listings priced within `[lo, hi]`.
    pub(crate) fn priced_within(&self, lo: f64, hi: f64) -> Vec<u32> {
        let price = |i: &u32| self.spots[*i as usize].price;
        let start = self.by_price.partition_point(|i| price(i) < lo);
        let end = self.by_price.partition_point(|i| price(i) <= hi).max(start);
        self.by_price[start..end].to_vec()
    }

    /// The id of a zip code, when any listing has it.
    pub(crate) fn zip_id(&self, zip: &str) -> Option<u32> {
        self.zip_ids.get(zip).copied()
    }

    /// Listings with zip id `zip`.
    pub(crate) fn in_zip(&self, zip: u32) -> &[u32] {
        self.by_zip.get(zip as usize).map_or(&[], Vec::as_slice)
    }

    /// Listings in grid cells that may lie within `radius_km` of a point in degrees (a
    /// superset: the caller checks the distance).
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
            return (0..self.spots.len() as u32)
                .filter(|&i| self.spots[i as usize].located())
                .collect();
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

/// A point to measure from, in radians, with its cosine.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    lat: f64,
    lon: f64,
    cos_lat: f64,
}

impl Origin {
    /// The point at `lat`, `lon` degrees.
    pub(crate) fn new(lat: f64, lon: f64) -> Self {
        let lat = lat.to_radians();
        Origin {
            lat,
            lon: lon.to_radians(),
            cos_lat: lat.cos(),
        }
    }

    /// The haversine term of the distance to `s` (NaN when `s` has no location); compare it
    /// with [`haversine_of_km`] to test a radius without the square root and arcsine.
    pub(crate) fn haversine(&self, s: &Spot) -> f64 {
        let dp = ((s.lat - self.lat) / 2.0).sin();
        let dl = ((s.lon - self.lon) / 2.0).sin();
        dp * dp + self.cos_lat * s.cos_lat * dl * dl
    }
}

/// The haversine term of a distance of `km` (1 beyond half the circumference).
pub(crate) fn haversine_of_km(km: f64) -> f64 {
    let half = (km / (2.0 * EARTH_RADIUS_KM)).min(std::f64::consts::FRAC_PI_2);
    half.sin().powi(2)
}

/// The distance in kilometres of a haversine term.
pub(crate) fn km_of_haversine(h: f64) -> f64 {
    2.0 * EARTH_RADIUS_KM * h.clamp(0.0, 1.0).sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spot(lat: f64, lon: f64) -> Spot {
        let lat = lat.to_radians();
        Spot {
            lat,
            lon: lon.to_radians(),
            cos_lat: lat.cos(),
            price: 1.0,
            size_fit: 0.5,
            bedrooms: 1,
            zip: NO_ZIP,
            kind: None,
        }
    }

    #[test]
    fn distances_are_plausible() {
        // Seattle to Bellevue is about 10 km.
        let h = Origin::new(47.6062, -122.3321).haversine(&spot(47.6101, -122.2015));
        let d = km_of_haversine(h);
        assert!((9.0..11.0).contains(&d), "{d}");
        assert!(h < haversine_of_km(10.0) && h > haversine_of_km(9.0));
        assert_eq!(
            km_of_haversine(Origin::new(1.0, 2.0).haversine(&spot(1.0, 2.0))),
            0.0
        );
        assert!(
            Origin::new(1.0, 2.0)
                .haversine(&spot(f64::NAN, f64::NAN))
                .is_nan()
        );
    }
}
