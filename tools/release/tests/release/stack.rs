//! The release tool on the real container stack (docker compose, own project and ports) under
//! continuous load from REST clients (through the ui-gateway) and direct gRPC clients (through
//! `127.0.0.1:<api port>`), each holding one connection for the whole test. Every local-stack
//! command of docs/ops/runbooks/deployment_procedures.md is run here, as written.
//!
//! Needs the images (`make images TAG=<tag>`); runs when `AXIOM25_RELEASE_STACK_TAG` names that
//! tag (`make release-stack-test` sets it), and writes its figures to the file named by
//! `AXIOM25_RELEASE_REPORT` when set.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient;
use axiom25_proto::matrix::v1::{DeterminantRequest, Matrix};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::Value;
use tokio::process::Command;
use tokio::sync::watch;

const PROJECT: &str = "axiom25-reltest";
/// Host ports of the test stack, clear of the default stack's.
const PORTS: &[(&str, u16)] = &[
    ("AXIOM25_API_PORT", 25051),
    ("AXIOM25_API_ADMIN_PORT", 25081),
    ("AXIOM25_SWITCH_ADMIN_PORT", 25059),
    ("AXIOM25_BLUE_PORT", 25061),
    ("AXIOM25_BLUE_ADMIN_PORT", 25083),
    ("AXIOM25_GREEN_PORT", 25062),
    ("AXIOM25_GREEN_ADMIN_PORT", 25084),
    ("AXIOM25_GATEWAY_PORT", 25080),
    ("AXIOM25_GATEWAY_ADMIN_PORT", 25082),
    ("AXIOM25_COLLECTOR_GRPC_PORT", 25317),
    ("AXIOM25_COLLECTOR_HTTP_PORT", 25318),
    ("AXIOM25_COLLECTOR_ADMIN_PORT", 25888),
    ("AXIOM25_PROMETHEUS_PORT", 25090),
    ("AXIOM25_ALERTMANAGER_PORT", 25093),
];
/// Each load client's most calls, so the loops are bounded whatever happens.
const MAX_CALLS_PER_CLIENT: usize = 200_000;
/// Versions the runbook releases (image tags made from the test tag).
const DOC_VERSIONS: [&str; 2] = ["1.1.0", "1.1.1"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis()
}

fn port(name: &str) -> u16 {
    PORTS.iter().find(|(key, _)| *key == name).expect("known port").1
}

/// Every variable the stack, make and the tool need to use the test stack.
fn stack_env(tag: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = PORTS.iter().map(|(k, v)| ((*k).to_owned(), v.to_string())).collect();
    let switch_admin = format!("127.0.0.1:{}", port("AXIOM25_SWITCH_ADMIN_PORT"));
    for (key, value) in [
        ("TAG", tag.to_owned()),
        ("COMPOSE_PROJECT", PROJECT.to_owned()),
        ("AXIOM25_RELEASE_PROJECT", PROJECT.to_owned()),
        ("AXIOM25_RELEASE_SWITCH_ADMIN", switch_admin),
        ("AXIOM25_RELEASE_BLUE_PORT", port("AXIOM25_BLUE_PORT").to_string()),
        ("AXIOM25_RELEASE_GREEN_PORT", port("AXIOM25_GREEN_PORT").to_string()),
        ("AXIOM25_RELEASE_BLUE_ADMIN_PORT", port("AXIOM25_BLUE_ADMIN_PORT").to_string()),
        ("AXIOM25_RELEASE_GREEN_ADMIN_PORT", port("AXIOM25_GREEN_ADMIN_PORT").to_string()),
        ("AXIOM25_RELEASE_PROMETHEUS", format!("http://127.0.0.1:{}", port("AXIOM25_PROMETHEUS_PORT"))),
        ("AXIOM25_RELEASE_STATE_DIR", root().join("target/release-state-test").display().to_string()),
        ("RELEASE_FLAGS", "--analysis-window 20 --poll-ms 1000 --min-calls 20 --rollback-window 0".to_owned()),
        // The images are built before the test; cargo holds its build lock while tests run.
        ("UP_DEPS", "host-up".to_owned()),
        ("RELEASE_BIN", env!("CARGO_BIN_EXE_axiom25-release").to_owned()),
    ] {
        env.push((key.to_owned(), value));
    }
    env
}

/// What one command did: exit code, stdout's JSON events, when it started and ended.
struct Ran {
    code: i32,
    events: Vec<Value>,
    started_ms: u128,
    ended_ms: u128,
}

impl Ran {
    /// The release tool's own exit code, from its closing `release` event: make answers every
    /// failed recipe with 2, so through `make release` only the event tells 3 from 1.
    fn tool_exit_code(&self) -> Option<i64> {
        self.events.iter().rev().find(|event| event["event"] == "release")?["exit_code"].as_i64()
    }

