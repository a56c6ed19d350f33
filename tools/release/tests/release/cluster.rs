//! A stand-in for helm and kubectl over one release: `helm upgrade --values` stores the values,
//! `helm get values` returns them, and `kubectl get` answers with the objects `helm template`
//! renders from them (Deployments reporting every replica ready, `kubectl scale` applied, and as
//! many pods as replicas, listed by label selector and reachable through the API server's pod
//! proxy on their declared ports).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use axiom25_release::command::{CommandError, CommandRunner, Invocation};
use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

pub struct RenderedCluster {
    helm: PathBuf,
    values: Mutex<Value>,
    scaled: Mutex<HashMap<String, u64>>,
    kubectl: Mutex<Vec<String>>,
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl RenderedCluster {
    /// A release installed with `values`, or `None` (with a notice) when no helm binary is found
    /// and `AXIOM25_REQUIRE_HELM` is unset; `make release-test` sets both.
    pub fn install(values: Value) -> Option<Self> {
        let helm = std::env::var_os("HELM")
            .map(PathBuf::from)
            .or_else(|| Some(workspace_root().join(".tools/bin/helm")).filter(|path| path.exists()));
        let Some(helm) = helm else {
            assert!(std::env::var_os("AXIOM25_REQUIRE_HELM").is_none(), "HELM is required: run `make release-test`");
            eprintln!("skipping: no helm (run `make release-test`, which installs it)");
            return None;
        };
        Some(Self {
            helm,
            values: Mutex::new(values),
            scaled: Mutex::new(HashMap::new()),
            kubectl: Mutex::new(Vec::new()),
        })
    }

    pub fn chart(&self) -> PathBuf {
        workspace_root().join("helm/axiom25")
    }

    pub fn values(&self) -> Value {
        self.values.lock().expect("lock").clone()
    }

    pub fn kubectl_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.kubectl.lock().expect("lock"))
    }

    fn render(&self) -> Vec<Value> {
        let values = tempfile::Builder::new().suffix(".json").tempfile().expect("tempfile");
        std::fs::write(values.path(), self.values().to_string()).expect("write values");
        let output = Command::new(&self.helm)
            .args(["template", "axiom25"])
            .arg(self.chart())
            .args(["--namespace", "axiom25", "--values"])
            .arg(values.path())
            .output()
            .expect("helm runs");
        assert!(output.status.success(), "helm template: {}", String::from_utf8_lossy(&output.stderr));
        let text = String::from_utf8(output.stdout).expect("utf-8");
        YamlLoader::load_from_str(&text)
            .expect("rendered YAML")
            .iter()
            .map(to_json)
            .filter(|doc| !doc.is_null())
            .collect()
    }

    fn object(&self, kind: &str, name: &str) -> Option<Value> {
        self.render().into_iter().find(|doc| doc["kind"] == kind && doc["metadata"]["name"] == name)
    }

    pub fn service_selector(&self, name: &str) -> Value {
        self.object("Service", name).unwrap_or_else(|| panic!("Service {name} rendered"))["spec"]["selector"].clone()
    }

    pub fn deployment(&self, name: &str) -> Value {
        let mut deployment = self.object("Deployment", name).unwrap_or_else(|| panic!("Deployment {name} rendered"));
        let replicas =
            self.scaled.lock().expect("lock").get(name).copied().or_else(|| deployment["spec"]["replicas"].as_u64());
        let replicas = replicas.unwrap_or(2);
        deployment["spec"]["replicas"] = replicas.into();
        deployment["status"] = serde_json::json!({"replicas": replicas, "readyReplicas": replicas});
        deployment
    }

    /// The pods of every rendered Deployment whose pod labels match `selector` (`k=v,k=v`), one
    /// per replica (`<deployment>-<n>`), each with the container ports it declares.
    fn pods(&self, selector: &str) -> Vec<(String, Vec<u64>)> {
        let wanted: Vec<(&str, &str)> = selector.split(',').filter_map(|pair| pair.split_once('=')).collect();
        self.render()
            .into_iter()
            .filter(|doc| doc["kind"] == "Deployment")
            .filter(|doc| {
                let labels = &doc["spec"]["template"]["metadata"]["labels"];
                wanted.iter().all(|(key, value)| labels[*key] == *value)
            })
            .flat_map(|doc| {
                let name = doc["metadata"]["name"].as_str().expect("named").to_owned();
                let deployment = self.deployment(&name);
                let ports: Vec<u64> = doc["spec"]["template"]["spec"]["containers"][0]["ports"]
                    .as_array()
                    .map(|ports| ports.iter().filter_map(|port| port["containerPort"].as_u64()).collect())
                    .unwrap_or_default();
                let replicas = deployment["spec"]["replicas"].as_u64().unwrap_or(0);
                (0..replicas).map(move |n| (format!("{name}-{n}"), ports.clone()))
            })
            .collect()
    }

    /// `kubectl create --raw` of a pod proxy path: answers as the api's reconnect route does when the
    /// pod and port exist, else fails as kubectl does.
    fn proxy_post(&self, path: &str) -> Result<String, CommandError> {
        let not_found = |detail: String| CommandError::Failed {
            command: format!("kubectl create --raw {path}"),
            code: Some(1),
            stderr: detail,
        };
        let rest = path.strip_prefix("/api/v1/namespaces/axiom25/pods/").ok_or_else(|| not_found("bad path".into()))?;
        let (target, route) = rest.split_once("/proxy").ok_or_else(|| not_found("not a proxy path".into()))?;
        let (pod, port) = target.split_once(':').ok_or_else(|| not_found("no port".into()))?;
        let port: u64 = port.parse().map_err(|_| not_found(format!("port {port}")))?;
        let pods = self.pods("app.kubernetes.io/instance=axiom25");
        let known = pods.iter().any(|(name, ports)| name == pod && ports.contains(&port));
        if !known || route != "/admin/reconnect-clients" {
            return Err(not_found(format!("Error from server (NotFound): {pod}:{port}{route}")));
        }
        Ok(r#"{"connections":1}"#.to_owned())
    }

    pub fn config_of(&self, name: &str) -> String {
        let map = self.object("ConfigMap", name).unwrap_or_else(|| panic!("ConfigMap {name} rendered"));
        map["data"]["config.yaml"].as_str().expect("config.yaml").to_owned()
    }
}

