//! `leadbus bench --quick` as a real process: it starts its own servers and services, runs
//! two scenarios in seconds, and writes JSON and a PNG. No timing is asserted: figures on a
//! shared machine say nothing about correctness.

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};

use leadbus_tests::data_dir;

#[test]
fn a_quick_bench_run_reports_every_chosen_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let png = dir.path().join("bench.png");
    let out = Command::new(env!("CARGO_BIN_EXE_leadbus"))
        .args(["bench", "--quick", "--scenario", "steady,cache", "--json"])
        .arg(&json)
        .arg("--plot")
        .arg(&png)
        .env("LEADBUS_DATA_DIR", data_dir())
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "bench exited with {}", out.status);
    let table = String::from_utf8_lossy(&out.stdout);
    for row in ["steady 500/s", "cache: re-score"] {
        assert!(table.contains(row), "no {row:?} row in:\n{table}");
    }
    // Smoke sizes say nothing about the targets, and the table says so.
    assert!(table.contains("not judged on a --quick run"), "{table}");
    assert!(!table.contains("MISSED"), "{table}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let names: Vec<&str> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["steady", "cache"]);
    assert!(report["raw"]["publish_per_s"].as_f64().unwrap() > 0.0);
    for scenario in report["scenarios"].as_array().unwrap() {
        for phase in scenario["phases"].as_array().unwrap() {
            assert!(phase["received"].as_u64().unwrap() > 0, "{phase}");
            assert_eq!(phase["duplicates"], 0, "{phase}");
        }
        assert!(scenario["peak_memory_kib"]["inference"].as_u64().unwrap() > 0);
    }
    assert!(std::fs::metadata(&png).unwrap().len() > 0);
}
