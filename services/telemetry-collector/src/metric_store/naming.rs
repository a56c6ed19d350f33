//! Prometheus names for OTLP metric names, units and attribute keys, as the Collector translates them.

/// A Prometheus label name for an attribute key, or `None` when nothing of it is left.
pub(super) fn label_name(key: &str) -> Option<String> {
    let mut name = String::with_capacity(key.len() + 4);
    for c in key.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }) {
        if !(c == '_' && name.ends_with('_')) {
            name.push(c);
        }
    }
    if name.chars().all(|c| c == '_') {
        return None;
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "key_");
    }
    Some(name)
}

/// What decides the suffixes of a translated name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NameKind {
    Gauge,
    MonotonicSum,
    Other,
}

/// The Prometheus name of an OTLP metric (see the module documentation).
pub(super) fn prometheus_name(name: &str, unit: &str, kind: NameKind) -> String {
    let (main_unit, per_unit) = unit_suffixes(unit);
    let mut tokens: Vec<&str> =
        name.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':')).filter(|token| !token.is_empty()).collect();
    let per_unit = per_unit.strip_suffix('_').unwrap_or(&per_unit);
    let per_unit = if per_unit == "per" || tokens.contains(&per_unit) { "" } else { per_unit };
    let mut main_unit = if tokens.contains(&main_unit.as_str()) { "" } else { main_unit.as_str() };
    if !per_unit.is_empty() {
        main_unit = main_unit.strip_suffix('_').unwrap_or(main_unit);
    }
    tokens.extend([main_unit, per_unit].into_iter().filter(|unit| !unit.is_empty()));
    if kind == NameKind::MonotonicSum {
        tokens.retain(|token| *token != "total");
        tokens.push("total");
    }
    if unit == "1" && kind == NameKind::Gauge {
        tokens.retain(|token| *token != "ratio");
        tokens.push("ratio");
    }
    let mut translated = tokens.join("_");
    if translated.starts_with(|c: char| c.is_ascii_digit()) {
        translated.insert(0, '_');
    }
    translated
}

/// The main and "per" unit suffixes of a UCUM unit, cleaned to name characters (`By/s` →
/// `bytes`, `per_second`); annotations in braces give no suffix.
pub(super) fn unit_suffixes(unit: &str) -> (String, String) {
    let (main, per) = unit.split_once('/').map_or((unit, None), |(main, per)| (main, Some(per)));
    let usable = |part: &str| !part.is_empty() && !part.contains(['{', '}']);
    let main = main.trim();
    let main = if usable(main) { main_unit_word(main).unwrap_or(main) } else { "" };
    let per = per.map(str::trim).filter(|per| usable(per)).map(|per| per_unit_word(per).unwrap_or(per));
    let per = per.map(|per| format!("per_{per}")).unwrap_or_default();
    (clean_unit(main), clean_unit(&per))
}

pub(super) fn main_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        _ => return None,
    })
}

pub(super) fn per_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// Name characters only, runs of `_` made one, no leading `_`.
pub(super) fn clean_unit(unit: &str) -> String {
    let mut cleaned = String::with_capacity(unit.len());
    for c in unit.chars().map(|c| if c.is_ascii_alphanumeric() || c == ':' { c } else { '_' }) {
        if !(c == '_' && (cleaned.is_empty() || cleaned.ends_with('_'))) {
            cleaned.push(c);
        }
    }
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_translated_as_the_collectors_prometheus_exporter_does() {
        use NameKind::{Gauge, MonotonicSum, Other};
        let table = [
            ("http.server.request.duration", "s", Other, "http_server_request_duration_seconds"),
            ("http.client.duration", "ms", Other, "http_client_duration_milliseconds"),
            ("process.memory.usage", "By", Gauge, "process_memory_usage_bytes"),
            ("system.cpu.utilization", "1", Gauge, "system_cpu_utilization_ratio"),
            ("system.cpu.utilization", "1", Other, "system_cpu_utilization"),
            ("http.requests", "{request}", MonotonicSum, "http_requests_total"),
            ("requests", "1", MonotonicSum, "requests_total"),
            ("requests_total", "", MonotonicSum, "requests_total"),
            ("total.requests", "", MonotonicSum, "requests_total"),
            ("network.io", "By/s", Gauge, "network_io_bytes_per_second"),
            ("queue.rate", "{item}/s", Gauge, "queue_rate_per_second"),
            ("latency_seconds", "s", Other, "latency_seconds"),
            ("room.temperature", "Cel", Gauge, "room_temperature_celsius"),
            ("disk.io", "KiBy", MonotonicSum, "disk_io_kibibytes_total"),
            ("widgets", "custom unit", Gauge, "widgets_custom_unit"),
            ("2xx.responses", "", MonotonicSum, "_2xx_responses_total"),
            ("app:cache/hits", "", Gauge, "app:cache_hits"),
            ("weird__name..x-y", "", Gauge, "weird_name_x_y"),
            ("déjà vu", "", Gauge, "d_j_vu"),
        ];
        for (name, unit, kind, expected) in table {
            assert_eq!(prometheus_name(name, unit, kind), expected, "{name} [{unit}] {kind:?}");
        }
    }
}
