//! The operations view and the trace page, against a real api and a fake collector.

use crate::helpers::{KNOWN_TRACE, dead_endpoint, ops_settings, spawn_api, spawn_fake_collector, spawn_gateway};

const API_READY: &str = "data-upstream=\"api\" data-ready=\"true\"";
const COLLECTOR_READY: &str = "data-upstream=\"telemetry-collector\" data-ready=\"true\"";
const COLLECTOR_NOT_READY: &str = "data-upstream=\"telemetry-collector\" data-ready=\"false\"";

#[tokio::test]
async fn ops_shows_the_api_ready_and_the_collector_not_configured() {
    let (api, _api) = spawn_api().await;
    let gateway = spawn_gateway(ops_settings(api, "")).await;
    let answer = gateway.get_until("/ops", |html| html.contains(API_READY)).await;
    assert_eq!(answer.status, 200);
    let html = String::from_utf8_lossy(&answer.body);
    assert!(html.contains(API_READY), "{html}");
    assert!(html.contains("id=\"readiness\""));
    assert!(html.contains(COLLECTOR_NOT_READY), "{html}");
    assert!(html.contains("The telemetry-collector is not configured"), "{html}");
    assert!(!html.contains("id=\"red\"") && !html.contains("id=\"traces\""), "{html}");
    assert!(!html.contains(" style=") && !html.contains("<script"), "{html}");
}

#[tokio::test]
async fn ops_shows_the_api_not_ready_while_it_is_down() {
    let (api, running) = spawn_api().await;
    drop(running);
    let gateway = spawn_gateway(ops_settings(api, "")).await;
    let (status, html) = gateway.text("/ops").await;
    assert_eq!(status, 200);
    let answer = gateway.get_until("/ops", |html| html.contains("not ready")).await;
    let html_after = String::from_utf8_lossy(&answer.body);
    assert!(html_after.contains("data-upstream=\"api\" data-ready=\"false\""), "{html_after}");
    assert!(html_after.contains("not ready"), "{html_after}");
    assert!(!html.contains(API_READY));
}

#[tokio::test]
async fn ops_shows_red_figures_per_rpc_and_the_recent_traces_from_the_collector() {
    let (api, _api) = spawn_api().await;
    let collector = spawn_fake_collector().await;
    let gateway = spawn_gateway(ops_settings(api, &collector.endpoint)).await;
    let answer = gateway.get_until("/ops", |html| html.contains("id=\"red\"") && html.contains(COLLECTOR_READY)).await;
    assert_eq!(answer.status, 200);
    let html = String::from_utf8_lossy(&answer.body);
    assert!(html.contains(COLLECTOR_READY), "{html}");
    let row_start = html
        .find("data-service=\"api\" data-span-name=\"axiom25.matrix.v1.MatrixService/Multiply\"")
        .unwrap_or_else(|| panic!("no Multiply row in {html}"));
    let row = &html[row_start..row_start + html[row_start..].find("</tr>").unwrap()];
    // 1 failed call in 11, p50 interpolated to 19 ms, p99 in the +Inf bucket: the highest bound.
    for figure in ["9.1 %", "19.0 ms", "100.0 ms", "/s"] {
        assert!(row.contains(figure), "{figure} missing from {row}");
    }
    assert!(html.contains("id=\"traces\""), "{html}");
    assert!(html.contains(&format!("href=\"/ops/traces/{KNOWN_TRACE}\"")), "{html}");
    assert!(collector.trace_queries.lock().unwrap().iter().all(|query| query == "limit=50"));
    let metrics = String::from_utf8(gateway.admin("/metrics").await.body.to_vec()).unwrap();
    for upstream in ["api", "telemetry-collector"] {
        let series = format!("axiom25_gateway_upstream_ready{{upstream=\"{upstream}\"}} ");
        assert!(metrics.contains(&series), "{series} missing from {metrics}");
    }
}

#[tokio::test]
async fn ops_says_collecting_until_it_has_two_reads_of_the_span_metrics() {
    let (api, _api) = spawn_api().await;
    let collector = spawn_fake_collector().await;
    let mut settings = ops_settings(api, &collector.endpoint);
    settings.ops.poll_interval_ms = 60_000;
    let gateway = spawn_gateway(settings).await;
    let answer = gateway.get_until("/ops", |html| html.contains(COLLECTOR_READY)).await;
    let html = String::from_utf8_lossy(&answer.body);
    assert!(html.contains("Collecting…"), "{html}");
    assert!(!html.contains("id=\"red\""), "{html}");
}

#[tokio::test]
async fn ops_passes_its_trace_filters_to_the_collector_and_refuses_bad_ones() {
    let (api, _api) = spawn_api().await;
    let collector = spawn_fake_collector().await;
    let gateway = spawn_gateway(ops_settings(api, &collector.endpoint)).await;
    let (status, html) = gateway.text("/ops?error=true&min_duration_ms=250").await;
    assert_eq!(status, 200);
    assert!(html.contains("name=\"error\" value=\"true\" checked"), "{html}");
    assert!(html.contains("value=\"250\""), "{html}");
    assert_eq!(
        collector.trace_queries.lock().unwrap().last().map(String::as_str),
        Some("limit=50&error=true&min_duration_ms=250")
    );

    let queries_before = collector.trace_queries.lock().unwrap().len();
    for bad in ["/ops?min_duration_ms=slow", "/ops?min_duration_ms=-1", "/ops?error=maybe"] {
        let (status, html) = gateway.text(bad).await;
        assert_eq!(status, 400, "{bad}");
        assert!(html.contains("must be"), "{bad}: {html}");
    }
    assert_eq!(collector.trace_queries.lock().unwrap().len(), queries_before, "a bad filter reached the collector");
}

