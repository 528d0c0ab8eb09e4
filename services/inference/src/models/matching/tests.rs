//! Matching on a small hand-made catalogue.

use leadbus_shared::event::GeoPoint;
use leadbus_shared::{LeadId, TenantId};

use super::*;
use crate::datasets::properties::{Market, PropertyType};

#[allow(clippy::too_many_arguments)]
fn listing(
    id: &str,
    market: Market,
    price: f64,
    bedrooms: u32,
    kind: Option<PropertyType>,
    zip: &str,
    (lat, lon): (f64, f64),
    m2: Option<f64>,
) -> Listing {
    Listing {
        id: id.into(),
        market,
        price,
        bedrooms,
        bathrooms: Some(1.0),
        living_m2: m2,
        property_type: kind,
        zipcode: Some(zip.into()),
        lat: Some(lat),
        lon: Some(lon),
        place: format!("place {zip}"),
        sold_on: 20160101,
    }
}

const MELBOURNE: (f64, f64) = (-37.80, 144.99);
const SEATTLE: (f64, f64) = (47.66, -122.34);

fn catalogue() -> Vec<Listing> {
    use Market::{KingCounty as Kc, Melbourne as Mel};
    use PropertyType::{House, Townhouse, Unit};
    let near_mel = (-37.801, 144.991);
    let east_mel = (-37.82, 145.00);
    let mut v = vec![
        listing(
            "mel-a",
            Mel,
            900_000.0,
            3,
            Some(House),
            "3067",
            MELBOURNE,
            Some(150.0),
        ),
        listing(
            "mel-b",
            Mel,
            600_000.0,
            2,
            Some(Unit),
            "3067",
            near_mel,
            Some(80.0),
        ),
        listing(
            "mel-c",
            Mel,
            800_000.0,
            3,
            Some(Townhouse),
            "3121",
            east_mel,
            None,
        ),
        listing(
            "mel-d",
            Mel,
            1_200_000.0,
            4,
            Some(House),
            "3121",
            east_mel,
            Some(220.0),
        ),
        listing(
            "kc-1",
            Kc,
            500_000.0,
            3,
            None,
            "98103",
            SEATTLE,
            Some(170.0),
        ),
    ];
    // Fifteen identical listings: only the id can order them.
    for i in (0..15).rev() {
        v.push(listing(
            &format!("kc-t{i:02}"),
            Kc,
            2e6,
            6,
            None,
            "98004",
            SEATTLE,
            None,
        ));
    }
    v
}

fn near(point: (f64, f64)) -> PropertyPreferences {
    PropertyPreferences {
        location: Some(GeoPoint {
            lat: point.0,
            lon: point.1,
            radius_km: None,
        }),
        ..PropertyPreferences::default()
    }
}

fn ids(m: &Matches) -> Vec<String> {
    m.items.iter().map(|i| i.property_id.clone()).collect()
}

#[test]
fn no_preferences_means_no_matches_with_the_reason() {
    let m = PropertyMatcher::new(catalogue());
    for prefs in [None, Some(&PropertyPreferences::default())] {
        let out = m.find(prefs);
        assert!(out.items.is_empty());
        assert_eq!(out.reason.as_deref(), Some(NO_PREFERENCES));
    }
    let profile = LeadProfile::new(TenantId::new("t").unwrap(), LeadId::new("l").unwrap());
    let out = m.run(&m.input(&profile)).unwrap();
    assert_eq!(out.reason.as_deref(), Some(NO_PREFERENCES));
}

#[test]
fn no_catalogue_means_no_matches_with_the_reason() {
    let m = PropertyMatcher::empty();
    let out = m.find(Some(&near(MELBOURNE)));
    assert!(out.items.is_empty());
    assert_eq!(out.reason.as_deref(), Some(NO_CATALOGUE));
    assert!(m.version().ends_with("catalogue-none"));
}

