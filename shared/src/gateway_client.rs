//! A client of the gateway's HTTP API for Rust programs: take an event in, read its status,
//! a lead's latest intelligence, and the metrics document. One HTTP/1.1 connection per call.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::event::LeadEvent;
use crate::intel::Intelligence;
use crate::status::EventStatus;

/// A call to the gateway failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The base URL is not `http://host:port`.
    #[error("gateway URL must be http://host:port, not {0:?}")]
    Url(String),
    /// The gateway could not be reached, or the exchange broke off.
    #[error("gateway unreachable: {0}")]
    Transport(String),
    /// The gateway did not answer within the client's timeout.
    #[error("gateway did not answer within {0:?}")]
    Timeout(Duration),
    /// The gateway refused the call; `error` and `message` are its explanation.
    #[error("gateway answered {status}: {error}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Machine-readable class (`unauthorized`, `not_found`, ...).
        error: String,
        /// What was wrong.
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("unexpected answer from the gateway: {0}")]
    Decode(String),
}

/// What `POST /v1/events` answered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Accepted {
    /// The event's id (the idempotency key when one was given).
    pub event_id: String,
    /// Its sequence in LEAD_EVENTS.
    pub stream_sequence: Option<u64>,
    /// True when the event had been stored before (a retry).
    pub duplicate: bool,
}

/// A lead's latest intelligence and where it sits in LEAD_INTEL.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LatestIntelligence {
    /// LEAD_INTEL stream sequence.
    pub seq: u64,
    /// The intelligence.
    pub data: Intelligence,
}

/// The gateway's HTTP API, as one tenant (the token's).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use leadbus_shared::gateway_client::GatewayClient;
/// let gateway = GatewayClient::new("http://127.0.0.1:8080", "<jwt of the tenant>")?;
/// if let Some(status) = gateway.event_status("webhook-42").await? {
///     println!("{} is {:?}", status.event_id, status.status);
/// }
/// let metrics = gateway.metrics().await?;
/// println!("p95 processing: {} ms", metrics["processing_ms"]["p95"]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GatewayClient {
    authority: String,
    token: String,
    timeout: Duration,
}

impl GatewayClient {
    /// A client of the gateway at `base_url` (`http://host:port`) with a tenant's token.
    pub fn new(base_url: &str, token: &str) -> Result<Self, ApiError> {
        let authority = base_url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| ApiError::Url(base_url.to_owned()))?;
        Ok(GatewayClient {
            authority: authority.to_owned(),
            token: token.to_owned(),
            timeout: Duration::from_secs(10),
        })
    }

    /// Sets the longest wait for one call (10 s by default).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Takes an event in (`POST /v1/events`); `idempotency_key`, when given, becomes its id
    /// (in place of `event.event_id`), so a retry with the same key is stored once.
    pub async fn ingest(
        &self,
        event: &LeadEvent,
        idempotency_key: Option<&str>,
    ) -> Result<Accepted, ApiError> {
        let mut value = serde_json::to_value(event).map_err(|e| ApiError::Decode(e.to_string()))?;
        if let Some(key) = idempotency_key {
            value["event_id"] = Value::String(key.to_owned());
        }
        let body = serde_json::to_vec(&value).map_err(|e| ApiError::Decode(e.to_string()))?;
        let headers: Vec<(&str, &str)> = idempotency_key
            .map(|k| vec![("idempotency-key", k)])
            .unwrap_or_default();
        let value = self
            .call(Method::POST, "/v1/events", &headers, Some(body))
            .await?;
        serde_json::from_value(value).map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// The status of an event of the tenant; `None` when the gateway knows no such event.
    pub async fn event_status(&self, event_id: &str) -> Result<Option<EventStatus>, ApiError> {
        let path = format!("/v1/events/{event_id}");
        not_found_is_none(self.call(Method::GET, &path, &[], None).await)
    }

    /// The latest `intelligence_complete` of a lead of the tenant; `None` when there is none.
    pub async fn latest_intelligence(
        &self,
        lead: &str,
    ) -> Result<Option<LatestIntelligence>, ApiError> {
        let path = format!("/v1/leads/{lead}/intelligence");
        not_found_is_none(self.call(Method::GET, &path, &[], None).await)
    }

    /// The metrics document (`GET /v1/metrics`): totals, latency percentiles, events per
    /// second, queue depth per priority, cache hit rates and health flags.
    pub async fn metrics(&self) -> Result<Value, ApiError> {
        self.call(Method::GET, "/v1/metrics", &[], None).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Value, ApiError> {
        tokio::time::timeout(self.timeout, self.exchange(method, path, headers, body))
            .await
            .map_err(|_| ApiError::Timeout(self.timeout))?
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Value, ApiError> {
        let transport = |e: &dyn std::fmt::Display| ApiError::Transport(e.to_string());
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(|e| transport(&e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| transport(&e))?;
        // The connection runs until this one exchange is over.
        tokio::spawn(connection);

        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.authority.as_str())
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
            .header(hyper::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ApiError::Url(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| transport(&e))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| transport(&e))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::Decode(format!("{status}: {e}")))?;
        if status.is_success() {
            return Ok(value);
        }
        let text = |field: &str| value[field].as_str().unwrap_or_default().to_owned();
        Err(ApiError::Refused {
            status: status.as_u16(),
            error: text("error"),
            message: text("message"),
        })
    }
}

fn not_found_is_none<T: for<'de> Deserialize<'de>>(
    answer: Result<Value, ApiError>,
) -> Result<Option<T>, ApiError> {
    match answer {
        Ok(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(|e| ApiError::Decode(e.to_string())),
        Err(ApiError::Refused { status, .. }) if status == StatusCode::NOT_FOUND.as_u16() => {
            Ok(None)
        }
        Err(other) => Err(other),
    }
}
