//! The release state machine: preflight → deploy the idle colour → wait for SERVING → smoke test
//! through its preview name → switch → analysis window → promote (old colour kept warm for the
//! rollback window, then scaled down) or roll back by itself. Every step emits an event with its
//! duration ([`crate::events`]). Right after every switch, a rollback's included, the colour that
//! lost traffic is asked to send its clients GOAWAY ([`Platform::reconnect_clients`]), so clients
//! holding connections to it follow the switch at once; a replica that cannot be asked is a
//! warning, not a failure (its connections still move at their maximum age).
//!
//! Interruption: before the switch nothing has changed for traffic, so the run just stops; during
//! the analysis traffic goes back to the old colour, which is known good; during the rollback
//! window the promoted colour keeps traffic and the old one stays warm. The next run reads the real
//! state from the platform: an idle colour already running the requested version is not
//! redeployed.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::analysis::{self, AnalysisSettings, MetricsSource, Verdict};
use crate::color::Color;
use crate::events::Events;
use crate::platform::{ApiSetting, Platform, PlatformState};
use crate::probe::Prober;

/// What to release and how carefully.
#[derive(Debug, Clone)]
pub struct ReleasePlan {
    /// Image tag to deploy as the idle colour.
    pub version: String,
    /// Extra api settings of the new colour.
    pub settings: Vec<ApiSetting>,
    /// How long the new colour gets to become SERVING.
    pub ready_timeout: Duration,
    /// The analysis window and its thresholds.
    pub analysis: AnalysisSettings,
    /// How long the old colour stays warm after promotion.
    pub rollback_window: Duration,
}

/// How a release ended (docs/contracts.md §8 exit codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The new colour took traffic and passed the analysis: exit 0.
    Promoted,
    /// The new colour took traffic and was rolled back, for this reason: exit 3.
    RolledBack(String),
    /// Stopped before the switch, traffic untouched, for this reason: exit 1.
    Failed(String),
}

impl Outcome {
    /// The process exit code.
    #[must_use]
    pub const fn exit_code(&self) -> u8 {
        match self {
            Self::Promoted => 0,
            Self::RolledBack(_) => 3,
            Self::Failed(_) => 1,
        }
    }
}

/// The tool's three commands over one platform.
pub struct Releaser<'a, P, Q, M> {
    platform: &'a P,
    prober: &'a Q,
    metrics: &'a M,
    events: Events,
}

fn state_json(state: &PlatformState) -> serde_json::Value {
    json!({"active": state.active.as_str(), "blue": state.blue, "green": state.green})
}

impl<'a, P: Platform, Q: Prober, M: MetricsSource> Releaser<'a, P, Q, M> {
    /// A releaser driving `platform`, probing with `prober`, judging with `metrics`.
    pub const fn new(platform: &'a P, prober: &'a Q, metrics: &'a M, events: Events) -> Self {
        Self { platform, prober, metrics, events }
    }

    fn fail(&self, reason: String) -> Outcome {
        self.events.emit("release", json!({"outcome": "failed", "exit_code": 1, "reason": reason}));
        Outcome::Failed(reason)
    }