    fn step(&self, step: &str) -> Option<&Value> {
        self.events.iter().rev().find(|event| event["step"] == step)
    }

    /// When `step` started (its event's time minus its duration).
    fn step_started_ms(&self, step: &str) -> Option<u128> {
        let event = self.step(step)?;
        Some(event["time_unix_ms"].as_u64()? as u128 - event["duration_ms"].as_u64()? as u128)
    }
}

async fn sh(line: &str, env: &[(String, String)]) -> Ran {
    let started_ms = now_ms();
    let output = Command::new("bash")
        .args(["-c", line])
        .current_dir(root())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let events = stdout.lines().filter_map(|line| serde_json::from_str::<Value>(line).ok()).collect();
    let code = output.status.code().unwrap_or(-1);
    if code != 0 {
        eprintln!("`{line}` exited {code}\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    }
    Ran { code, events, started_ms, ended_ms: now_ms() }
}

/// One call a load client made.
#[derive(Debug, Clone)]
struct Call {
    started_ms: u128,
    ok: bool,
    release: String,
    client: &'static str,
}

type CallLog = Arc<Mutex<Vec<Call>>>;

fn two_by_two() -> Option<Matrix> {
    Some(Matrix { rows: 2, cols: 2, data: vec![1.0, 2.0, 3.0, 4.0] })
}

async fn grpc_client(endpoint: String, log: CallLog, mut stop: watch::Receiver<bool>) {
    let channel = tonic::transport::Endpoint::from_shared(endpoint).expect("uri").connect_lazy();
    let mut client = MatrixServiceClient::new(channel);
    for _ in 0..MAX_CALLS_PER_CLIENT {
        if *stop.borrow() {
            return;
        }
        let started_ms = now_ms();
        let mut request = tonic::Request::new(DeterminantRequest { a: two_by_two() });
        request.set_timeout(Duration::from_secs(5));
        let (ok, release) = match client.determinant(request).await {
            Ok(answer) => {
                let release = answer.metadata().get("x-axiom25-release").and_then(|v| v.to_str().ok()).unwrap_or("");
                ((answer.get_ref().value + 2.0).abs() < 1e-9, release.to_owned())
            }
            Err(status) => (false, format!("error {:?}", status.code())),
        };
        log.lock().expect("lock").push(Call { started_ms, ok, release, client: "grpc" });
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn rest_client(url: String, log: CallLog, mut stop: watch::Receiver<bool>) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    for _ in 0..MAX_CALLS_PER_CLIENT {
        if *stop.borrow() {
            return;
        }
        let started_ms = now_ms();
        let request = hyper::Request::post(&url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(br#"{"a": [[1, 2], [3, 4]]}"#)))
            .expect("request");
        let answer = tokio::time::timeout(Duration::from_secs(5), client.request(request)).await;
        let (ok, release) = match answer {
            Ok(Ok(response)) => {
                let status = response.status();
                let release =
                    response.headers().get("x-axiom25-release").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let body = response.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
                let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                (status == 200 && value["value"].as_f64().is_some_and(|v| (v + 2.0).abs() < 1e-9), release)
            }
            Ok(Err(error)) => (false, format!("error {error}")),
            Err(_) => (false, "timeout".to_owned()),
        };
        log.lock().expect("lock").push(Call { started_ms, ok, release, client: "rest" });
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Calls started in `[from, to)`.
fn calls(log: &CallLog, from: u128, to: u128) -> Vec<Call> {
    log.lock().expect("lock").iter().filter(|call| call.started_ms >= from && call.started_ms < to).cloned().collect()
}

/// Milliseconds from `from` until every later call (to `to`) was answered by `release`, or None.
fn follow_ms(log: &CallLog, from: u128, to: u128, release: &str) -> Option<u128> {
    let window = calls(log, from, to);
    let last_other = window.iter().filter(|call| call.release != release).map(|call| call.started_ms).max();
    let any_new = window.iter().any(|call| call.release == release);
    if !any_new {
        return None;
    }
    Some(last_other.map_or(0, |at| at.saturating_sub(from)))
}

fn failed(log: &CallLog, from: u128, to: u128) -> usize {
    calls(log, from, to).iter().filter(|call| !call.ok).count()
}

fn runbook_commands() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("docs/ops/runbooks/deployment_procedures.md")).expect("runbook");
    let mut commands = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.trim() == "```sh local" {
            inside = true;
        } else if line.trim() == "```" {
            inside = false;
        } else if inside && !line.trim().is_empty() {
            commands.push(line.trim().to_owned());
        }
    }
    commands
}

fn percentile(values: &mut [u128], p: f64) -> u128 {
    values.sort_unstable();
    values[((values.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_switch_and_roll_back_under_load_on_the_container_stack() {
    let Ok(tag) = std::env::var("AXIOM25_RELEASE_STACK_TAG") else {
        eprintln!("skipping: set AXIOM25_RELEASE_STACK_TAG (make release-stack-test) to run on the container stack");
        return;
    };
    let env = stack_env(&tag);
    let mut executed: Vec<String> = Vec::new();
    let down = format!(
        "docker-compose -f infrastructure/docker/docker-compose.yml -p {PROJECT} down --volumes --remove-orphans"
    );
    let _ = sh(&down, &env).await;
    for version in DOC_VERSIONS {
        assert_eq!(sh(&format!("docker tag axiom25/api:{tag} axiom25/api:{version}"), &env).await.code, 0);
    }

    let up = sh("make up", &env).await;
    executed.push("make up".into());
    assert_eq!(up.code, 0, "the stack starts");
    let status = sh("make release-status", &env).await;
    executed.push("make release-status".into());
    assert_eq!(status.code, 0);
    assert_eq!(status.events.last().expect("status")["state"]["active"], "blue");

    // Continuous load: two direct gRPC clients, two REST clients, one connection each.
    let log: CallLog = Arc::new(Mutex::new(Vec::new()));
    let (stop, stopped) = watch::channel(false);
    let grpc = format!("http://127.0.0.1:{}", port("AXIOM25_API_PORT"));
    let rest = format!("http://127.0.0.1:{}/api/v1/matrix/determinant", port("AXIOM25_GATEWAY_PORT"));
    let mut clients = Vec::new();
    for _ in 0..2 {
        clients.push(tokio::spawn(grpc_client(grpc.clone(), log.clone(), stopped.clone())));
        clients.push(tokio::spawn(rest_client(rest.clone(), log.clone(), stopped.clone())));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut figures: BTreeMap<&str, Vec<u128>> = BTreeMap::new();
    let mut failures: BTreeMap<&str, usize> = BTreeMap::new();

    // A good release: 0 failed calls, everyone on green within 5 s of the switch.
    let good = sh("make release VERSION=1.1.0", &env).await;
    executed.push("make release VERSION=1.1.0".into());
    assert_eq!(good.code, 0, "promoted");
    let switched = good.step_started_ms("switch").expect("switch event");
    let followed = follow_ms(&log, switched, good.ended_ms, "green/1.1.0").expect("green served");
    assert!(followed <= 5_000, "all calls on green {followed} ms after the switch");
    assert_eq!(failed(&log, good.started_ms, good.ended_ms), 0, "no failed call during a good release");
    figures.entry("switch_ms").or_default().push(followed);

    // make rollback: back to blue (scaled down after the good release, so started again).
    let rollback = sh("make rollback", &env).await;
    executed.push("make rollback".into());
    assert_eq!(rollback.code, 0);
    let rolled = rollback.step_started_ms("rollback").expect("rollback");
    let blue = format!("blue/{tag}");
    // The switch is the rollback step's last action: count from when the step ended.
    let switched_back = rollback.step("rollback").and_then(|e| e["time_unix_ms"].as_u64()).expect("time") as u128;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = follow_ms(&log, switched_back, now_ms(), &blue).expect("back on blue");
    assert!(after <= 5_000, "100 % on blue {after} ms after make rollback switched");
    assert_eq!(failed(&log, rolled, now_ms()), 0, "no failed call during a rollback");
    figures.entry("manual_rollback_switch_ms").or_default().push(after);
    figures.entry("manual_rollback_total_ms").or_default().push(switched_back - rolled + after);

    tokio::time::sleep(Duration::from_secs(3)).await;
    // A bad release (on green, blue active): rolled back by itself within the analysis window,
    // exit 3, failures bounded. Repeated (AXIOM25_RELEASE_BAD_ROUNDS, default 3) for the p50 and
    // max of detection and rollback.
    let rounds: usize = std::env::var("AXIOM25_RELEASE_BAD_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    for round in 1..=rounds {
        let bad = sh(r#"make release VERSION=1.1.1 API_ENV="AXIOM25__FAULTS__ERROR_RATIO=0.1""#, &env).await;
        executed.push(r#"make release VERSION=1.1.1 API_ENV="AXIOM25__FAULTS__ERROR_RATIO=0.1""#.into());
        assert_ne!(bad.code, 0, "round {round}: make release fails when the release is rolled back");
        assert_eq!(bad.tool_exit_code(), Some(3), "round {round}: rolled back");
        let bad_switch = bad.step_started_ms("switch").expect("switch");
        let detected =
            bad.step("analysis").expect("analysis")["detected_after_switch_ms"].as_u64().expect("ms") as u128;
        assert!(detected < 20_000, "round {round}: detected within the 20 s window ({detected} ms)");
        let back = bad.step_started_ms("rollback").expect("rollback");
        // The window below reaches 3 s past the tool's exit: let those calls happen first.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let back_after = follow_ms(&log, back, bad.ended_ms + 3_000, &blue).expect("back on blue");
        assert!(back_after <= 5_000, "round {round}: back on the good release {back_after} ms after the rollback");
        let bad_failed = failed(&log, bad_switch, bad.ended_ms + 3_000);
        let bad_total = calls(&log, bad_switch, bad.ended_ms + 3_000).len();
        assert!(
            bad_failed > 0 && bad_failed * 2 <= bad_total + 8,
            "round {round}: {bad_failed} of {bad_total} calls failed"
        );
        figures.entry("detect_ms").or_default().push(detected);
        figures.entry("auto_rollback_ms").or_default().push(back_after);
        *failures.entry("bad release (failed calls)").or_default() += bad_failed;
    }

    // A release that never becomes SERVING (a setting the api refuses): exit 1, traffic untouched.
    let before = now_ms();
    let broken = sh(
        r#"make release VERSION=1.1.0 API_ENV="AXIOM25__LIMITS__MAX_ROWS=0" RELEASE_FLAGS="--ready-timeout 15""#,
        &env,
    )
    .await;
    assert_ne!(broken.code, 0, "make release fails when the new colour never serves");
    assert_eq!(broken.tool_exit_code(), Some(1));
    assert!(broken.events.iter().any(|e| e["step"] == "wait_serving" && e["outcome"] == "failed"));
    assert_eq!(follow_ms(&log, before, now_ms(), &blue), Some(0), "every call stayed on blue");
    assert_eq!(failed(&log, before, now_ms()), 0);

    // The manual fallback of the runbook: traffic to blue by hand (already there: no change).
    for line in runbook_commands().into_iter().filter(|line| line.contains("/dev/tcp")) {
        let ran = sh(&line, &env).await;
        assert_eq!(ran.code, 0, "{line}");
        executed.push(line);
    }

    // Twenty releases in a row, alternating colours, all promoted.
    let release_bin = env!("CARGO_BIN_EXE_axiom25-release");
    let mut promoted = 0;
    for n in 1..=20 {
        let version = format!("{tag}-r{n}");
        assert_eq!(sh(&format!("docker tag axiom25/api:{tag} axiom25/api:{version}"), &env).await.code, 0);
        let ran = sh(
            &format!(
                "{release_bin} release {version} --analysis-window 5 --poll-ms 1000 --min-calls 1 --rollback-window 0"
            ),
            &env,
        )
        .await;
        let _ = sh(&format!("docker rmi axiom25/api:{version}"), &env).await;
        if ran.code == 0 {
            promoted += 1;
            let color = ran.step("switch").and_then(|e| e["to"].as_str()).unwrap_or("?").to_owned();
            let from = ran.step_started_ms("switch").expect("switch");
            if let Some(ms) = follow_ms(&log, from, ran.ended_ms, &format!("{color}/{version}")) {
                figures.entry("switch_ms").or_default().push(ms);
            }
        }
        let window_failed = failed(&log, ran.started_ms, ran.ended_ms);
        *failures.entry("twenty releases (failed calls)").or_default() += window_failed;
    }
    let _ = stop.send(true);
    for client in clients {
        let _ = client.await;
    }
    let total = log.lock().expect("lock").len();
    let all_failed = log.lock().expect("lock").iter().filter(|call| !call.ok).count();
    let by_client = |client: &str| log.lock().expect("lock").iter().filter(|call| call.client == client).count();
    let (rest_calls, grpc_calls) = (by_client("rest"), by_client("grpc"));

    let _ = sh(&down, &env).await;
    for version in DOC_VERSIONS {
        let _ = sh(&format!("docker rmi axiom25/api:{version}"), &env).await;
    }

    assert_eq!(promoted, 20, "deployment success rate");
    assert_eq!(failures["twenty releases (failed calls)"], 0, "no failed call over twenty releases");
    let mut documented = runbook_commands();
    documented.sort();
    executed.sort();
    executed.dedup();
    assert_eq!(executed, documented, "every local-stack command of the runbook is run here, and only those");

    if let Ok(path) = std::env::var("AXIOM25_RELEASE_REPORT") {
        let mut report = String::from("| figure | runs | p50 ms | max ms |\n|---|---|---|---|\n");
        for (name, values) in &mut figures {
            let (p50, max) = (percentile(values, 0.5), *values.iter().max().expect("a value"));
            report.push_str(&format!("| {name} | {} | {p50} | {max} |\n", values.len()));
        }
        report.push_str(&format!(
            "\nDeployment success rate: {promoted}/20 releases promoted.\n\nCalls made: {total} ({rest_calls} REST \
             through the gateway, {grpc_calls} direct gRPC), failed: {all_failed}, of which during the {rounds} bad releases: {}.\n",
            failures["bad release (failed calls)"]
        ));
        std::fs::write(path, report).expect("report written");
    }
}
