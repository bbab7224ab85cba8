//! The web console: three static files (`platform/http/console/`,
//! described in `docs/console.md`) embedded in the binary, so `fjord
//! server` alone serves it. It renders in the browser from the JSON API.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;

const INDEX: &str = include_str!("../console/index.html");
const APP: &str = include_str!("../console/app.js");
const STYLE: &str = include_str!("../console/style.css");

// Not cached: a rebuilt broker serves its own console after a reload.
fn file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
        body,
    )
}

pub(crate) async fn index() -> impl IntoResponse {
    file("text/html; charset=utf-8", INDEX)
}

pub(crate) async fn app() -> impl IntoResponse {
    file("text/javascript; charset=utf-8", APP)
}

pub(crate) async fn style() -> impl IntoResponse {
    file("text/css; charset=utf-8", STYLE)
}
