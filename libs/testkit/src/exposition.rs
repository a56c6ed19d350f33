//! The Prometheus text exposition format (version 0.0.4), parsed into samples that tests look up
//! by name and a subset of their labels.
//!
//! A small parser of its own: the crates that exist split label sets at the first `}` and so break
//! on the route templates this workspace exports as label values (`http_route="/api/v1/matrix/{op}"`).

use std::collections::BTreeMap;
use std::fmt;

/// One sample line: `name{labels} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name, suffix included (`_total`, `_bucket`, `_sum`, `_count`).
    pub name: String,
    /// Label names to unescaped values.
    pub labels: BTreeMap<String, String>,
    /// The value (`+Inf`, `-Inf` and `NaN` included).
    pub value: f64,
}

impl Sample {
    /// Whether every `(name, value)` in `labels` is one of this sample's labels.
    pub fn has_labels(&self, labels: &[(&str, &str)]) -> bool {
        labels.iter().all(|(key, value)| self.labels.get(*key).is_some_and(|found| found == value))
    }
}

/// Every sample of one exposition, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// The samples; `# HELP`, `# TYPE` and other comments are skipped.
    pub samples: Vec<Sample>,
}

/// A line that is neither a comment nor a sample.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}: {text:?}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub reason: &'static str,
    /// The line itself.
    pub text: String,
}

impl Exposition {
    /// Parses a whole exposition; the first malformed line is an error.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let samples = text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
            .map(|(index, line)| {
                parse_sample(line.trim()).map_err(|reason| ParseError { line: index + 1, reason, text: line.into() })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { samples })
    }

    /// The samples named `name` whose labels include `labels`.
    pub fn matching<'a>(&'a self, name: &'a str, labels: &'a [(&str, &str)]) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |sample| sample.name == name && sample.has_labels(labels))
    }

    /// The value of the first sample `name{labels...}` (labels matched as a subset).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.matching(name, labels).next().map(|sample| sample.value)
    }

    /// The sum over every sample `name{labels...}`: 0 when there is none.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|sample| sample.value).sum()
    }
}

/// The samples again in text form, one per line (for failure messages).
impl fmt::Display for Exposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for sample in &self.samples {
            let labels: Vec<String> = sample.labels.iter().map(|(key, value)| format!("{key}={value:?}")).collect();
            writeln!(f, "{}{{{}}} {}", sample.name, labels.join(","), sample.value)?;
        }
        Ok(())
    }
}

fn parse_sample(line: &str) -> Result<Sample, &'static str> {
    let name_end = line.find(|c: char| c == '{' || c.is_ascii_whitespace()).ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return Err("bad metric name");
    }
    let (labels, rest) = match line[name_end..].strip_prefix('{') {
        Some(after) => parse_labels(after)?,
        None => (BTreeMap::new(), &line[name_end..]),
    };
    let value = rest.split_ascii_whitespace().next().ok_or("no value")?;
    let value = value.parse::<f64>().map_err(|_| "bad value")?;
    Ok(Sample { name: name.into(), labels, value })
}

/// Parses `name="value",...}` (after the `{`); returns the labels and what follows the `}`.
fn parse_labels(mut rest: &str) -> Result<(BTreeMap<String, String>, &str), &'static str> {
    let mut labels = BTreeMap::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (key, after) = rest.split_once('=').ok_or("label without '='")?;
        let mut chars = after.strip_prefix('"').ok_or("label value not quoted")?.char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (at, '"') => break at,
                (_, '\\') => match chars.next().ok_or("unterminated label value")?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.trim().to_owned(), value);
        rest = after[1 + end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP http_server_request_duration_seconds Duration.\n\
        # TYPE http_server_request_duration_seconds histogram\n\
        http_server_request_duration_seconds_bucket{http_route=\"/api/v1/matrix/{op}\",http_request_method=\"POST\",le=\"0.1\"} 3\n\
        http_server_request_duration_seconds_bucket{http_route=\"/api/v1/matrix/{op}\",http_request_method=\"POST\",le=\"+Inf\"} 4\n\
        http_server_request_duration_seconds_count{http_route=\"/api/v1/matrix/{op}\",http_request_method=\"POST\"} 4\n\
        http_server_request_duration_seconds_count{http_route=\"/livez\",http_request_method=\"GET\"} 2\n\
        \n\
        axiom25_build_info{service=\"api\",version=\"0.1.0\",git_sha=\"a\\\"b\\\\c\\nd\"} 1\n\
        process_cpu_seconds_total 0.25 1700000000000\n\
        up_ratio NaN\n";

    #[test]
    fn a_label_value_holding_braces_commas_and_escapes_is_read_whole() {
        let exposition = Exposition::parse(TEXT).expect("parses");
        let build = exposition.matching("axiom25_build_info", &[]).next().expect("build info");
        assert_eq!(build.labels["git_sha"], "a\"b\\c\nd");
        assert_eq!(
            exposition.value(
                "http_server_request_duration_seconds_bucket",
                &[("http_route", "/api/v1/matrix/{op}"), ("le", "+Inf")]
            ),
            Some(4.0)
        );
    }

    #[test]
    fn labels_are_matched_as_a_subset_and_sums_cover_every_match() {
        let exposition = Exposition::parse(TEXT).expect("parses");
        assert_eq!(exposition.sum("http_server_request_duration_seconds_count", &[]), 6.0);
        assert_eq!(
            exposition.sum("http_server_request_duration_seconds_count", &[("http_request_method", "GET")]),
            2.0
        );
        assert_eq!(exposition.sum("http_server_request_duration_seconds_count", &[("http_route", "/nope")]), 0.0);
        assert_eq!(exposition.value("http_server_request_duration_seconds", &[]), None, "names match exactly");
    }

    #[test]
    fn samples_without_labels_keep_their_value_and_drop_the_timestamp() {
        let exposition = Exposition::parse(TEXT).expect("parses");
        assert_eq!(exposition.value("process_cpu_seconds_total", &[]), Some(0.25));
        assert!(exposition.value("up_ratio", &[]).expect("present").is_nan());
        assert_eq!(exposition.samples.len(), 7);
    }

    #[test]
    fn the_text_form_lists_every_sample() {
        let exposition = Exposition::parse("a_total{x=\"1\",y=\"q\\\"\"} 2\nb 0.5\n").expect("parses");
        assert_eq!(exposition.to_string(), "a_total{x=\"1\",y=\"q\\\"\"} 2\nb{} 0.5\n");
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_its_line() {
        let error = Exposition::parse("ok 1\nbroken{le=\"0.1} 2\n").expect_err("unterminated");
        assert_eq!((error.line, error.reason), (2, "unterminated label value"));
        assert_eq!(Exposition::parse("novalue\n").expect_err("no value").reason, "no value");
        assert_eq!(Exposition::parse("x{a=b} 1\n").expect_err("unquoted").reason, "label value not quoted");
    }
}