fn to_json(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Hash(hash) => {
            let map: Map<String, Value> = hash
                .iter()
                .map(|(key, value)| (key.as_str().map_or_else(|| format!("{key:?}"), str::to_owned), to_json(value)))
                .collect();
            Value::Object(map)
        }
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::String(text) => Value::String(text.clone()),
        Yaml::Integer(n) => (*n).into(),
        Yaml::Real(text) => text.parse::<f64>().map_or(Value::Null, Into::into),
        Yaml::Boolean(b) => (*b).into(),
        _ => Value::Null,
    }
}

impl CommandRunner for &RenderedCluster {
    fn run(&self, invocation: &Invocation) -> Result<String, CommandError> {
        let args: Vec<&str> = invocation.args.iter().map(String::as_str).collect();
        match (invocation.program.as_str(), args.as_slice()) {
            ("helm", ["get", "values", "axiom25", "--namespace", "axiom25", "--output", "json"]) => {
                Ok(self.values().to_string())
            }
            ("helm", ["upgrade", "axiom25", _chart, "--namespace", "axiom25", "--values", path]) => {
                let text = std::fs::read_to_string(path).expect("values file exists during the upgrade");
                *self.values.lock().expect("lock") = serde_json::from_str(&text).expect("values are JSON");
                Ok(String::new())
            }
            ("kubectl", ["--namespace", "axiom25", rest @ ..]) => {
                self.kubectl.lock().expect("lock").push(invocation.args.join(" "));
                match rest {
                    ["get", "service", name, "--ignore-not-found", "--output", "json"] => {
                        Ok(self.object("Service", name).map_or_else(String::new, |doc| doc.to_string()))
                    }
                    ["get", "deployment", name, "--ignore-not-found", "--output", "json"] => Ok(self
                        .object("Deployment", name)
                        .map_or_else(String::new, |_| self.deployment(name).to_string())),
                    ["scale", target, replicas] => {
                        let name = target.trim_start_matches("deployment/").to_owned();
                        let n = replicas.trim_start_matches("--replicas=").parse().expect("a count");
                        self.scaled.lock().expect("lock").insert(name, n);
                        Ok(String::new())
                    }
                    ["rollout", "status", _, _] => Ok(String::new()),
                    ["get", "pods", "--selector", selector, "--output", "name"] => {
                        Ok(self.pods(selector).iter().map(|(pod, _)| format!("pod/{pod}\n")).collect())
                    }
                    ["create", "--raw", path, "--filename", "/dev/null"] => self.proxy_post(path),
                    other => panic!("unexpected kubectl call {other:?}"),
                }
            }
            other => panic!("unexpected call {other:?}"),
        }
    }
}
