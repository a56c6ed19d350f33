//! gRPC health (tied to readiness), server reflection v1 and v1alpha, and the admin endpoints.

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{http_get, spawn_app};

#[tokio::test]
async fn health_reports_serving_for_the_server_and_the_matrix_service() {
    let app = spawn_app().await;
    let mut health = HealthClient::new(app.channel.clone());
    for service in ["", "axiom25.matrix.v1.MatrixService"] {
        let response = health.check(HealthCheckRequest { service: service.into() }).await.expect("check");
        assert_eq!(response.into_inner().status(), ServingStatus::Serving, "service {service:?}");
    }
    let unknown = health.check(HealthCheckRequest { service: "nope.Service".into() }).await;
    assert_eq!(unknown.expect_err("unknown service").code(), tonic::Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_matrix_and_health_services() {
    let app = spawn_app().await;

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient as V1Client;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest as V1Request;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse as V1Response;
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(V1Request::ListServices(String::new())),
    };
    let mut stream = V1Client::new(app.channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("v1 reflection")
        .into_inner();
    let response = stream.message().await.expect("answer").expect("one message");
    let Some(V1Response::ListServicesResponse(list)) = response.message_response else { panic!("not a list") };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["axiom25.matrix.v1.MatrixService", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }

    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::FileContainingSymbol("axiom25.matrix.v1.MatrixService".into())),
    };
    let mut stream = AlphaClient::new(app.channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("v1alpha reflection")
        .into_inner();
    let response = stream.message().await.expect("answer").expect("one message");
    let Some(AlphaResponse::FileDescriptorResponse(files)) = response.message_response else { panic!("no file") };
    assert!(!files.file_descriptor_proto.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn admin_port_serves_livez_readyz_and_metrics() {
    let app = spawn_app().await;
    assert_eq!(http_get(app.admin_addr, "/livez").await.0, 200);
    assert_eq!(http_get(app.admin_addr, "/readyz").await, (200, "ready\n".into()));
    let (status, body) = http_get(app.admin_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("axiom25_build_info{service=\"api\""), "{body}");
    assert_eq!(http_get(app.admin_addr, "/nope").await.0, 404);
    app.stop().await;
}

#[tokio::test]
async fn the_healthcheck_command_exits_zero_only_while_the_api_is_ready() {
    let mut api = crate::helpers::ApiProcess::start(&[]).await;
    let healthcheck = |port: u16| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_axiom25-api"))
            .arg("healthcheck")
            .env_clear()
            .env("AXIOM25__SERVER__ADMIN_PORT", port.to_string())
            .env("AXIOM25__SERVER__GRPC_PORT", "0")
            .status()
    };
    let admin_port = api.admin_addr.port();
    assert!(healthcheck(admin_port).await.expect("runs").success());
    api.terminate().await;
    api.child.wait().await.expect("exits");
    assert!(!healthcheck(admin_port).await.expect("runs").success());
}