#[tokio::test]
async fn ops_with_the_collector_down_shows_it_not_ready_and_still_answers() {
    let (api, _api) = spawn_api().await;
    let gateway = spawn_gateway(ops_settings(api, &dead_endpoint())).await;
    let answer = gateway.get_until("/ops", |html| html.contains("not ready")).await;
    assert_eq!(answer.status, 200);
    let html = String::from_utf8_lossy(&answer.body);
    assert!(html.contains(COLLECTOR_NOT_READY), "{html}");
    assert!(html.contains("id=\"traces-error\""), "{html}");
}

#[tokio::test]
async fn the_trace_page_shows_every_span_as_a_waterfall_with_its_service_and_the_logs() {
    let (api, _api) = spawn_api().await;
    let collector = spawn_fake_collector().await;
    let gateway = spawn_gateway(ops_settings(api, &collector.endpoint)).await;
    let answer = gateway.get(&format!("/ops/traces/{KNOWN_TRACE}")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("text/html; charset=utf-8"));
    let html = String::from_utf8_lossy(&answer.body);
    let spans: Vec<&str> = html.match_indices("<li class=\"span ").map(|(at, _)| &html[at..]).collect();
    assert_eq!(spans.len(), 3, "{html}");
    let services: Vec<&str> =
        spans.iter().map(|span| span.split("data-service=\"").nth(1).unwrap().split('"').next().unwrap()).collect();
    assert_eq!(services, ["ui-gateway", "ui-gateway", "api"]);
    // Nested by parent, each bar placed in proportion to the 40 ms trace.
    assert!(spans[0].starts_with("<li class=\"span d0 failed\""), "{}", &spans[0][..80]);
    assert!(spans[2].starts_with("<li class=\"span d2 failed\""), "{}", &spans[2][..80]);
    assert!(html.contains("x=\"250.0\" y=\"0\" width=\"500.0\""), "{html}");
    assert!(html.contains("20.0 ms") && html.contains("matrix is singular"), "{html}");
    assert!(html.contains("<dt>http.route</dt><dd>/api/v1/matrix/{op}</dd>"), "{html}");
    let logs = &html[html.find("id=\"logs\"").expect("logs section")..];
    let rows: Vec<&str> = logs.match_indices("<tr class=\"log\">").map(|(at, _)| &logs[at..]).collect();
    assert_eq!(rows.len(), 2, "{logs}");
    // In time order, each with its time, severity, service, message and fields.
    assert!(
        rows[0].starts_with(
            "<tr class=\"log\"><td>1970-01-01 00:00:01.012Z</td><td class=\"\">DEBUG</td><td>ui-gateway</td>\
             <td class=\"body\">Call finished</td><td class=\"fields\"></td></tr>"
        ),
        "{logs}"
    );
    assert!(
        rows[1].starts_with(
            "<tr class=\"log\"><td>1970-01-01 00:00:01.031Z</td><td class=\"warn\">WARN</td><td>api</td>\
             <td class=\"body\">Invert refused: matrix is singular</td>\
             <td class=\"fields\">operation=invert rpc.grpc.status_code=9</td></tr>"
        ),
        "{logs}"
    );
    assert!(!html.contains(" style=") && !html.contains("<script"), "{html}");
}

#[tokio::test]
async fn a_malformed_trace_id_is_refused_with_400() {
    let (api, _api) = spawn_api().await;
    let collector = spawn_fake_collector().await;
    let gateway = spawn_gateway(ops_settings(api, &collector.endpoint)).await;
    for bad in [
        "xyz",
        "4BF92F3577B34DA6A3CE929D0E0E4736",
        "4bf92f3577b34da6a3ce929d0e0e473",
        "4bf92f3577b34da6a3ce929d0e0e4736a",
    ] {
        let (status, html) = gateway.text(&format!("/ops/traces/{bad}")).await;
        assert_eq!(status, 400, "{bad}");
        assert!(html.contains("32 lowercase hexadecimal digits"), "{html}");
    }
}

#[tokio::test]
async fn an_unknown_trace_is_a_404_page_that_says_so() {
    let (api, _api) = spawn_api().await;
    let collector = spawn_fake_collector().await;
    let gateway = spawn_gateway(ops_settings(api, &collector.endpoint)).await;
    let (status, html) = gateway.text("/ops/traces/0123456789abcdef0123456789abcdef").await;
    assert_eq!(status, 404);
    assert!(html.contains("knows no trace 0123456789abcdef0123456789abcdef"), "{html}");
}

#[tokio::test]
async fn the_trace_page_is_a_503_page_while_the_collector_is_down_or_not_configured() {
    let (api, _api) = spawn_api().await;
    let down = spawn_gateway(ops_settings(api, &dead_endpoint())).await;
    let (status, html) = down.text(&format!("/ops/traces/{KNOWN_TRACE}")).await;
    assert_eq!(status, 503);
    assert!(html.contains("Collector unavailable") && html.contains("did not answer"), "{html}");
    let off = spawn_gateway(ops_settings(api, "")).await;
    let (status, html) = off.text(&format!("/ops/traces/{KNOWN_TRACE}")).await;
    assert_eq!(status, 503);
    assert!(html.contains("not configured"), "{html}");
}
