//! `GET /`: the live dashboard, one static page built into the binary (no build step). It
//! asks for a token, then reads `/v1/ws` and polls `/v1/metrics` with it.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("../../dashboard/index.html");

/// The page.
pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}
