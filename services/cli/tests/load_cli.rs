//! `leadbus load --check` as a real process against a running platform, with more events than
//! a producer may keep awaiting their ack: the publisher must keep going, and every event must
//! come back through the gateway.

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use leadbus_shared::client::MAX_UNACKED_PUBLISHES;
use leadbus_tests::{Platform, data_dir};

/// The header and the first `rows` leads of the evaluation file, in a file of the test's own.
fn eval_subset(dir: &std::path::Path, rows: usize) -> std::path::PathBuf {
    let text = std::fs::read_to_string(data_dir().join("leads/eval.csv")).unwrap();
    let path = dir.join("leads.csv");
    let mut out = std::fs::File::create(&path).unwrap();
    for line in text.lines().take(rows + 1) {
        writeln!(out, "{line}").unwrap();
    }
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_publishes_more_than_the_ack_bound_and_accounts_for_every_event() {
    let platform = Platform::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Each lead makes one to three events: well over the bound in all.
    let leads = eval_subset(dir.path(), MAX_UNACKED_PUBLISHES * 2);

    let mut child = Command::new(env!("CARGO_BIN_EXE_leadbus"))
        .args([
            "load",
            "--check",
            "--tenant",
            "load_cli",
            "--idle-timeout-secs",
            "30",
        ])
        .arg("--leads")
        .arg(&leads)
        .env("LEADBUS_NATS_URL", platform.nats.url())
        .env("LEADBUS_GATEWAY_LISTEN", platform.gateway_addr.to_string())
        .env("LEADBUS_JWT_SECRET", &platform.config.jwt_secret)
        .env("LEADBUS_DATA_DIR", data_dir())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    // A stalled publisher never exits: give up on it rather than hang the suite.
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("leadbus load did not finish in 300 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let report = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    assert!(status.success(), "leadbus load failed: {status}\n{report}");
    assert!(report.contains("events lost                0"), "{report}");

    platform.stop().await;
}
