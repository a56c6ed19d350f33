//! The analysis window: the new colour's calls against the gRPC SLOs of docs/contracts.md §7, read from
//! Prometheus. Counters are read at the switch and then every poll; the differences are the calls
//! the new colour served since it took traffic. A breach ends the window at once.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::color::Color;

/// gRPC codes that are bad events (docs/contracts.md §7): UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED,
/// INTERNAL, UNAVAILABLE, DATA_LOSS.
pub const BAD_CODES: &str = "2|4|12|13|14|15";
/// Only MatrixService calls count, never health or reflection.
pub const SLO_SERVICE: &str = "axiom25.matrix.v1.MatrixService";

/// Thresholds and timing of the analysis.
#[derive(Debug, Clone)]
pub struct AnalysisSettings {
    /// How long the new colour is watched.
    pub window: Duration,
    /// How often Prometheus is read.
    pub poll: Duration,
    /// Highest share of bad calls (availability objective 99.9 % → 0.001).
    pub max_error_ratio: f64,
    /// Highest share of calls slower than `latency_threshold_s` (latency objective 99 % → 0.01).
    pub max_slow_ratio: f64,
    /// The latency objective's threshold, a histogram bucket bound (0.1 s).
    pub latency_threshold_s: f64,
    /// Calls needed before the ratios are judged.
    pub min_calls: f64,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            poll: Duration::from_secs(2),
            max_error_ratio: 0.001,
            max_slow_ratio: 0.01,
            latency_threshold_s: 0.1,
            min_calls: 20.0,
        }
    }
}

/// Counters of one colour and version at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    /// MatrixService calls.
    pub calls: f64,
    /// Of which bad (codes in [`BAD_CODES`]).
    pub bad: f64,
    /// Of which answered within the latency threshold.
    pub fast: f64,
}

/// What the window found.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Within the SLOs (or too few calls to say otherwise; `judged` tells which).
    Healthy {
        /// Calls seen.
        calls: f64,
        /// Whether there were at least `min_calls`.
        judged: bool,
    },
    /// Out of an SLO: why.
    Breach(String),
}

/// Judges the calls between `base` and `now`.
#[must_use]
pub fn judge(settings: &AnalysisSettings, base: Counts, now: Counts) -> Option<String> {
    // A counter that went down belongs to a restarted process: count from zero.
    let delta = |now: f64, base: f64| if now >= base { now - base } else { now };
    let calls = delta(now.calls, base.calls);
    if calls < settings.min_calls {
        return None;
    }
    let bad = delta(now.bad, base.bad);
    let slow = calls - delta(now.fast, base.fast).min(calls);
    let (error_ratio, slow_ratio) = (bad / calls, slow / calls);
    if error_ratio > settings.max_error_ratio {
        return Some(format!(
            "error ratio {error_ratio:.4} over {calls} calls exceeds {} (gRPC availability SLO)",
            settings.max_error_ratio
        ));
    }
    if slow_ratio > settings.max_slow_ratio {
        return Some(format!(
            "{slow_ratio:.4} of {calls} calls slower than {} s exceeds {} (gRPC latency SLO)",
            settings.latency_threshold_s, settings.max_slow_ratio
        ));
    }
    None
}

/// PromQL for one counter of the MatrixService calls served by `color` at `version`: the api's
/// series joined with `axiom25_release_info` on the scrape target.
#[must_use]
pub fn query(color: Color, version: &str, series: &str, extra: &str) -> String {
    format!(
        "sum({series}{{rpc_service=\"{SLO_SERVICE}\"{extra}}} * on(job, instance) group_left() \
         axiom25_release_info{{color=\"{color}\",version=\"{version}\"}}) or vector(0)"
    )
}

/// Reads [`Counts`] of a colour and version.
pub trait MetricsSource: Send + Sync {
    /// The counters now.
    fn counts(&self, color: Color, version: &str) -> impl Future<Output = Result<Counts, String>> + Send;
}

