//! The pages' stylesheet and script, embedded in the binary and served under `/assets/<name>`;
//! their URLs carry a content hash, so a versioned URL may be cached for good.

use std::sync::LazyLock;

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::problem::Problem;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: [Asset; 2] = [
    Asset { name: "app.css", content_type: "text/css; charset=utf-8", body: include_bytes!("../../assets/app.css") },
    Asset {
        name: "calc.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/calc.js"),
    },
];

/// First 16 hex digits of each asset's SHA-256, in the order of `ASSETS`.
static VERSIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| Sha256::digest(asset.body).iter().take(8).map(|byte| format!("{byte:02x}")).collect())
        .collect()
});

fn find(name: &str) -> Option<(&'static Asset, &'static str)> {
    let index = ASSETS.iter().position(|asset| asset.name == name)?;
    Some((&ASSETS[index], VERSIONS[index].as_str()))
}

/// The versioned URL of an embedded asset.
///
/// # Panics
/// When no asset has that name (a programming error caught by every page test).
#[must_use]
pub fn href(name: &str) -> String {
    let (asset, version) = find(name).unwrap_or_else(|| panic!("no embedded asset {name}"));
    format!("/assets/{}?v={version}", asset.name)
}

#[derive(Deserialize)]
pub(super) struct Version {
    v: Option<String>,
}

/// `GET /assets/{name}`: immutable for a year under its current versioned URL, revalidated by ETag
/// under any other.
pub(super) async fn serve(Path(name): Path<String>, Query(query): Query<Version>, headers: HeaderMap) -> Response {
    let Some((asset, version)) = find(&name) else {
        return Problem::not_found(&format!("/assets/{name}")).into_response();
    };
    let etag = format!("\"{version}\"");
    let cache = if query.v.as_deref() == Some(version) { "public, max-age=31536000, immutable" } else { "no-cache" };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let mut response = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { asset.body.into_response() };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    response
}
