//! The Kubernetes back-end against the real chart: a cluster stand-in whose objects are what
//! `helm template` renders from the values the tool upgraded with, so each step's helm values and
//! kubectl calls are checked together with the Services and Deployments they produce.

mod cluster;
mod stack;

use axiom25_release::Color;
use axiom25_release::platform::kubernetes::{COLOR_LABEL, Kubernetes, KubernetesSettings};
use axiom25_release::platform::{ApiSetting, Platform};

use crate::cluster::RenderedCluster;

fn platform(cluster: &RenderedCluster) -> Kubernetes<&RenderedCluster> {
    Kubernetes::new(settings(cluster), cluster)
}

fn settings(cluster: &RenderedCluster) -> KubernetesSettings {
    KubernetesSettings {
        helm: "helm".into(),
        kubectl: "kubectl".into(),
        release: "axiom25".into(),
        namespace: "axiom25".into(),
        chart: cluster.chart(),
        api_name: "axiom25-api".into(),
        rollout_timeout_s: 120,
        admin_port: 8081,
        preview_endpoints: ("http://blue".into(), "http://green".into()),
    }
}

#[test]
fn a_release_cycle_renders_services_that_select_the_right_colour_after_each_step() {
    let Some(cluster) = RenderedCluster::install(serde_json::json!({
        "api": {"autoscaling": {"enabled": false}, "blueGreen": {"enabled": true, "activeColor": "blue", "blue": {"tag": "1.0.0", "replicaCount": 3}}}
    })) else {
        return;
    };
    let k8s = platform(&cluster);

    let state = k8s.state().expect("state");
    assert_eq!(state.active, Color::Blue);
    assert_eq!(state.blue.version.as_deref(), Some("1.0.0"));

    let faults: ApiSetting = "AXIOM25__FAULTS__ERROR_RATIO=0.25".parse().expect("valid");
    k8s.deploy(Color::Green, "2.0.0", &[faults], state.blue.replicas).expect("deploy");
    assert_eq!(cluster.service_selector("axiom25-api")[COLOR_LABEL], "blue", "a deploy does not move traffic");
    assert_eq!(cluster.service_selector("axiom25-api-green")[COLOR_LABEL], "green");
    let green = cluster.deployment("axiom25-api-green");
    assert_eq!(green["spec"]["template"]["spec"]["containers"][0]["image"], "axiom25/api:2.0.0");
    let config = cluster.config_of("axiom25-api-green");
    assert!(config.contains("error_ratio: 0.25"), "{config}");
    assert!(config.contains("color: green") && config.contains("version: 2.0.0"), "{config}");
    assert!(!cluster.config_of("axiom25-api-blue").contains("error_ratio"), "blue's config untouched");
    assert_eq!(
        cluster.kubectl_calls(),
        [
            "--namespace axiom25 get service axiom25-api --ignore-not-found --output json",
            "--namespace axiom25 get deployment axiom25-api-blue --ignore-not-found --output json",
            "--namespace axiom25 get deployment axiom25-api-green --ignore-not-found --output json",
            "--namespace axiom25 scale deployment/axiom25-api-green --replicas=3",
            "--namespace axiom25 rollout status deployment/axiom25-api-green --timeout=120s",
        ]
    );
    assert_eq!(k8s.state().expect("state").green.replicas, 3, "pre-scaled to the active colour's replicas");

    k8s.switch(Color::Green).expect("switch");
    assert_eq!(cluster.service_selector("axiom25-api")[COLOR_LABEL], "green");
    let _ = cluster.kubectl_calls();
    let asked = k8s.reconnect_clients(Color::Blue).expect("blue's pods listed");
    let pods: Vec<(&str, &Result<u64, String>)> =
        asked.iter().map(|answer| (answer.replica.as_str(), &answer.outcome)).collect();
    assert_eq!(
        pods,
        [("pod/axiom25-api-blue-0", &Ok(1)), ("pod/axiom25-api-blue-1", &Ok(1)), ("pod/axiom25-api-blue-2", &Ok(1))],
        "every pod of the colour that lost traffic, and only those, is asked on its admin port"
    );
    let calls = cluster.kubectl_calls();
    assert_eq!(
        calls[..2],
        [
            "--namespace axiom25 get pods --selector app.kubernetes.io/name=api,app.kubernetes.io/instance=axiom25,axiom25/color=blue --output name",
            "--namespace axiom25 create --raw /api/v1/namespaces/axiom25/pods/axiom25-api-blue-0:8081/proxy/admin/reconnect-clients --filename /dev/null",
        ]
    );
    let wrong_port = Kubernetes::new(KubernetesSettings { admin_port: 9, ..settings(&cluster) }, &cluster);
    let unreachable = wrong_port.reconnect_clients(Color::Blue).expect("a pod out of reach is an answer, not an error");
    assert!(unreachable.iter().all(|answer| answer.outcome.is_err()), "{unreachable:?}");
    assert_eq!(cluster.values()["api"]["blueGreen"]["green"]["tag"], "2.0.0", "the switch keeps the deploy's values");

    k8s.retire(Color::Blue).expect("retire");
    assert_eq!(cluster.values()["api"]["blueGreen"]["blue"]["replicaCount"], 0);
    assert_eq!(k8s.state().expect("state").blue.replicas, 0);

    // A rollback revives blue and points the Service back at it.
    k8s.revive(Color::Blue, 3).expect("revive");
    k8s.switch(Color::Blue).expect("switch back");
    assert_eq!(cluster.service_selector("axiom25-api")[COLOR_LABEL], "blue");
    assert_eq!(k8s.state().expect("state").blue.replicas, 3);

    // The next release on green replaces its config instead of merging the drill's faults in.
    k8s.deploy(Color::Green, "2.0.1", &[], 3).expect("deploy");
    assert!(!cluster.config_of("axiom25-api-green").contains("error_ratio"), "stale faults were dropped");
}