/// Prometheus' HTTP API.
#[derive(Debug, Clone)]
pub struct Prometheus {
    base: String,
    latency_threshold_s: f64,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Prometheus {
    /// Prometheus at `base` (`http://host:port`).
    #[must_use]
    pub fn new(base: &str, latency_threshold_s: f64) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self { base: base.trim_end_matches('/').to_owned(), latency_threshold_s, client }
    }

    async fn scalar(&self, promql: &str) -> Result<f64, String> {
        let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("query", promql).finish();
        let uri = format!("{}/api/v1/query?{query}", self.base);
        let request = hyper::Request::get(&uri).body(Empty::new()).map_err(|error| error.to_string())?;
        let response = tokio::time::timeout(Duration::from_secs(5), self.client.request(request))
            .await
            .map_err(|_| format!("{uri}: no answer within 5 s"))?
            .map_err(|error| format!("{}: {error}", self.base))?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|error| error.to_string())?.to_bytes();
        if !status.is_success() {
            return Err(format!("Prometheus answered {status}: {}", String::from_utf8_lossy(&body)));
        }
        let answer: Value = serde_json::from_slice(&body).map_err(|error| error.to_string())?;
        parse_scalar(&answer)
    }
}

/// The single value of an instant vector answer (`data.result[0].value[1]`), 0 when empty.
///
/// # Errors
/// When the answer is not a vector.
pub fn parse_scalar(answer: &Value) -> Result<f64, String> {
    let results = answer["data"]["result"].as_array().ok_or_else(|| format!("not a vector: {answer}"))?;
    let Some(first) = results.first() else { return Ok(0.0) };
    first["value"][1].as_str().and_then(|text| text.parse().ok()).ok_or_else(|| format!("no value in {first}"))
}

impl MetricsSource for Prometheus {
    async fn counts(&self, color: Color, version: &str) -> Result<Counts, String> {
        let bucket = format!(",le=\"{}\"", self.latency_threshold_s);
        let bad = format!(",rpc_grpc_status_code=~\"{BAD_CODES}\"");
        Ok(Counts {
            calls: self.scalar(&query(color, version, "rpc_server_duration_seconds_count", "")).await?,
            bad: self.scalar(&query(color, version, "rpc_server_duration_seconds_count", &bad)).await?,
            fast: self.scalar(&query(color, version, "rpc_server_duration_seconds_bucket", &bucket)).await?,
        })
    }
}

