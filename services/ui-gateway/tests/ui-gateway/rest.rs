//! The REST API of CONTRACTS §3 against a real api.

use serde_json::json;

use crate::helpers::spawn_pair;

#[tokio::test]
async fn multiply_returns_the_product_as_rows_with_a_trace_id() {
    let (gateway, _api) = spawn_pair().await;
    let answer = gateway.post_json("multiply", json!({"a": [[1, 2], [3, 4]], "b": [[5], [6]]})).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), json!({"result": [[17.0], [39.0]]}));
    let trace_id = answer.header("x-trace-id").expect("x-trace-id");
    assert!(
        trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{trace_id}"
    );
}

#[tokio::test]
async fn the_gateway_is_ready_while_its_api_is_down() {
    let (api, running) = crate::helpers::spawn_api().await;
    drop(running);
    let gateway = crate::helpers::spawn_gateway(crate::helpers::gateway_settings(api)).await;
    assert_eq!(gateway.admin("/readyz").await.status, 200);
    assert_eq!(gateway.get("/api/v1/openapi.json").await.status, 200);
}