    /// Runs a whole release of `plan`; `interrupt` resolving stops it safely (module docs).
    pub async fn release(&self, plan: &ReleasePlan, interrupt: impl Future<Output = ()>) -> Outcome {
        let started = Instant::now();
        let mut interrupt = std::pin::pin!(interrupt);

        // Preflight: the real state; never release what already serves.
        let step = self.events.step("preflight");
        let state = match self.platform.state() {
            Ok(state) => state,
            Err(error) => {
                step.failed(&error.to_string(), json!({"platform": self.platform.name()}));
                return self.fail(format!("preflight: {error}"));
            }
        };
        let (old, new) = (state.active, state.idle());
        if state.track(old).version.as_deref() == Some(plan.version.as_str()) {
            let reason = format!("{} is already active on {old}", plan.version);
            step.failed(&reason, state_json(&state));
            return self.fail(reason);
        }
        step.done(json!({"platform": self.platform.name(), "version": plan.version, "target": new.as_str(),
            "state": state_json(&state)}));

        // Deploy the idle colour, unless an interrupted run already did.
        let step = self.events.step("deploy");
        let idle = state.track(new);
        let replicas = state.track(old).replicas.max(1);
        if idle.version.as_deref() == Some(plan.version.as_str()) && idle.ready > 0 && plan.settings.is_empty() {
            step.done(json!({"color": new.as_str(), "resumed": true}));
        } else {
            let deployed = tokio::select! {
                deployed = async { self.platform.deploy(new, &plan.version, &plan.settings, replicas) } => deployed,
                () = &mut interrupt => return self.interrupted(step, "deploy"),
            };
            if let Err(error) = deployed {
                step.failed(&error.to_string(), json!({"color": new.as_str()}));
                return self.fail(format!("deploy: {error}"));
            }
            step.done(json!({"color": new.as_str(), "version": plan.version, "replicas": replicas}));
        }

        let endpoint = self.platform.preview_endpoint(new);
        let step = self.events.step("wait_serving");
        let serving = tokio::select! {
            serving = self.prober.wait_serving(&endpoint, plan.ready_timeout) => serving,
            () = &mut interrupt => return self.interrupted(step, "wait_serving"),
        };
        if let Err(error) = serving {
            step.failed(&error.to_string(), json!({"endpoint": endpoint}));
            return self.fail(format!("{new} ({}) {error}; traffic stays on {old}", plan.version));
        }
        step.done(json!({"endpoint": endpoint}));

        let identity = format!("{new}/{}", plan.version);
        let step = self.events.step("smoke");
        let smoke = tokio::select! {
            smoke = self.prober.smoke(&endpoint, &identity) => smoke,
            () = &mut interrupt => return self.interrupted(step, "smoke"),
        };
        if let Err(error) = smoke {
            step.failed(&error.to_string(), json!({"endpoint": endpoint}));
            return self.fail(format!("{error}; traffic stays on {old}"));
        }
        step.done(json!({"endpoint": endpoint, "release": identity}));

        // The baseline comes before the switch: without a readable Prometheus the release could
        // not be judged, so it does not start.
        let step = self.events.step("baseline");
        let base = match self.metrics.counts(new, &plan.version).await {
            Ok(counts) => counts,
            Err(error) => {
                step.failed(&error, json!({}));
                return self.fail(format!("Prometheus unreadable before the switch: {error}"));
            }
        };
        step.done(json!({"calls": base.calls}));

        let step = self.events.step("switch");
        if let Err(error) = self.platform.switch(new) {
            // A failed switch may have half-happened: put the old colour back.
            let restored = self.platform.switch(old).is_ok();
            step.failed(&error.to_string(), json!({"to": new.as_str(), "restored": restored}));
            return self.fail(format!("switch: {error}"));
        }
        let switched = Instant::now();
        step.done(json!({"from": old.as_str(), "to": new.as_str()}));
        self.reconnect_clients(old);

        let step = self.events.step("analysis");
        let verdict = tokio::select! {
            verdict = analysis::watch(self.metrics, &plan.analysis, new, &plan.version, base) => verdict,
            () = &mut interrupt => Verdict::Breach("interrupted during the analysis window".into()),
        };
        let detected_ms = switched.elapsed().as_millis();
        match verdict {
            Verdict::Breach(reason) => {
                step.failed(&reason, json!({"color": new.as_str(), "detected_after_switch_ms": detected_ms}));
                self.roll_back_after_breach(old, &reason, started)
            }
            Verdict::Healthy { calls, judged } => {
                step.done(json!({"color": new.as_str(), "calls": calls, "judged": judged}));
                self.promote(old, new, plan, interrupt, started).await
            }
        }
    }

    fn interrupted(&self, step: crate::events::Step, at: &str) -> Outcome {
        step.failed("interrupted", json!({}));
        self.fail(format!("interrupted during {at}, before the switch: traffic untouched"))
    }

    fn roll_back_after_breach(&self, old: Color, reason: &str, started: Instant) -> Outcome {
        let step = self.events.step("rollback");
        match self.platform.switch(old) {
            Ok(()) => {
                step.done(json!({"to": old.as_str(), "reason": reason}));
                self.reconnect_clients(old.other());
            }
            Err(error) => step.failed(&error.to_string(), json!({"to": old.as_str()})),
        }
        self.events.emit(
            "release",
            json!({"outcome": "rolled_back", "exit_code": 3, "reason": reason, "active": old.as_str(),
                "duration_ms": started.elapsed().as_millis()}),
        );
        Outcome::RolledBack(reason.to_owned())
    }

