//! `leadbus rebuild` as a real process: it refuses to run beside a consuming inference service
//! (whose profile writes it could overwrite) unless forced, and runs where none consumes.

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output, Stdio};

use leadbus_inference::consume::discovery_name;
use leadbus_shared::subjects::EVENTS_STREAM;
use leadbus_tests::{Platform, data_dir};

fn rebuild(platform: &Platform, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leadbus"))
        .arg("rebuild")
        .args(extra)
        .env("LEADBUS_NATS_URL", platform.nats.url())
        .env("LEADBUS_REDIS_URL", platform.redis.url())
        .env("LEADBUS_DATA_DIR", data_dir())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_refuses_while_inference_consumes_unless_forced() {
    let platform = Platform::start().await;
    // The service's discovery consumer must be pulling before the check can see it.
    let js = platform.js().await;
    let pulling = leadbus_tests::eventually(std::time::Duration::from_secs(20), || {
        let js = js.clone();
        async move {
            let Ok(stream) = js.get_stream(EVENTS_STREAM).await else {
                return false;
            };
            stream
                .consumer_info(discovery_name())
                .await
                .is_ok_and(|i| i.num_waiting > 0)
        }
    })
    .await;
    assert!(pulling, "the inference service never started pulling");

    let refused = rebuild(&platform, &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "rebuild ran beside a consuming service"
    );
    assert!(
        stderr.contains("an inference service is consuming"),
        "{stderr}"
    );

    let forced = rebuild(&platform, &["--force"]);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_runs_where_no_inference_service_ever_consumed() {
    let platform = Platform::gateway_only(|_| {}).await;
    let out = rebuild(&platform, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("rebuild: 0 events read"));
    platform.stop().await;
}
