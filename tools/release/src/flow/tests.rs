//! The state machine against an in-memory platform, prober and Prometheus.

use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::analysis::Counts;
use crate::platform::{PlatformError, ReplicaReconnect, TrackState};
use crate::probe::ProbeError;

/// A platform held in memory; every action is logged as text.
struct FakePlatform {
    state: Mutex<PlatformState>,
    actions: Mutex<Vec<String>>,
    /// Replicas that cannot be asked to reconnect their clients.
    unreachable: Vec<String>,
}

impl FakePlatform {
    fn new(active: Color, blue: &str, green: Option<&str>) -> Self {
        let track = |version: Option<&str>| TrackState {
            version: version.map(str::to_owned),
            replicas: u32::from(version.is_some()) * 2,
            ready: u32::from(version.is_some()) * 2,
        };
        Self {
            state: Mutex::new(PlatformState { active, blue: track(Some(blue)), green: track(green) }),
            actions: Mutex::new(Vec::new()),
            unreachable: Vec::new(),
        }
    }

    fn actions(&self) -> Vec<String> {
        self.actions.lock().expect("lock").clone()
    }

    fn active(&self) -> Color {
        self.state.lock().expect("lock").active
    }

    fn with_track(&self, color: Color, change: impl FnOnce(&mut TrackState)) {
        let mut state = self.state.lock().expect("lock");
        change(match color {
            Color::Blue => &mut state.blue,
            Color::Green => &mut state.green,
        });
    }
}

impl Platform for FakePlatform {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn state(&self) -> Result<PlatformState, PlatformError> {
        Ok(self.state.lock().expect("lock").clone())
    }
    fn deploy(&self, color: Color, version: &str, settings: &[ApiSetting], replicas: u32) -> Result<(), PlatformError> {
        self.actions.lock().expect("lock").push(format!("deploy {color} {version} x{replicas} +{}", settings.len()));
        self.with_track(color, |track| {
            *track = TrackState { version: Some(version.into()), replicas, ready: replicas }
        });
        Ok(())
    }
    fn switch(&self, color: Color) -> Result<(), PlatformError> {
        self.actions.lock().expect("lock").push(format!("switch {color}"));
        self.state.lock().expect("lock").active = color;
        Ok(())
    }
    fn retire(&self, color: Color) -> Result<(), PlatformError> {
        self.actions.lock().expect("lock").push(format!("retire {color}"));
        self.with_track(color, |track| (track.replicas, track.ready) = (0, 0));
        Ok(())
    }
    fn revive(&self, color: Color, replicas: u32) -> Result<(), PlatformError> {
        self.actions.lock().expect("lock").push(format!("revive {color} x{replicas}"));
        self.with_track(color, |track| (track.replicas, track.ready) = (replicas, replicas));
        Ok(())
    }
    fn preview_endpoint(&self, color: Color) -> String {
        format!("http://{color}-preview")
    }
    fn reconnect_clients(&self, color: Color) -> Result<Vec<ReplicaReconnect>, PlatformError> {
        self.actions.lock().expect("lock").push(format!("reconnect {color}"));
        Ok((0..2)
            .map(|n| {
                let replica = format!("{color}-{n}");
                let outcome = if self.unreachable.contains(&replica) { Err("refused".into()) } else { Ok(3) };
                ReplicaReconnect { replica, outcome }
            })
            .collect())
    }
}

/// Serves unless the version is in `never_serving`; smoke-tests pass.
struct FakeProber {
    platform: std::sync::Arc<FakePlatform>,
    never_serving: Vec<String>,
}

impl Prober for FakeProber {
    async fn wait_serving(&self, endpoint: &str, timeout: Duration) -> Result<(), ProbeError> {
        let color = if endpoint.contains("blue") { Color::Blue } else { Color::Green };
        let version = self.platform.state.lock().expect("lock").track(color).version.clone().unwrap_or_default();
        if self.never_serving.contains(&version) {
            tokio::time::sleep(timeout).await;
            return Err(ProbeError::NeverServing { waited_s: timeout.as_secs(), last: "connect: refused".into() });
        }
        Ok(())
    }
    async fn smoke(&self, _: &str, _: &str) -> Result<(), ProbeError> {
        Ok(())
    }
    async fn health(&self, _: &str) -> String {
        "SERVING".into()
    }
}

/// Counts that grow by 100 calls per read, `bad_per_read` of them bad.
struct FakeMetrics {
    reads: Mutex<f64>,
    bad_per_read: f64,
}

impl MetricsSource for FakeMetrics {
    async fn counts(&self, _: Color, _: &str) -> Result<Counts, String> {
        let mut reads = self.reads.lock().expect("lock");
        *reads += 1.0;
        Ok(Counts { calls: *reads * 100.0, bad: *reads * self.bad_per_read, fast: *reads * 100.0 })
    }
}

