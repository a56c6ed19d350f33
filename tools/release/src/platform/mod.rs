//! Where the two colours run. A [`Platform`] reports the real state (so an interrupted run resumes
//! from what is, not from what a file says) and performs the few actions a release needs.

pub mod compose;
pub mod kubernetes;

use serde::Serialize;

use crate::color::Color;
use crate::command::CommandError;

/// What a platform says about one colour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrackState {
    /// Version it was deployed as (the image tag); `None` when never deployed.
    pub version: Option<String>,
    /// Replicas it is meant to run (0 when scaled down).
    pub replicas: u32,
    /// Replicas running and ready.
    pub ready: u32,
}

/// What a platform says about both colours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformState {
    /// The colour the stable name sends traffic to.
    pub active: Color,
    /// Blue's track.
    pub blue: TrackState,
    /// Green's track.
    pub green: TrackState,
}

impl PlatformState {
    /// The track of `color`.
    #[must_use]
    pub const fn track(&self, color: Color) -> &TrackState {
        match color {
            Color::Blue => &self.blue,
            Color::Green => &self.green,
        }
    }

    /// The colour not taking traffic.
    #[must_use]
    pub const fn idle(&self) -> Color {
        self.active.other()
    }
}

/// Why a platform action failed.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// A tool failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The platform answered something the tool cannot read.
    #[error("unexpected answer from {what}: {detail}")]
    Unexpected {
        /// What was asked.
        what: String,
        /// What was wrong with the answer.
        detail: String,
    },
    /// The switch point could not be reached.
    #[error("switch point {endpoint}: {source}")]
    SwitchPoint {
        /// Its address.
        endpoint: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The api's admin path that sends GOAWAY to every gRPC connection open at that moment
/// (docs/contracts.md §8).
pub const RECONNECT_PATH: &str = "/admin/reconnect-clients";

/// What one replica of a colour answered when asked to reconnect its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaReconnect {
    /// The replica: `api-blue` on the local stack, `pod/<name>` on Kubernetes.
    pub replica: String,
    /// How many connections it sent GOAWAY, or why it could not be asked.
    pub outcome: Result<u64, String>,
}

/// The connection count in an answer of [`RECONNECT_PATH`] (`{"connections": n}`).
///
/// # Errors
/// When the answer is not that.
pub fn reconnect_answer(body: &str) -> Result<u64, String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|answer| answer["connections"].as_u64())
        .ok_or_else(|| format!("unexpected answer {:?}", body.trim()))
}

/// A `KEY=VALUE` setting for the api (`AXIOM25__SECTION__KEY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSetting {
    /// `AXIOM25__SECTION__KEY`.
    pub key: String,
    /// The value as written.
    pub value: String,
}

impl std::str::FromStr for ApiSetting {
    type Err = String;
    fn from_str(pair: &str) -> Result<Self, Self::Err> {
        let (key, value) = pair.split_once('=').ok_or_else(|| format!("{pair:?}: expected KEY=VALUE"))?;
        let path = key.strip_prefix("AXIOM25__").ok_or_else(|| format!("{key}: api settings start with AXIOM25__"))?;
        if path.split("__").any(|part| part.is_empty() || !part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(format!("{key}: expected AXIOM25__SECTION__KEY"));
        }
        if path.starts_with("RELEASE__") {
            return Err(format!("{key}: the release tool sets release.* itself"));
        }
        Ok(Self { key: key.to_owned(), value: value.to_owned() })
    }
}

impl ApiSetting {
    /// The lower-case config path: `AXIOM25__FAULTS__ERROR_RATIO` → `["faults", "error_ratio"]`.
    #[must_use]
    pub fn path(&self) -> Vec<String> {
        self.key.trim_start_matches("AXIOM25__").split("__").map(str::to_ascii_lowercase).collect()
    }
}

/// One place the colours run.
pub trait Platform: Send + Sync {
    /// `compose` or `kubernetes`, for events.
    fn name(&self) -> &'static str;

    /// The real state of both colours and of the switch.
    ///
    /// # Errors
    /// When the platform cannot be asked.
    fn state(&self) -> Result<PlatformState, PlatformError>;

    /// Deploys `version` as `color` with `settings` and `replicas`, replacing what ran there, and
    /// returns once the platform has started it (readiness is the prober's to check).
    ///
    /// # Errors
    /// When the platform refuses.
    fn deploy(&self, color: Color, version: &str, settings: &[ApiSetting], replicas: u32) -> Result<(), PlatformError>;

    /// Sends all new calls through the stable name to `color`.
    ///
    /// # Errors
    /// When the switch point cannot be changed.
    fn switch(&self, color: Color) -> Result<(), PlatformError>;

    /// Scales `color` down (after the rollback window).
    ///
    /// # Errors
    /// When the platform refuses.
    fn retire(&self, color: Color) -> Result<(), PlatformError>;

    /// Brings a scaled-down `color` back with `replicas`, as it was deployed.
    ///
    /// # Errors
    /// When the platform refuses.
    fn revive(&self, color: Color, replicas: u32) -> Result<(), PlatformError>;

    /// gRPC address (`http://host:port`) of `color`'s preview name.
    fn preview_endpoint(&self, color: Color) -> String;

    /// Asks every replica of `color` to send its gRPC clients GOAWAY once their calls in flight
    /// finish ([`RECONNECT_PATH`]), so that after a switch away from `color` they reconnect through
    /// the stable name at once instead of at their maximum connection age.
    ///
    /// # Errors
    /// When the replicas cannot be listed; a replica that cannot be asked is in the answers.
    fn reconnect_clients(&self, color: Color) -> Result<Vec<ReplicaReconnect>, PlatformError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconnect_answer_is_its_connection_count() {
        assert_eq!(reconnect_answer(r#"{"connections":3}"#), Ok(3));
        assert!(reconnect_answer("404 page not found").is_err());
    }

    #[test]
    fn api_settings_map_to_config_paths_and_reject_what_is_not_a_setting() {
        let setting: ApiSetting = "AXIOM25__FAULTS__ERROR_RATIO=0.5".parse().expect("valid");
        assert_eq!(setting.path(), ["faults", "error_ratio"]);
        assert_eq!(setting.value, "0.5");
        for bad in ["FAULTS=1", "PATH=/bin", "AXIOM25__=1", "AXIOM25__A____B=1", "AXIOM25__RELEASE__COLOR=blue"] {
            assert!(bad.parse::<ApiSetting>().is_err(), "{bad} accepted");
        }
    }
}
