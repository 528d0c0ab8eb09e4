//! Measures property-matching latency over the real catalogue.
//!
//! Run with `cargo run --release -p leadbus-inference --example match_latency [DATA_DIR]`
//! (default: `LEADBUS_DATA_DIR`, else the `shared/data` found above the current directory).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use leadbus_inference::datasets::find_data_dir;
use leadbus_inference::models::{PropertyMatcher, load_catalogue};
use leadbus_shared::event::{GeoPoint, PropertyPreferences};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .or_else(|| find_data_dir(&std::env::current_dir().unwrap_or_default()));
    let Some(dir) = dir else {
        eprintln!("no data directory: pass one or set LEADBUS_DATA_DIR");
        std::process::exit(2);
    };
    let started = Instant::now();
    let matcher = PropertyMatcher::new(load_catalogue(&dir));
    println!(
        "catalogue: {} listings, loaded and indexed in {:?}",
        matcher.len(),
        started.elapsed()
    );

    let at = |lat, lon| {
        Some(GeoPoint {
            lat,
            lon,
            radius_km: None,
        })
    };
    let queries = [
        (
            "Seattle point, budget, 3+ bedrooms",
            PropertyPreferences {
                location: at(47.61, -122.33),
                budget_max: Some(800_000.0),
                bedrooms: Some(3),
                ..Default::default()
            },
        ),
        (
            "Melbourne point, house, 2+ bedrooms",
            PropertyPreferences {
                location: at(-37.81, 144.96),
                property_type: Some("house".into()),
                bedrooms: Some(2),
                ..Default::default()
            },
        ),
        (
            "zip code 98103 only",
            PropertyPreferences {
                zipcode: Some("98103".into()),
                ..Default::default()
            },
        ),
        (
            "budget 400k-600k only (price index)",
            PropertyPreferences {
                budget_min: Some(400_000.0),
                budget_max: Some(600_000.0),
                ..Default::default()
            },
        ),
        (
            "3+ bedrooms only (every listing scanned)",
            PropertyPreferences {
                bedrooms: Some(3),
                ..Default::default()
            },
        ),
    ];
    // One answer in full, to see what a lead would get.
    let sample = matcher.find(Some(&queries[0].1));
    for item in sample.items.iter().take(3) {
        println!(
            "  {} {:.3} {}",
            item.property_id,
            item.score,
            item.reasons.join("; ")
        );
    }
    for (name, prefs) in &queries {
        let mut times: Vec<Duration> = Vec::with_capacity(2000);
        let mut found = 0;
        for _ in 0..2000 {
            let t = Instant::now();
            let out = matcher.find(Some(prefs));
            times.push(t.elapsed());
            found = out.items.len();
        }
        times.sort();
        let pct = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
        println!(
            "{name:42} items {found:2}  min {:>8.1?}  p50 {:>8.1?}  p99 {:>8.1?}  max {:>8.1?}",
            pct(0.0),
            pct(0.50),
            pct(0.99),
            pct(1.0)
        );
    }
}
