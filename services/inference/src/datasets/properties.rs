//! The property catalogue: King County (`properties/kc_house_data.csv`, prices in USD) and
//! Melbourne (`properties/melbourne/melb_data.csv`, prices in AUD). Both files together are
//! the default catalogue.
//!
//! What is assumed:
//! - King County has no type column. Its listings get no type (`None`): a type filter does
//!   not remove them, and the matcher scores "type not recorded" below a confirmed match. The
//!   set is mostly single-family homes but holds condos too, so calling them all houses would
//!   be wrong for a lead who wants a unit.
//! - Melbourne `Type` `h`/`u`/`t` is house/unit/townhouse; `Rooms` (the listing's own figure)
//!   is the bedroom count, not `Bedroom2` (scraped elsewhere, with zeros).
//! - Both are sales, not live listings; a property sold more than once is one listing at its
//!   latest sale price.
//! - A row without id, price or bedrooms, or with more than [`MAX_BEDROOMS`] bedrooms (King
//!   County holds one 33-bedroom typo), is skipped and counted. Missing coordinates or size
//!   leave those fields empty.

use std::collections::HashMap;
use std::path::Path;

use csv::StringRecord;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{DatasetError, Loaded, number, open_csv, snake_token, text};

/// King County file, relative to the data directory.
pub const KING_COUNTY_FILE: &str = "properties/kc_house_data.csv";
/// Melbourne file, relative to the data directory.
pub const MELBOURNE_FILE: &str = "properties/melbourne/melb_data.csv";

/// More bedrooms than this is taken as a data error.
pub const MAX_BEDROOMS: u32 = 15;

const SQFT_TO_M2: f64 = 0.092_903_04;

/// Kind of dwelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropertyType {
    /// A detached or semi-detached house.
    House,
    /// An apartment, flat or condominium.
    Unit,
    /// A townhouse.
    Townhouse,
}

impl PropertyType {
    /// Reads a lead's or a file's wording: `house`, `unit` (also `apartment`, `flat`,
    /// `condo`), `townhouse` (also `town_house`), or the Melbourne codes `h`, `u`, `t`.
    pub fn parse(raw: &str) -> Option<PropertyType> {
        match snake_token(raw)?.as_str() {
            "h" | "house" | "detached" => Some(PropertyType::House),
            "u" | "unit" | "apartment" | "flat" | "condo" | "condominium" => {
                Some(PropertyType::Unit)
            }
            "t" | "townhouse" | "town_house" => Some(PropertyType::Townhouse),
            _ => None,
        }
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PropertyType::House => "house",
            PropertyType::Unit => "unit",
            PropertyType::Townhouse => "townhouse",
        }
    }
}

/// Which catalogue file a listing came from; fixes its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Market {
    /// King County, Washington, USA; prices in USD.
    KingCounty,
    /// Melbourne, Australia; prices in AUD.
    Melbourne,
}

impl Market {
    /// ISO currency of the market's prices.
    pub fn currency(self) -> &'static str {
        match self {
            Market::KingCounty => "USD",
            Market::Melbourne => "AUD",
        }
    }
}

/// One property in the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    /// Catalogue id: `kc-<id>` or `mel-<hash of suburb and address>`.
    pub id: String,
    /// Source file.
    pub market: Market,
    /// Latest sale price, in the market's currency.
    pub price: f64,
    /// Bedrooms.
    pub bedrooms: u32,
    /// Bathrooms, when known.
    pub bathrooms: Option<f64>,
    /// Living area in square metres, when known.
    pub living_m2: Option<f64>,
    /// Type, when the file records it.
    pub property_type: Option<PropertyType>,
    /// Zip or post code.
    pub zipcode: Option<String>,
    /// Latitude in degrees, when known.
    pub lat: Option<f64>,
    /// Longitude in degrees, when known.
    pub lon: Option<f64>,
    /// Place name for reasons: the suburb, or the zip code area.
    pub place: String,
    /// Date of the sale as `yyyymmdd`; picks the latest of several sales.
    pub sold_on: u32,
}

