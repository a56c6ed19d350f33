//! Kubernetes: the umbrella chart (`helm/axiom25`) with `api.blueGreen.enabled`. Every change
//! reads the release's values (`helm get values`), changes the few keys it owns and upgrades with
//! the whole set (`helm upgrade --values`), so a colour's config is replaced, never merged with
//! what an earlier release left (as `--reuse-values` would). A deploy sets the idle colour's tag,
//! replicas (pre-scaled to the active colour's) and config, and waits for `kubectl rollout
//! status`; a switch sets `api.blueGreen.activeColor`, which re-points the main Service's selector.
//! State comes from the cluster: the main Service's selector and each colour's Deployment.
//!
//! A selector switch moves new connections only (a Service balances at L4): the connections the
//! ui-gateway and direct gRPC clients hold stay on the old colour's pods. So after a switch each
//! of those pods is asked to send GOAWAY (`POST /admin/reconnect-clients` on its admin port,
//! through the API server's pod proxy: `kubectl create --raw`), and the clients reconnect through
//! the Service, to the new colour.

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::{
    ApiSetting, Platform, PlatformError, PlatformState, RECONNECT_PATH, ReplicaReconnect, TrackState, reconnect_answer,
};
use crate::color::Color;
use crate::command::{CommandRunner, Invocation};

/// Label of the api pods naming their colour (the chart's `api.selectorLabels`).
pub const COLOR_LABEL: &str = "axiom25/color";

/// How to reach the cluster and the release.
#[derive(Debug, Clone)]
pub struct KubernetesSettings {
    /// helm binary.
    pub helm: String,
    /// kubectl binary.
    pub kubectl: String,
    /// Helm release name.
    pub release: String,
    /// Namespace of the release.
    pub namespace: String,
    /// The umbrella chart (a path or a chart reference).
    pub chart: PathBuf,
    /// Full name of the api objects (`<release>-api` unless `api.fullnameOverride`).
    pub api_name: String,
    /// Seconds `kubectl rollout status` waits.
    pub rollout_timeout_s: u64,
    /// The api pods' admin port (the chart's `ports.admin`), reached through the API server.
    pub admin_port: u16,
    /// gRPC address of each colour's preview Service as this tool reaches it (in-cluster DNS
    /// names by default; `kubectl port-forward` addresses from outside).
    pub preview_endpoints: (String, String),
}

/// A release of the umbrella chart.
pub struct Kubernetes<R> {
    settings: KubernetesSettings,
    runner: R,
}

impl<R: CommandRunner> Kubernetes<R> {
    /// The release described by `settings`, driven through `runner`.
    pub const fn new(settings: KubernetesSettings, runner: R) -> Self {
        Self { settings, runner }
    }

    fn track_name(&self, color: Color) -> String {
        format!("{}-{color}", self.settings.api_name)
    }

    fn kubectl(&self, args: &[&str]) -> Invocation {
        let mut all = vec!["--namespace".to_owned(), self.settings.namespace.clone()];
        all.extend(args.iter().map(|arg| (*arg).to_owned()));
        Invocation::new(&self.settings.kubectl, all)
    }

    /// The values the release was installed with (`{}` when none).
    fn user_values(&self) -> Result<Value, PlatformError> {
        let out = self.runner.run(&Invocation::new(
            &self.settings.helm,
            ["get", "values", &self.settings.release, "--namespace", &self.settings.namespace, "--output", "json"],
        ))?;
        match serde_json::from_str::<Value>(&out) {
            Ok(Value::Null) => Ok(Value::Object(Map::new())),
            Ok(values @ Value::Object(_)) => Ok(values),
            Ok(other) => Err(PlatformError::Unexpected { what: "helm get values".into(), detail: other.to_string() }),
            Err(error) => Err(PlatformError::Unexpected { what: "helm get values".into(), detail: error.to_string() }),
        }
    }