    async fn promote(
        &self,
        old: Color,
        new: Color,
        plan: &ReleasePlan,
        interrupt: std::pin::Pin<&mut impl Future<Output = ()>>,
        started: Instant,
    ) -> Outcome {
        self.events.emit(
            "release",
            json!({"outcome": "promoted", "exit_code": 0, "active": new.as_str(), "version": plan.version,
                "duration_ms": started.elapsed().as_millis(), "rollback_window_s": plan.rollback_window.as_secs()}),
        );
        let step = self.events.step("retire");
        tokio::select! {
            () = tokio::time::sleep(plan.rollback_window) => {}
            () = interrupt => {
                step.failed("interrupted: the old colour stays warm", json!({"color": old.as_str()}));
                return Outcome::Promoted;
            }
        }
        match self.platform.retire(old) {
            Ok(()) => step.done(json!({"color": old.as_str()})),
            Err(error) => step.failed(&error.to_string(), json!({"color": old.as_str()})),
        }
        Outcome::Promoted
    }

    /// Sends traffic back to the other colour at once (reviving it first if it was scaled down).
    ///
    /// # Errors
    /// When there is nothing to roll back to or the platform refuses.
    pub async fn rollback(&self, ready_timeout: Duration) -> Result<Color, String> {
        let started = Instant::now();
        let step = self.events.step("rollback");
        let result = self.rollback_steps(ready_timeout).await;
        match &result {
            Ok((from, to)) => step.done(json!({"from": from.as_str(), "to": to.as_str()})),
            Err(reason) => step.failed(reason, json!({})),
        }
        self.events.emit(
            "rollback",
            json!({"outcome": if result.is_ok() { "ok" } else { "failed" }, "duration_ms": started.elapsed().as_millis()}),
        );
        result.map(|(_, to)| to)
    }

    async fn rollback_steps(&self, ready_timeout: Duration) -> Result<(Color, Color), String> {
        let state = self.platform.state().map_err(|error| error.to_string())?;
        let (from, to) = (state.active, state.idle());
        let target = state.track(to);
        if target.version.is_none() {
            return Err(format!("{to} was never deployed: nothing to roll back to"));
        }
        if target.ready == 0 {
            self.platform.revive(to, state.track(from).replicas.max(1)).map_err(|error| error.to_string())?;
        }
        self.prober
            .wait_serving(&self.platform.preview_endpoint(to), ready_timeout)
            .await
            .map_err(|error| format!("{to}: {error}; traffic stays on {from}"))?;
        self.platform.switch(to).map_err(|error| error.to_string())?;
        self.reconnect_clients(from);
        Ok((from, to))
    }

    /// Asks `color`, which just lost traffic, to send its clients GOAWAY; see the module docs.
    fn reconnect_clients(&self, color: Color) {
        let step = self.events.step("reconnect_clients");
        let answers = match self.platform.reconnect_clients(color) {
            Ok(answers) => answers,
            Err(error) => {
                step.warned(&error.to_string(), json!({"color": color.as_str()}));
                return;
            }
        };
        let replicas: Vec<serde_json::Value> = answers
            .iter()
            .map(|answer| match &answer.outcome {
                Ok(connections) => json!({"replica": answer.replica, "connections": connections}),
                Err(error) => json!({"replica": answer.replica, "error": error}),
            })
            .collect();
        let unreachable = answers.iter().filter(|answer| answer.outcome.is_err()).count();
        let fields = json!({"color": color.as_str(), "replicas": replicas});
        if unreachable > 0 {
            let reason = format!(
                "{unreachable} of {} replicas not asked to reconnect; their clients move at their maximum connection age",
                answers.len()
            );
            step.warned(&reason, fields);
        } else {
            step.done(fields);
        }
    }

    /// Emits the active colour and each colour's version and health.
    ///
    /// # Errors
    /// When the platform cannot be asked.
    pub async fn status(&self) -> Result<PlatformState, String> {
        let state = self.platform.state().map_err(|error| error.to_string())?;
        let mut health = serde_json::Map::new();
        for color in Color::BOTH {
            let answer = self.prober.health(&self.platform.preview_endpoint(color)).await;
            health.insert(color.as_str().into(), json!(answer));
        }
        self.events.emit("status", json!({"state": state_json(&state), "health": health}));
        Ok(state)
    }
}

#[cfg(test)]
mod tests;