/// Reads the King County file.
pub fn read_king_county(path: &Path) -> Result<Loaded<Listing>, DatasetError> {
    let (mut reader, header) = open_csv(path)?;
    let col = |name: &str| header.require(name);
    let (c_id, c_date, c_price) = (col("id")?, col("date")?, col("price")?);
    let (c_bed, c_bath, c_sqft) = (col("bedrooms")?, col("bathrooms")?, col("sqft_living")?);
    let (c_zip, c_lat, c_lon) = (col("zipcode")?, col("lat")?, col("long")?);

    collect(path, reader.records(), |r| {
        let id = text(r, c_id)?.trim_matches('"');
        let zipcode = text(r, c_zip).map(|z| z.trim_matches('"').to_owned());
        Some(Listing {
            id: format!("kc-{id}"),
            market: Market::KingCounty,
            price: price(r, c_price)?,
            bedrooms: bedrooms(r, c_bed)?,
            bathrooms: number(r, c_bath).filter(|b| *b >= 0.0),
            living_m2: number(r, c_sqft)
                .filter(|s| *s > 0.0)
                .map(|s| s * SQFT_TO_M2),
            property_type: None,
            place: zipcode
                .as_ref()
                .map_or_else(|| "King County".into(), |z| format!("King County {z}")),
            zipcode,
            lat: number(r, c_lat).filter(|v| (-90.0..=90.0).contains(v)),
            lon: number(r, c_lon).filter(|v| (-180.0..=180.0).contains(v)),
            // `20141013T000000`
            sold_on: text(r, c_date)
                .and_then(|d| d.trim_matches('"').get(..8)?.parse().ok())
                .unwrap_or(0),
        })
    })
}

/// Reads the Melbourne file.
pub fn read_melbourne(path: &Path) -> Result<Loaded<Listing>, DatasetError> {
    let (mut reader, header) = open_csv(path)?;
    let col = |name: &str| header.require(name);
    let (c_suburb, c_address, c_rooms) = (col("Suburb")?, col("Address")?, col("Rooms")?);
    let (c_type, c_price, c_date) = (col("Type")?, col("Price")?, col("Date")?);
    let (c_post, c_bath, c_area) = (col("Postcode")?, col("Bathroom")?, col("BuildingArea")?);
    // The original header spells these so.
    let (c_lat, c_lon) = (col("Lattitude")?, col("Longtitude")?);

    collect(path, reader.records(), |r| {
        let (suburb, address) = (text(r, c_suburb)?, text(r, c_address)?);
        let key = format!("{}|{}", suburb.to_lowercase(), address.to_lowercase());
        let hash = xxhash_rust::xxh3::xxh3_64(key.as_bytes());
        Some(Listing {
            id: format!("mel-{hash:016x}"),
            market: Market::Melbourne,
            price: price(r, c_price)?,
            bedrooms: bedrooms(r, c_rooms)?,
            bathrooms: number(r, c_bath).filter(|b| *b >= 0.0),
            living_m2: number(r, c_area).filter(|a| *a > 0.0),
            property_type: text(r, c_type).and_then(PropertyType::parse),
            zipcode: postcode(r, c_post),
            lat: number(r, c_lat).filter(|v| (-90.0..=90.0).contains(v)),
            lon: number(r, c_lon).filter(|v| (-180.0..=180.0).contains(v)),
            place: suburb.to_owned(),
            sold_on: text(r, c_date).and_then(day_month_year).unwrap_or(0),
        })
    })
}

/// Parses rows with `parse`, skips (and counts) rows it refuses, and keeps only the latest
/// sale of each property id.
fn collect(
    path: &Path,
    records: csv::StringRecordsIter<'_, std::fs::File>,
    parse: impl Fn(&StringRecord) -> Option<Listing>,
) -> Result<Loaded<Listing>, DatasetError> {
    let mut rows: Vec<Listing> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut skipped = 0;
    for record in records {
        let Some(listing) = record.ok().as_ref().and_then(&parse) else {
            skipped += 1;
            continue;
        };
        match by_id.get(&listing.id) {
            Some(&i) if rows[i].sold_on <= listing.sold_on => rows[i] = listing,
            Some(_) => {}
            None => {
                by_id.insert(listing.id.clone(), rows.len());
                rows.push(listing);
            }
        }
    }
    if skipped > 0 {
        warn!(path = %path.display(), skipped, "catalogue rows skipped");
    }
    Ok(Loaded { rows, skipped })
}