fn plan(version: &str) -> ReleasePlan {
    ReleasePlan {
        version: version.into(),
        settings: Vec::new(),
        ready_timeout: Duration::from_secs(30),
        analysis: AnalysisSettings {
            window: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            ..AnalysisSettings::default()
        },
        rollback_window: Duration::from_secs(60),
    }
}

struct World {
    platform: std::sync::Arc<FakePlatform>,
    prober: FakeProber,
    metrics: FakeMetrics,
    events: Events,
}

impl World {
    fn new(platform: FakePlatform, bad_per_read: f64) -> Self {
        let platform = std::sync::Arc::new(platform);
        Self {
            prober: FakeProber { platform: platform.clone(), never_serving: vec!["broken".into()] },
            platform,
            metrics: FakeMetrics { reads: Mutex::new(0.0), bad_per_read },
            events: Events::to(Box::new(std::io::sink())),
        }
    }

    fn releaser(&self) -> Releaser<'_, FakePlatform, FakeProber, FakeMetrics> {
        Releaser::new(&*self.platform, &self.prober, &self.metrics, self.events.clone())
    }

    fn steps(&self) -> Vec<(String, String)> {
        self.events
            .recorded()
            .iter()
            .filter(|event| event["event"] == "step")
            .map(|event| (event["step"].as_str().unwrap_or("").into(), event["outcome"].as_str().unwrap_or("").into()))
            .collect()
    }
}

fn never() -> std::future::Pending<()> {
    std::future::pending()
}

