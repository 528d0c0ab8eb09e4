//! The live dashboard end to end in headless Chromium: the page loads, connects with a token,
//! and shows an intelligence update published during the test. A screenshot is left in
//! `target/test-output/dashboard.png`.
//!
//! Chromium is driven over the DevTools protocol (a WebSocket), so the test waits on what the
//! page shows rather than on time. `LEADBUS_CHROMIUM` names another browser binary.

// Tests fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use leadbus_shared::client::Producer;
use leadbus_shared::event::{GeoPoint, Interaction, PropertyPreferences};
use leadbus_shared::{EventType, LeadEvent, LeadId, TenantId};
use leadbus_tests::{Platform, output_dir};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(60);

/// A DevTools protocol connection to the browser.
struct Cdp {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Cdp {
    /// Sends a command (to a page when `session` is given) and returns its result.
    async fn call(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            msg["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(msg.to_string()))
            .await
            .unwrap();
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("the browser answers")
                .unwrap()
                .unwrap();
            let Message::Text(text) = frame else { continue };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if reply["id"] == id {
                assert!(reply["error"].is_null(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Evaluates `expression` in the page and returns its value.
    async fn eval(&mut self, session: &str, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
                Some(session),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` until it is true.
    async fn wait_for(&mut self, session: &str, expression: &str) -> bool {
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            if self.eval(session, expression).await == json!(true) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

fn chromium() -> String {
    std::env::var("LEADBUS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let sextets: Vec<u8> = text.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for chunk in sextets.chunks(4) {
        let mut n = 0u32;
        for (i, s) in chunk.iter().enumerate() {
            n |= u32::from(*s) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

fn lead_event() -> LeadEvent {
    let mut e = LeadEvent::new(
        EventType::LeadCreated,
        TenantId::new("acme").unwrap(),
        LeadId::new("dash-lead").unwrap(),
    );
    e.data.source = Some("reference".into());
    e.data.interactions = vec![Interaction {
        kind: "site_visit".into(),
        at: e.occurred_at,
        duration_s: Some(900.0),
        page_views: Some(7.0),
        extra: Default::default(),
    }];
    e.data.property_preferences = Some(PropertyPreferences {
        bedrooms: Some(3),
        budget_min: Some(300_000.0),
        budget_max: Some(800_000.0),
        location: Some(GeoPoint {
            lat: 47.61,
            lon: -122.33,
            radius_km: Some(20.0),
        }),
        ..Default::default()
    });
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_connects_and_shows_intelligence_published_during_the_test() {
    let platform = Platform::start().await;
    let profile = tempfile::tempdir().unwrap();
    let mut browser = tokio::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-port=0",
            "--window-size=1440,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (apt-get install chromium, or set LEADBUS_CHROMIUM)",
                chromium()
            )
        });

    // Chromium prints where its DevTools endpoint listens.
    let mut lines = BufReader::new(browser.stderr.take().unwrap()).lines();
    let endpoint = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                return url.trim().to_owned();
            }
        }
        panic!("chromium exited without a DevTools endpoint");
    })
    .await
    .expect("chromium starts");
    // Keep draining its log so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let (socket, _) = tokio_tungstenite::connect_async(endpoint).await.unwrap();
    let mut cdp = Cdp { socket, next_id: 0 };

    let url = format!(
        "http://{}/?token={}",
        platform.gateway_addr,
        platform.token("acme")
    );
    let target = cdp
        .call("Target.createTarget", json!({"url": "about:blank"}), None)
        .await;
    let attached = cdp
        .call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
            None,
        )
        .await;
    let session = attached["sessionId"].as_str().unwrap().to_owned();
    cdp.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 1440, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
        Some(&session),
    )
    .await;
    cdp.call("Page.navigate", json!({"url": url}), Some(&session))
        .await;

    // The page connects...
    assert!(
        cdp.wait_for(
            &session,
            "document.getElementById('status')?.textContent === 'live'"
        )
        .await,
        "the page did not connect: status {}",
        cdp.eval(&session, "document.getElementById('status')?.textContent")
            .await
    );

    // ...and shows what is published now (a few leads, so the charts have something).
    let producer = Producer::new(platform.js().await);
    for lead in ["dash-a", "dash-b", "dash-c"] {
        let mut e = lead_event();
        e.lead_id = LeadId::new(lead).unwrap();
        e.event_type = EventType::InteractionRecorded;
        producer.publish(&e).await.unwrap();
    }
    producer.publish(&lead_event()).await.unwrap();
    let shown = "(() => { const c = document.querySelector('.card[data-lead=\"dash-lead\"]'); \
                 return !!c && c.querySelector('.score') !== null; })()";
    assert!(
        cdp.wait_for(&session, shown).await,
        "the update never appeared"
    );
    let card = cdp
        .eval(
            &session,
            "document.querySelector('.card[data-lead=\"dash-lead\"]').textContent",
        )
        .await;
    let card = card.as_str().unwrap();
    assert!(card.contains("churn risk"), "{card}");
    // The metrics poll has caught up too: the totals and the queues are drawn.
    assert!(
        cdp.wait_for(
            &session,
            "document.getElementById('k-events').textContent === '4' && \
             document.querySelectorAll('#queue .queue').length === 4"
        )
        .await,
        "the metrics panel never filled in"
    );

    let shot = cdp
        .call(
            "Page.captureScreenshot",
            json!({"format": "png"}),
            Some(&session),
        )
        .await;
    let png = decode_base64(shot["data"].as_str().unwrap());
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let path = output_dir().join("dashboard.png");
    std::fs::write(&path, &png).unwrap();
    println!("dashboard screenshot: {}", path.display());

    let _ = cdp.call("Browser.close", json!({}), None).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), browser.wait()).await;
    platform.stop().await;
}