#[test]
fn hard_filters_apply() {
    let m = PropertyMatcher::new(catalogue());
    let budget = PropertyPreferences {
        budget_max: Some(700_000.0),
        ..near(MELBOURNE)
    };
    assert_eq!(ids(&m.find(Some(&budget))), ["mel-b"]);

    let beds = PropertyPreferences {
        bedrooms: Some(4),
        ..near(MELBOURNE)
    };
    assert_eq!(ids(&m.find(Some(&beds))), ["mel-d"]);

    let zip = PropertyPreferences {
        zipcode: Some("3121".into()),
        ..Default::default()
    };
    let mut got = ids(&m.find(Some(&zip)));
    got.sort_unstable();
    assert_eq!(got, ["mel-c", "mel-d"]);

    let house = PropertyPreferences {
        property_type: Some("house".into()),
        ..near(MELBOURNE)
    };
    let mut got = ids(&m.find(Some(&house)));
    got.sort_unstable();
    assert_eq!(got, ["mel-a", "mel-d"]);

    // King County records no type: a type filter leaves its listings in, and says so.
    let unit = PropertyPreferences {
        property_type: Some("unit".into()),
        budget_max: Some(1e6),
        ..near(SEATTLE)
    };
    let out = m.find(Some(&unit));
    assert_eq!(ids(&out), ["kc-1"]);
    assert!(
        out.items[0]
            .reasons
            .iter()
            .any(|r| r == "type not recorded in this catalogue")
    );
}

#[test]
fn top_ten_in_a_stable_order() {
    let m = PropertyMatcher::new(catalogue());
    let prefs = PropertyPreferences {
        bedrooms: Some(6),
        ..near(SEATTLE)
    };
    let out = m.find(Some(&prefs));
    let expected: Vec<String> = (0..10).map(|i| format!("kc-t{i:02}")).collect();
    assert_eq!(ids(&out), expected);
    assert_eq!(out, m.find(Some(&prefs)));
    // The same catalogue in another order gives the same answer and version.
    let mut shuffled = catalogue();
    shuffled.reverse();
    let other = PropertyMatcher::new(shuffled);
    assert_eq!(other.find(Some(&prefs)), out);
}

#[test]
fn scores_rank_the_closer_fit_first_with_reasons() {
    let m = PropertyMatcher::new(catalogue());
    let prefs = PropertyPreferences {
        bedrooms: Some(3),
        budget_min: Some(700_000.0),
        budget_max: Some(1_000_000.0),
        property_type: Some("house".into()),
        ..near(MELBOURNE)
    };
    let out = m.find(Some(&prefs));
    assert_eq!(ids(&out), ["mel-a"]);
    let item = &out.items[0];
    assert!((0.0..=1.0).contains(&item.score));
    assert_eq!(
        item.reasons[0],
        "price 900,000 AUD, within budget 700,000-1,000,000"
    );
    assert!(item.reasons[1].starts_with("0.0 km from the requested location"));

    let wide = PropertyPreferences {
        location: radius_km_or(&prefs, 50.0),
        ..prefs.clone()
    };
    let out = m.find(Some(&wide));
    for w in out.items.windows(2) {
        assert!(w[0].score >= w[1].score);
    }
}

fn radius_km_or(prefs: &PropertyPreferences, r: f64) -> Option<GeoPoint> {
    prefs.location.clone().map(|g| GeoPoint {
        radius_km: Some(r),
        ..g
    })
}

#[test]
fn an_empty_result_names_the_filter_that_emptied_it() {
    let m = PropertyMatcher::new(catalogue());
    let cases = [
        (
            PropertyPreferences {
                budget_max: Some(100.0),
                ..near(MELBOURNE)
            },
            "budget",
        ),
        (
            PropertyPreferences {
                bedrooms: Some(9),
                ..near(MELBOURNE)
            },
            "bedrooms",
        ),
        (near((0.0, 0.0)), "location"),
        (
            PropertyPreferences {
                zipcode: Some("00000".into()),
                ..Default::default()
            },
            "location",
        ),
        (
            PropertyPreferences {
                budget_min: Some(5e6),
                ..Default::default()
            },
            "budget",
        ),
        (
            PropertyPreferences {
                property_type: Some("castle".into()),
                ..near(MELBOURNE)
            },
            "type",
        ),
    ];
    for (prefs, filter) in cases {
        let out = m.find(Some(&prefs));
        assert!(out.items.is_empty(), "{prefs:?}");
        let reason = out.reason.unwrap_or_default();
        assert!(
            reason.contains(&format!("{filter} filter")),
            "{filter}: {reason}"
        );
    }
}
