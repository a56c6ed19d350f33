//! A trace's spans as a waterfall: each span under its parent, children by start time, with its
//! bar's offset and width in a 1000-unit wide SVG (attributes, not inline styles, for the CSP).

use std::collections::{BTreeSet, HashMap, HashSet};

use super::format;
use crate::ops::Span;

/// Width of the SVG viewBox the bars are drawn in.
const SCALE: f64 = 1000.0;
/// Deepest indentation the stylesheet has a class for.
const MAX_DEPTH: usize = 9;

/// The extent of a trace.
pub struct Summary {
    /// Earliest span start, Unix nanoseconds.
    pub start: u64,
    /// From the earliest start to the latest end.
    pub duration_ns: u64,
    /// Its services, sorted, comma-separated.
    pub services: String,
}

impl Summary {
    /// The extent of `spans`.
    pub fn of(spans: &[Span]) -> Self {
        let start = spans.iter().map(|span| span.start_time_unix_nano).min().unwrap_or(0);
        let end = spans.iter().map(|span| span.end_time_unix_nano.max(span.start_time_unix_nano)).max().unwrap_or(0);
        let services: BTreeSet<&str> = spans.iter().map(|span| span.service.as_str()).collect();
        Self {
            start,
            duration_ns: end.saturating_sub(start),
            services: services.into_iter().collect::<Vec<_>>().join(", "),
        }
    }
}

/// One span as the trace page shows it.
pub struct SpanRow {
    pub span_id: String,
    pub service: String,
    pub name: String,
    pub kind: String,
    pub duration: String,
    pub offset: String,
    pub status: String,
    pub status_message: String,
    pub error: bool,
    pub depth: usize,
    pub x: String,
    pub width: String,
    pub attributes: Vec<(String, String)>,
}

/// The spans in waterfall order: depth first from the roots (spans whose parent is not in the
/// trace), siblings by start time.
pub fn rows(spans: &[Span], summary: &Summary) -> Vec<SpanRow> {
    let ids: HashSet<&str> = spans.iter().map(|span| span.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (index, span) in spans.iter().enumerate() {
        let parent = span.parent_span_id.as_str();
        if parent.is_empty() || parent == span.span_id || !ids.contains(parent) {
            roots.push(index);
        } else {
            children.entry(parent).or_default().push(index);
        }
    }
    let by_start = |list: &mut Vec<usize>| list.sort_by_key(|&index| (spans[index].start_time_unix_nano, index));
    by_start(&mut roots);
    children.values_mut().for_each(by_start);

    let mut rows = Vec::with_capacity(spans.len());
    let mut visited = vec![false; spans.len()];
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&index| (index, 0)).collect();
    while let Some((index, depth)) = stack.pop() {
        // A cycle of parent ids would otherwise loop forever; each span is shown once.
        if std::mem::replace(&mut visited[index], true) {
            continue;
        }
        let span = &spans[index];
        rows.push(row(span, depth, summary));
        if let Some(kids) = children.get(span.span_id.as_str()) {
            stack.extend(kids.iter().rev().map(|&child| (child, depth + 1)));
        }
    }
    // Spans caught in a parent cycle reach no root: shown at the top level after the rest.
    for (index, span) in spans.iter().enumerate() {
        if !visited[index] {
            rows.push(row(span, 0, summary));
        }
    }
    rows
}

fn row(span: &Span, depth: usize, summary: &Summary) -> SpanRow {
    let total = summary.duration_ns.max(1) as f64;
    let offset = span.start_time_unix_nano.saturating_sub(summary.start);
    let duration = span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano);
    let x = (offset as f64 / total * SCALE).min(SCALE);
    // At least a sliver, so an instant span is still visible.
    let width = (duration as f64 / total * SCALE).max(2.0).min(SCALE - x).max(0.0);
    let error = span.status_code == "STATUS_CODE_ERROR";
    SpanRow {
        span_id: span.span_id.clone(),
        service: span.service.clone(),
        name: span.name.clone(),
        kind: span.kind.strip_prefix("SPAN_KIND_").unwrap_or(&span.kind).to_ascii_lowercase(),
        duration: format::nanos(duration),
        offset: format::nanos(offset),
        status: span.status_code.strip_prefix("STATUS_CODE_").unwrap_or(&span.status_code).to_ascii_lowercase(),
        status_message: span.status_message.clone(),
        error,
        depth: depth.min(MAX_DEPTH),
        x: format!("{x:.1}"),
        width: format!("{width:.1}"),
        attributes: span
            .attributes
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (key.clone(), value)
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: &str, service: &str, start: u64, end: u64) -> Span {
        Span {
            trace_id: String::new(),
            span_id: id.into(),
            parent_span_id: parent.into(),
            service: service.into(),
            name: format!("span {id}"),
            kind: "SPAN_KIND_SERVER".into(),
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            status_code: "STATUS_CODE_UNSET".into(),
            status_message: String::new(),
            attributes: serde_json::Map::new(),
        }
    }

    #[test]
    fn children_follow_their_parent_by_start_time_with_bars_in_proportion() {
        let spans = vec![
            span("c", "a", "api", 600, 1000),
            span("b", "a", "api", 100, 500),
            span("a", "", "ui-gateway", 0, 1000),
            span("d", "b", "api", 200, 300),
        ];
        let summary = Summary::of(&spans);
        assert_eq!((summary.start, summary.duration_ns, summary.services.as_str()), (0, 1000, "api, ui-gateway"));
        let rows = rows(&spans, &summary);
        let order: Vec<(&str, usize)> = rows.iter().map(|row| (row.span_id.as_str(), row.depth)).collect();
        assert_eq!(order, [("a", 0), ("b", 1), ("d", 2), ("c", 1)]);
        assert_eq!((rows[1].x.as_str(), rows[1].width.as_str()), ("100.0", "400.0"));
        assert_eq!((rows[3].x.as_str(), rows[3].width.as_str()), ("600.0", "400.0"));
    }

    #[test]
    fn orphans_and_parent_cycles_are_still_shown_once_each() {
        let spans = vec![span("a", "b", "api", 0, 10), span("b", "a", "api", 5, 10), span("o", "missing", "api", 1, 2)];
        let rows = rows(&spans, &Summary::of(&spans));
        let mut ids: Vec<&str> = rows.iter().map(|row| row.span_id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["a", "b", "o"]);
    }
}