fn price(r: &StringRecord, i: usize) -> Option<f64> {
    number(r, i).filter(|p| *p > 0.0)
}

fn bedrooms(r: &StringRecord, i: usize) -> Option<u32> {
    let b = number(r, i)?;
    (b >= 0.0 && b <= f64::from(MAX_BEDROOMS) && b.fract() == 0.0).then_some(b as u32)
}

/// `3067.0` is post code `3067`.
fn postcode(r: &StringRecord, i: usize) -> Option<String> {
    let raw = text(r, i)?;
    match raw.parse::<f64>() {
        Ok(v) if v.fract() == 0.0 && (0.0..1e7).contains(&v) => Some(format!("{}", v as u64)),
        _ => Some(raw.to_owned()),
    }
}

/// `3/12/2016` as `20161203`.
fn day_month_year(raw: &str) -> Option<u32> {
    let mut parts = raw.split('/').map(|p| p.trim().parse::<u32>().ok());
    let (d, m, y) = (parts.next()??, parts.next()??, parts.next()??);
    (d <= 31 && m <= 12).then_some(y * 10_000 + m * 100 + d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, body: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("leadbus-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        path
    }

    #[test]
    fn king_county_parses_quirks_and_keeps_latest_sale() {
        let row = |id: &str, date: &str, price: &str, beds: u32| {
            format!(
                "\"{id}\",\"{date}T000000\",{price},{beds},2.5,2000,1,\"1\",0,0,3,7,1,0,1990,0,\
                 \"98001\",47.5,-122.2,1,1\n"
            )
        };
        let header = "id,date,price,bedrooms,bathrooms,sqft_living,sqft_lot,floors,waterfront,\
                      view,condition,grade,sqft_above,sqft_basement,yr_built,yr_renovated,\
                      zipcode,lat,long,sqft_living15,sqft_lot15\n";
        let body = [
            row("0123", "20140502", "1.225e+006", 4),
            row("0123", "20150102", "1.3e+006", 4),
            row("9", "20140502", "300000", 33),
            row("8", "20140502", "", 3),
        ]
        .concat();
        let path = write("kc.csv", &format!("{header}{body}"));
        let loaded = read_king_county(&path).unwrap();
        assert_eq!(loaded.skipped, 2);
        assert_eq!(loaded.rows.len(), 1);
        let l = &loaded.rows[0];
        assert_eq!(l.id, "kc-0123");
        assert_eq!(l.price, 1_300_000.0);
        assert_eq!(l.zipcode.as_deref(), Some("98001"));
        assert_eq!(l.property_type, None);
    }

    #[test]
    fn melbourne_parses_types_and_postcodes() {
        let path = write(
            "mel.csv",
            "Suburb,Address,Rooms,Type,Price,Method,SellerG,Date,Distance,Postcode,Bedroom2,\
Bathroom,Car,Landsize,BuildingArea,YearBuilt,CouncilArea,Lattitude,Longtitude,Regionname,\
Propertycount\n\
Abbotsford,85 Turner St,2,h,1480000.0,S,Biggin,3/12/2016,2.5,3067.0,2.0,1.0,1.0,202.0,,,Yarra,\
-37.7996,144.9984,Northern Metropolitan,4019.0\n\
Abbotsford,1 X St,2,u,,S,Biggin,3/12/2016,2.5,3067.0,2.0,1.0,1.0,202.0,,,Yarra,,,N,1\n",
        );
        let loaded = read_melbourne(&path).unwrap();
        assert_eq!((loaded.rows.len(), loaded.skipped), (1, 1));
        let l = &loaded.rows[0];
        assert_eq!(l.property_type, Some(PropertyType::House));
        assert_eq!(l.zipcode.as_deref(), Some("3067"));
        assert_eq!(l.sold_on, 20_161_203);
        assert_eq!(l.living_m2, None);
        assert!(l.id.starts_with("mel-"));
    }
}