    /// Reads the values, applies `change` to `api.blueGreen` and upgrades with the result.
    fn upgrade(&self, change: impl FnOnce(&mut Map<String, Value>)) -> Result<(), PlatformError> {
        let mut values = self.user_values()?;
        change(object_at(&mut values, &["api", "blueGreen"]));
        let io =
            |error: std::io::Error| PlatformError::Unexpected { what: "values file".into(), detail: error.to_string() };
        let mut file = tempfile::Builder::new().prefix("axiom25-release-").suffix(".json").tempfile().map_err(io)?;
        std::io::Write::write_all(&mut file, values.to_string().as_bytes()).map_err(io)?;
        let path = file.path().display().to_string();
        let chart = self.settings.chart.display().to_string();
        self.runner.run(&Invocation::new(
            &self.settings.helm,
            ["upgrade", &self.settings.release, &chart, "--namespace", &self.settings.namespace, "--values", &path],
        ))?;
        Ok(())
    }

    fn get_json(&self, kind: &str, name: &str) -> Result<Option<Value>, PlatformError> {
        match self.runner.run(&self.kubectl(&["get", kind, name, "--ignore-not-found", "--output", "json"])) {
            Ok(out) if out.trim().is_empty() => Ok(None),
            Ok(out) => serde_json::from_str(&out).map(Some).map_err(|error| PlatformError::Unexpected {
                what: format!("kubectl get {kind} {name}"),
                detail: error.to_string(),
            }),
            Err(error) => Err(error.into()),
        }
    }

    fn track(&self, color: Color) -> Result<TrackState, PlatformError> {
        let Some(deployment) = self.get_json("deployment", &self.track_name(color))? else {
            return Ok(TrackState::default());
        };
        let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap_or_default();
        let count = |value: &Value| value.as_u64().map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
        Ok(TrackState {
            version: image_version(image),
            replicas: count(&deployment["spec"]["replicas"]),
            ready: count(&deployment["status"]["readyReplicas"]),
        })
    }

    fn rollout(&self, color: Color) -> Result<(), PlatformError> {
        let target = format!("deployment/{}", self.track_name(color));
        let timeout = format!("--timeout={}s", self.settings.rollout_timeout_s);
        self.runner.run(&self.kubectl(&["rollout", "status", &target, &timeout]))?;
        Ok(())
    }

    fn scale(&self, color: Color, replicas: u32) -> Result<(), PlatformError> {
        let target = format!("deployment/{}", self.track_name(color));
        let replicas = format!("--replicas={replicas}");
        self.runner.run(&self.kubectl(&["scale", &target, &replicas]))?;
        Ok(())
    }
}

/// The version an image reference was deployed as: its tag, else its digest.
#[must_use]
pub fn image_version(image: &str) -> Option<String> {
    if let Some((_, digest)) = image.split_once('@') {
        return Some(digest.to_owned());
    }
    let last = image.rsplit('/').next()?;
    last.split_once(':').map(|(_, tag)| tag.to_owned())
}

/// The object at `path` in `values`, created (or replacing a non-object) on the way.
pub fn object_at<'v>(values: &'v mut Value, path: &[&str]) -> &'v mut Map<String, Value> {
    let mut node = values;
    for key in path {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        node = node.as_object_mut().expect("just made an object").entry((*key).to_owned()).or_insert(Value::Null);
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    node.as_object_mut().expect("just made an object")
}

fn object_at_key<'m>(map: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    let node = map.entry(key.to_owned()).or_insert(Value::Null);
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    node.as_object_mut().expect("just made an object")
}

/// The colour's `config` for the chart: the api settings as nested keys, plus `release`. A value
/// that reads as JSON (a number, a boolean) is passed as such, anything else as a string.
#[must_use]
pub fn colour_config(color: Color, version: &str, settings: &[ApiSetting]) -> Value {
    let mut config = Map::new();
    for setting in settings {
        let value = serde_json::from_str::<Value>(&setting.value)
            .ok()
            .filter(|value| value.is_number() || value.is_boolean())
            .unwrap_or_else(|| Value::String(setting.value.clone()));
        let path = setting.path();
        let (leaf, sections) = path.split_last().expect("a setting has a key");
        let mut node = &mut config;
        for section in sections {
            node = node
                .entry(section.clone())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("sections are objects");
        }
        node.insert(leaf.clone(), value);
    }
    config.insert("release".into(), serde_json::json!({"color": color.as_str(), "version": version}));
    Value::Object(config)
}

