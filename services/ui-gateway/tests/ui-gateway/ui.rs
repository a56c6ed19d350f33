//! The web calculator page and its embedded assets.

use axiom25_ui_gateway::security::key_hash_line;
use http::Method;

use crate::helpers::{gateway_settings, spawn_api, spawn_gateway, spawn_pair};

/// The ids the browser tests drive the calculator by.
const FIXED_IDS: [&str; 14] = [
    "calc",
    "op",
    "kind",
    "a",
    "b",
    "compute",
    "a-error",
    "b-error",
    "kind-error",
    "form-error",
    "result",
    "elapsed",
    "trace-link",
    "trace",
];

/// `/assets/...` URLs a page refers to.
fn asset_urls(html: &str) -> Vec<String> {
    html.split(['"', '\'']).filter(|part| part.starts_with("/assets/")).map(str::to_owned).collect()
}

/// Fails when `html` has an inline script, an inline style or an event handler attribute, which
/// the gateway's Content-Security-Policy would block.
fn assert_nothing_inline(html: &str) {
    for (at, _) in html.match_indices("<script") {
        let tag = &html[at..at + html[at..].find('>').expect("closed tag")];
        assert!(tag.contains(" src=\"/assets/"), "inline or foreign script: {tag}");
    }
    assert!(!html.contains(" style="), "inline style attribute in {html}");
    assert!(!html.contains("<style"), "style block in {html}");
    for handler in [" onclick=", " onload=", " onsubmit=", " onchange=", " oninput=", " onerror="] {
        assert!(!html.contains(handler), "{handler} in {html}");
    }
}

#[tokio::test]
async fn the_calculator_has_the_fixed_ids_and_nothing_inline_or_from_another_host() {
    let (gateway, _api) = spawn_pair().await;
    let answer = gateway.get("/").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(answer.header("content-security-policy").is_some_and(|csp| csp.contains("script-src 'self'")));
    let html = String::from_utf8(answer.body.to_vec()).unwrap();
    for id in FIXED_IDS {
        assert!(html.contains(&format!("id=\"{id}\"")), "#{id} missing");
    }
    assert!(html.contains("<form id=\"calc\""));
    assert!(html.contains("<textarea id=\"a\"") && html.contains("<textarea id=\"b\""));
    assert!(html.contains("<a id=\"trace-link\""));
    for op in ["multiply", "solve", "invert", "determinant", "decompose", "analyze"] {
        assert!(html.contains(&format!("<option value=\"{op}\"")), "op {op} missing");
    }
    for kind in ["lu", "qr", "cholesky", "svd", "eigen"] {
        assert!(html.contains(&format!("<option value=\"{kind}\"")), "kind {kind} missing");
    }
    assert!(html.contains("<label for=\"a\">") && html.contains("<label for=\"op\">"));
    assert!(!html.contains("id=\"api-key\""), "no key field without keys");
    assert_nothing_inline(&html);
    assert!(!html.contains("http://") && !html.contains("https://"), "a reference to another host");
}

#[tokio::test]
async fn the_calculator_asks_for_an_api_key_when_keys_are_required() {
    let (api, _api) = spawn_api().await;
    let keys = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(keys.path(), key_hash_line("s3cret") + "\n").unwrap();
    let mut settings = gateway_settings(api);
    settings.auth.api_keys_file = Some(keys.path().to_owned());
    let gateway = spawn_gateway(settings).await;
    let (status, html) = gateway.text("/").await;
    assert_eq!(status, 200);
    assert!(html.contains("<label for=\"api-key\">API key</label>"), "{html}");
    assert!(html.contains("<input id=\"api-key\" name=\"api-key\" type=\"password\""), "{html}");
    // The page itself needs no key; the REST API does.
    assert_eq!(gateway.post_json("determinant", serde_json::json!({"a": [[1]]})).await.status, 401);
}

#[tokio::test]
async fn assets_have_their_content_types_and_are_cached_for_good_only_under_their_versioned_url() {
    let (gateway, _api) = spawn_pair().await;
    let (_, html) = gateway.text("/").await;
    let urls = asset_urls(&html);
    assert_eq!(urls.len(), 2, "{urls:?}");
    for url in &urls {
        let answer = gateway.get(url).await;
        assert_eq!(answer.status, 200, "{url}");
        let expected = if url.starts_with("/assets/app.css?v=") {
            "text/css; charset=utf-8"
        } else {
            assert!(url.starts_with("/assets/calc.js?v="), "{url}");
            "text/javascript; charset=utf-8"
        };
        assert_eq!(answer.header("content-type"), Some(expected), "{url}");
        assert_eq!(answer.header("cache-control"), Some("public, max-age=31536000, immutable"), "{url}");
        let text = String::from_utf8(answer.body.to_vec()).unwrap();
        assert!(!text.contains("http://") && !text.contains("https://"), "{url} names another host");

        let unversioned = url.split('?').next().unwrap();
        let answer = gateway.get(unversioned).await;
        assert_eq!(answer.header("cache-control"), Some("no-cache"), "{unversioned}");
        let etag = answer.header("etag").expect("etag").to_owned();
        let revalidated = gateway.send(Method::GET, unversioned, &[("if-none-match", &etag)], "").await;
        assert_eq!(revalidated.status, 304, "{unversioned}");
        assert!(revalidated.body.is_empty());
    }
    let missing = gateway.get("/assets/app.js").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-type"), Some("application/problem+json"));
}

#[tokio::test]
async fn the_calculator_page_with_its_assets_weighs_under_100_kb() {
    let (gateway, _api) = spawn_pair().await;
    let page = gateway.get("/").await;
    let mut weight = page.body.len();
    let urls = asset_urls(&String::from_utf8_lossy(&page.body));
    assert!(!urls.is_empty());
    for url in urls {
        let asset = gateway.get(&url).await;
        assert_eq!(asset.status, 200, "{url}");
        weight += asset.body.len();
    }
    assert!(weight < 100 * 1024, "/ weighs {weight} bytes");
}

#[tokio::test]
async fn the_script_calls_the_rest_api_and_links_the_trace_it_answers_with() {
    let (gateway, _api) = spawn_pair().await;
    let (_, html) = gateway.text("/").await;
    let script = asset_urls(&html).into_iter().find(|url| url.contains("calc.js")).expect("the calculator script");
    let js = String::from_utf8(gateway.get(&script).await.body.to_vec()).unwrap();
    for needle in ["'/api/v1/matrix/'", "'x-trace-id'", "'/ops/traces/'", "'Bearer '", "sessionStorage", "pointer"] {
        assert!(js.contains(needle), "calc.js lacks {needle}");
    }
    assert!(!js.contains("localStorage"), "the API key must stay in sessionStorage");
}