#[tokio::test(start_paused = true)]
async fn a_good_release_deploys_the_idle_colour_switches_and_retires_the_old_one_after_the_window() {
    let world = World::new(FakePlatform::new(Color::Blue, "1.0.0", None), 0.0);
    let outcome = world.releaser().release(&plan("2.0.0"), never()).await;
    assert_eq!(outcome, Outcome::Promoted);
    assert_eq!(outcome.exit_code(), 0);
    assert_eq!(world.platform.actions(), ["deploy green 2.0.0 x2 +0", "switch green", "reconnect blue", "retire blue"]);
    let steps: Vec<String> = world.steps().into_iter().map(|(step, outcome)| format!("{step}:{outcome}")).collect();
    assert_eq!(
        steps,
        [
            "preflight:ok",
            "deploy:ok",
            "wait_serving:ok",
            "smoke:ok",
            "baseline:ok",
            "switch:ok",
            "reconnect_clients:ok",
            "analysis:ok",
            "retire:ok"
        ]
    );
    for event in world.events.recorded().iter().filter(|event| event["event"] == "step") {
        assert!(event["duration_ms"].is_u64(), "every step has a duration: {event}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_release_breaching_the_availability_slo_rolls_back_by_itself_with_exit_3() {
    let world = World::new(FakePlatform::new(Color::Blue, "1.0.0", Some("0.9.0")), 30.0);
    let started = tokio::time::Instant::now();
    let outcome = world.releaser().release(&plan("2.0.0"), never()).await;
    assert!(matches!(&outcome, Outcome::RolledBack(reason) if reason.contains("availability")), "{outcome:?}");
    assert_eq!(outcome.exit_code(), 3);
    assert_eq!(
        world.platform.actions(),
        ["deploy green 2.0.0 x2 +0", "switch green", "reconnect blue", "switch blue", "reconnect green"],
        "after the rollback's switch too, the colour losing traffic sends its clients away"
    );
    assert_eq!(world.platform.active(), Color::Blue);
    assert!(started.elapsed() < Duration::from_secs(10), "rolled back within the analysis window");
}

#[tokio::test(start_paused = true)]
async fn a_release_that_never_serves_fails_with_exit_1_and_leaves_traffic_alone() {
    let world = World::new(FakePlatform::new(Color::Green, "1.0.0", Some("1.0.0")), 0.0);
    world.platform.state.lock().expect("lock").active = Color::Blue;
    let outcome = world.releaser().release(&plan("broken"), never()).await;
    assert!(matches!(&outcome, Outcome::Failed(reason) if reason.contains("not SERVING")), "{outcome:?}");
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(world.platform.actions(), ["deploy green broken x2 +0"], "no switch");
    assert_eq!(world.platform.active(), Color::Blue);
}

#[tokio::test(start_paused = true)]
async fn releasing_the_version_already_active_is_refused_before_anything_changes() {
    let world = World::new(FakePlatform::new(Color::Blue, "1.0.0", None), 0.0);
    let outcome = world.releaser().release(&plan("1.0.0"), never()).await;
    assert!(matches!(&outcome, Outcome::Failed(reason) if reason.contains("already active")), "{outcome:?}");
    assert!(world.platform.actions().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_during_the_analysis_sends_traffic_back_to_the_old_colour() {
    let world = World::new(FakePlatform::new(Color::Blue, "1.0.0", None), 0.0);
    let interrupt = tokio::time::sleep(Duration::from_secs(3));
    let outcome = world.releaser().release(&plan("2.0.0"), interrupt).await;
    assert!(matches!(&outcome, Outcome::RolledBack(reason) if reason.contains("interrupted")), "{outcome:?}");
    assert_eq!(world.platform.active(), Color::Blue);
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_during_the_rollback_window_keeps_the_new_colour_and_the_old_one_warm() {
    let world = World::new(FakePlatform::new(Color::Blue, "1.0.0", None), 0.0);
    let interrupt = tokio::time::sleep(Duration::from_secs(30));
    let outcome = world.releaser().release(&plan("2.0.0"), interrupt).await;
    assert_eq!(outcome, Outcome::Promoted);
    assert_eq!(
        world.platform.actions(),
        ["deploy green 2.0.0 x2 +0", "switch green", "reconnect blue"],
        "blue not retired"
    );
    assert_eq!(world.platform.state().expect("state").blue.ready, 2);
}

#[tokio::test(start_paused = true)]
async fn a_rerun_after_an_interrupted_deploy_resumes_without_redeploying() {
    let world = World::new(FakePlatform::new(Color::Blue, "1.0.0", Some("2.0.0")), 0.0);
    let outcome = world.releaser().release(&plan("2.0.0"), never()).await;
    assert_eq!(outcome, Outcome::Promoted);
    assert_eq!(world.platform.actions(), ["switch green", "reconnect blue", "retire blue"]);
    let deploy = world.events.recorded().into_iter().find(|event| event["step"] == "deploy").expect("deploy event");
    assert_eq!(deploy["resumed"], true);
}

#[tokio::test(start_paused = true)]
async fn rollback_revives_a_retired_colour_waits_for_it_and_switches() {
    let world = World::new(FakePlatform::new(Color::Blue, "1.0.0", None), 0.0);
    assert_eq!(world.releaser().release(&plan("2.0.0"), never()).await, Outcome::Promoted);
    assert_eq!(world.releaser().rollback(Duration::from_secs(5)).await, Ok(Color::Blue));
    assert_eq!(world.platform.actions()[4..], ["revive blue x2", "switch blue", "reconnect green"]);
    assert_eq!(world.platform.active(), Color::Blue);
}

#[tokio::test(start_paused = true)]
async fn rollback_with_nothing_deployed_on_the_other_colour_is_refused() {
    let world = World::new(FakePlatform::new(Color::Blue, "1.0.0", None), 0.0);
    let refused = world.releaser().rollback(Duration::from_secs(5)).await.expect_err("nothing to go back to");
    assert!(refused.contains("never deployed"), "{refused}");
    assert!(world.platform.actions().is_empty());
}

#[tokio::test(start_paused = true)]
async fn twenty_releases_in_a_row_alternate_colours_and_all_promote() {
    let world = World::new(FakePlatform::new(Color::Blue, "1.0.0", None), 0.0);
    for n in 1..=20 {
        let expected = if n % 2 == 1 { Color::Green } else { Color::Blue };
        let mut quick = plan(&format!("1.0.{n}"));
        quick.rollback_window = Duration::ZERO;
        assert_eq!(world.releaser().release(&quick, never()).await, Outcome::Promoted, "release {n}");
        assert_eq!(world.platform.active(), expected, "release {n}");
    }
}

#[tokio::test(start_paused = true)]
async fn status_reports_the_active_colour_versions_and_health() {
    let world = World::new(FakePlatform::new(Color::Green, "1.0.0", Some("2.0.0")), 0.0);
    let state = world.releaser().status().await.expect("status");
    assert_eq!(state.active, Color::Green);
    let event = world.events.recorded().pop().expect("status event");
    assert_eq!(event["state"]["active"], "green");
    assert_eq!(event["state"]["green"]["version"], "2.0.0");
    assert_eq!(event["health"]["blue"], "SERVING");
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_cannot_be_asked_to_reconnect_is_a_warning_and_the_release_goes_on() {
    let mut platform = FakePlatform::new(Color::Blue, "1.0.0", None);
    platform.unreachable = vec!["blue-1".into()];
    let world = World::new(platform, 0.0);
    assert_eq!(world.releaser().release(&plan("2.0.0"), never()).await, Outcome::Promoted);
    let events = world.events.recorded();
    let reconnect = events.iter().find(|event| event["step"] == "reconnect_clients").expect("reconnect step");
    assert_eq!(reconnect["outcome"], "warning");
    assert_eq!(reconnect["color"], "blue");
    assert_eq!(
        reconnect["replicas"],
        serde_json::json!([{"replica": "blue-0", "connections": 3}, {"replica": "blue-1", "error": "refused"}])
    );
    assert!(reconnect["reason"].as_str().is_some_and(|reason| reason.starts_with("1 of 2 replicas")), "{reconnect}");
}