impl<R: CommandRunner> Platform for Kubernetes<R> {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    fn state(&self) -> Result<PlatformState, PlatformError> {
        let name = &self.settings.api_name;
        let unexpected = |detail: String| PlatformError::Unexpected { what: format!("Service {name}"), detail };
        let service = self.get_json("service", name)?.ok_or_else(|| unexpected("not found".into()))?;
        let active = service["spec"]["selector"][COLOR_LABEL]
            .as_str()
            .ok_or_else(|| unexpected(format!("no {COLOR_LABEL} in its selector: is api.blueGreen.enabled on?")))?
            .parse()
            .map_err(|error: crate::color::UnknownColor| unexpected(error.to_string()))?;
        Ok(PlatformState { active, blue: self.track(Color::Blue)?, green: self.track(Color::Green)? })
    }

    fn deploy(&self, color: Color, version: &str, settings: &[ApiSetting], replicas: u32) -> Result<(), PlatformError> {
        let config = colour_config(color, version, settings);
        self.upgrade(|blue_green| {
            let track = object_at_key(blue_green, color.as_str());
            track.insert("tag".into(), Value::String(version.to_owned()));
            track.insert("digest".into(), Value::String(String::new()));
            track.insert("replicaCount".into(), replicas.into());
            track.insert("config".into(), config);
        })?;
        // With the HPA on the Deployment has no `replicas` of its own: pre-scale it directly so the
        // new colour can take the active one's load the moment traffic moves.
        self.scale(color, replicas)?;
        self.rollout(color)
    }

    fn switch(&self, color: Color) -> Result<(), PlatformError> {
        self.upgrade(|blue_green| {
            blue_green.insert("activeColor".into(), Value::String(color.as_str().to_owned()));
        })
    }

    fn retire(&self, color: Color) -> Result<(), PlatformError> {
        self.upgrade(|blue_green| {
            object_at_key(blue_green, color.as_str()).insert("replicaCount".into(), 0.into());
        })?;
        // An HPA stops acting on a Deployment scaled to zero.
        self.scale(color, 0)
    }

    fn revive(&self, color: Color, replicas: u32) -> Result<(), PlatformError> {
        self.upgrade(|blue_green| {
            object_at_key(blue_green, color.as_str()).insert("replicaCount".into(), replicas.into());
        })?;
        self.scale(color, replicas)?;
        self.rollout(color)
    }

    fn preview_endpoint(&self, color: Color) -> String {
        match color {
            Color::Blue => self.settings.preview_endpoints.0.clone(),
            Color::Green => self.settings.preview_endpoints.1.clone(),
        }
    }