/// Watches `color` at `version` for the window; returns at the first breach. An unreadable
/// Prometheus is a breach: a release nobody can judge is not promoted.
pub async fn watch(
    source: &impl MetricsSource,
    settings: &AnalysisSettings,
    color: Color,
    version: &str,
    base: Counts,
) -> Verdict {
    let until = tokio::time::Instant::now() + settings.window;
    let mut last = base;
    loop {
        let now = tokio::time::Instant::now();
        if now >= until {
            break;
        }
        tokio::time::sleep(settings.poll.min(until - now)).await;
        match source.counts(color, version).await {
            Ok(counts) => last = counts,
            Err(error) => return Verdict::Breach(format!("Prometheus unreadable, cannot judge: {error}")),
        }
        if let Some(reason) = judge(settings, base, last) {
            return Verdict::Breach(reason);
        }
    }
    let calls = if last.calls >= base.calls { last.calls - base.calls } else { last.calls };
    Verdict::Healthy { calls, judged: calls >= settings.min_calls }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(calls: f64, bad: f64, fast: f64) -> Counts {
        Counts { calls, bad, fast }
    }

    #[test]
    fn errors_above_the_availability_objective_breach() {
        let settings = AnalysisSettings::default();
        let base = counts(6.0, 0.0, 6.0);
        assert_eq!(judge(&settings, base, counts(1006.0, 1.0, 1006.0)), None, "0.1 % is within 99.9 %");
        let breach = judge(&settings, base, counts(1006.0, 5.0, 1006.0)).expect("0.5 % breaches");
        assert!(breach.contains("availability"), "{breach}");
    }

    #[test]
    fn slow_calls_above_the_latency_objective_breach() {
        let settings = AnalysisSettings::default();
        let breach = judge(&settings, counts(0.0, 0.0, 0.0), counts(100.0, 0.0, 90.0)).expect("10 % slow breaches");
        assert!(breach.contains("latency"), "{breach}");
        assert_eq!(judge(&settings, counts(0.0, 0.0, 0.0), counts(100.0, 0.0, 99.0)), None);
    }

    #[test]
    fn too_few_calls_are_not_judged_and_a_restarted_counter_counts_from_zero() {
        let settings = AnalysisSettings::default();
        assert_eq!(judge(&settings, counts(0.0, 0.0, 0.0), counts(5.0, 5.0, 0.0)), None);
        assert!(judge(&settings, counts(500.0, 0.0, 500.0), counts(40.0, 40.0, 40.0)).is_some());
    }

    #[test]
    fn the_query_joins_the_release_info_of_the_colour_and_version() {
        let promql = query(Color::Green, "2.0.0", "rpc_server_duration_seconds_count", ",rpc_grpc_status_code=~\"13\"");
        assert_eq!(
            promql,
            "sum(rpc_server_duration_seconds_count{rpc_service=\"axiom25.matrix.v1.MatrixService\",\
             rpc_grpc_status_code=~\"13\"} * on(job, instance) group_left() \
             axiom25_release_info{color=\"green\",version=\"2.0.0\"}) or vector(0)"
        );
    }

    #[test]
    fn an_instant_vector_answer_reads_as_its_value() {
        let answer = serde_json::json!({"status": "success", "data": {"resultType": "vector",
            "result": [{"metric": {}, "value": [1_700_000_000.0, "42"]}]}});
        assert_eq!(parse_scalar(&answer), Ok(42.0));
        let empty = serde_json::json!({"data": {"result": []}});
        assert_eq!(parse_scalar(&empty), Ok(0.0));
        assert!(parse_scalar(&serde_json::json!({"error": "bad"})).is_err());
    }

    struct Scripted(std::sync::Mutex<Vec<Result<Counts, String>>>);

    impl MetricsSource for Scripted {
        async fn counts(&self, _: Color, _: &str) -> Result<Counts, String> {
            self.0.lock().expect("lock").remove(0)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_ends_at_the_first_breach_and_an_unreadable_prometheus_is_one() {
        let settings =
            AnalysisSettings { window: Duration::from_secs(30), poll: Duration::from_secs(1), ..Default::default() };
        let source = Scripted(std::sync::Mutex::new(vec![Ok(counts(10.0, 0.0, 10.0)), Ok(counts(100.0, 50.0, 100.0))]));
        let started = tokio::time::Instant::now();
        let verdict = watch(&source, &settings, Color::Green, "2", Counts::default()).await;
        assert!(matches!(verdict, Verdict::Breach(_)), "{verdict:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(2), "detected at the second poll, not at the window's end");

        let source = Scripted(std::sync::Mutex::new(vec![Err("connection refused".into())]));
        let verdict = watch(&source, &settings, Color::Green, "2", Counts::default()).await;
        assert!(matches!(verdict, Verdict::Breach(reason) if reason.contains("unreadable")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_clean_window_is_healthy_after_its_full_length() {
        let settings =
            AnalysisSettings { window: Duration::from_secs(3), poll: Duration::from_secs(1), ..Default::default() };
        let source = Scripted(std::sync::Mutex::new(
            (1..=3).map(|i| Ok(counts(f64::from(i) * 100.0, 0.0, f64::from(i) * 100.0))).collect(),
        ));
        let verdict = watch(&source, &settings, Color::Blue, "1", Counts::default()).await;
        assert_eq!(verdict, Verdict::Healthy { calls: 300.0, judged: true });
    }
}