    fn reconnect_clients(&self, color: Color) -> Result<Vec<ReplicaReconnect>, PlatformError> {
        let selector = format!(
            "app.kubernetes.io/name=api,app.kubernetes.io/instance={},{COLOR_LABEL}={color}",
            self.settings.release
        );
        let pods = self.runner.run(&self.kubectl(&["get", "pods", "--selector", &selector, "--output", "name"]))?;
        let namespace = &self.settings.namespace;
        let answers = pods
            .lines()
            .filter_map(|line| line.trim().strip_prefix("pod/"))
            .map(|pod| {
                let proxy = format!(
                    "/api/v1/namespaces/{namespace}/pods/{pod}:{}/proxy{RECONNECT_PATH}",
                    self.settings.admin_port
                );
                // `create --raw` POSTs the file's content; /dev/null is the empty body.
                let outcome = self
                    .runner
                    .run(&self.kubectl(&["create", "--raw", &proxy, "--filename", "/dev/null"]))
                    .map_err(|error| error.to_string())
                    .and_then(|body| reconnect_answer(&body));
                ReplicaReconnect { replica: format!("pod/{pod}"), outcome }
            })
            .collect();
        Ok(answers)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::command::CommandError;

    /// kubectl over two blue pods, the second of which the API server cannot reach.
    #[derive(Default)]
    struct FakeKubectl {
        calls: Mutex<Vec<String>>,
    }

    impl CommandRunner for FakeKubectl {
        fn run(&self, invocation: &Invocation) -> Result<String, CommandError> {
            let line = invocation.line();
            self.calls.lock().expect("lock").push(line.clone());
            if line.contains(" get pods ") {
                Ok("pod/axiom25-api-blue-a\npod/axiom25-api-blue-b\n".into())
            } else if line.contains("axiom25-api-blue-a:8081") {
                Ok(r#"{"connections":4}"#.into())
            } else {
                Err(CommandError::Failed {
                    command: line,
                    code: Some(1),
                    stderr:
                        "Error from server (ServiceUnavailable): the server is currently unable to handle the request"
                            .into(),
                })
            }
        }
    }

    fn cluster() -> Kubernetes<FakeKubectl> {
        Kubernetes::new(
            KubernetesSettings {
                helm: "helm".into(),
                kubectl: "kubectl".into(),
                release: "axiom25".into(),
                namespace: "prod".into(),
                chart: "helm/axiom25".into(),
                api_name: "axiom25-api".into(),
                rollout_timeout_s: 60,
                admin_port: 8081,
                preview_endpoints: ("http://blue".into(), "http://green".into()),
            },
            FakeKubectl::default(),
        )
    }

    #[test]
    fn reconnect_clients_posts_to_every_pod_of_the_colour_through_the_api_servers_pod_proxy() {
        let k8s = cluster();
        let answers = k8s.reconnect_clients(Color::Blue).expect("pods listed");
        assert_eq!(
            k8s.runner.calls.lock().expect("lock").clone(),
            [
                "kubectl --namespace prod get pods --selector \
                 app.kubernetes.io/name=api,app.kubernetes.io/instance=axiom25,axiom25/color=blue --output name",
                "kubectl --namespace prod create --raw \
                 /api/v1/namespaces/prod/pods/axiom25-api-blue-a:8081/proxy/admin/reconnect-clients --filename /dev/null",
                "kubectl --namespace prod create --raw \
                 /api/v1/namespaces/prod/pods/axiom25-api-blue-b:8081/proxy/admin/reconnect-clients --filename /dev/null",
            ]
        );
        assert_eq!(answers[0], ReplicaReconnect { replica: "pod/axiom25-api-blue-a".into(), outcome: Ok(4) });
        assert_eq!(answers[1].replica, "pod/axiom25-api-blue-b");
        assert!(answers[1].outcome.as_ref().is_err_and(|error| error.contains("ServiceUnavailable")), "{answers:?}");
    }

    #[test]
    fn the_version_is_the_tag_or_else_the_digest() {
        assert_eq!(image_version("registry:5000/axiom25/api:1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(image_version("axiom25/api@sha256:abc").as_deref(), Some("sha256:abc"));
        assert_eq!(image_version("axiom25/api"), None);
    }

    #[test]
    fn api_settings_become_the_colours_nested_config_with_its_release() {
        let settings: Vec<ApiSetting> = ["AXIOM25__FAULTS__ERROR_RATIO=0.5", "AXIOM25__TELEMETRY__ENVIRONMENT=drill"]
            .iter()
            .map(|pair| pair.parse().expect("valid"))
            .collect();
        assert_eq!(
            colour_config(Color::Green, "2.0.0", &settings),
            serde_json::json!({
                "faults": {"error_ratio": 0.5},
                "telemetry": {"environment": "drill"},
                "release": {"color": "green", "version": "2.0.0"},
            })
        );
    }
}
