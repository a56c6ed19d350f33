//! Prometheus text exposition (format 0.0.4) shared by span metrics and the metric store: escaping,
//! numbers written the way Prometheus' Go client writes them, and the merge of several expositions
//! into the one `/metrics` page.
//!
//! Merging: the collector's own metrics come first, then each further part in order. A family is
//! identified by its name. A later family whose name is already taken by a family of the same type has
//! its samples appended to that family's block (a sample whose series is already present is dropped,
//! so the page never holds one series twice); a later family of another type, or one whose sample
//! names (`_bucket`, `_sum`, `_count`) overlap another family's, is left out and reported as a
//! [`NameConflict`] so its owner can refuse it from then on.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// The type of a metric family, as its `# TYPE` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// Monotonic total.
    Counter,
    /// Current value.
    Gauge,
    /// Cumulative buckets with `le`, `_sum` and `_count`.
    Histogram,
    /// Quantiles with `quantile`, `_sum` and `_count`.
    Summary,
    /// Samples without a `# TYPE` line, or of a type this format does not know.
    Untyped,
}

impl MetricType {
    /// The name a `# TYPE` line uses.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
            Self::Untyped => "untyped",
        }
    }

    fn parse(name: &str) -> Self {
        match name {
            "counter" => Self::Counter,
            "gauge" => Self::Gauge,
            "histogram" => Self::Histogram,
            "summary" => Self::Summary,
            _ => Self::Untyped,
        }
    }

    /// Suffixes of the sample names a family of this type writes, `""` being the family name itself.
    #[must_use]
    pub const fn sample_suffixes(self) -> &'static [&'static str] {
        match self {
            Self::Histogram => &["_bucket", "_sum", "_count"],
            Self::Summary => &["", "_sum", "_count"],
            Self::Counter | Self::Gauge | Self::Untyped => &[""],
        }
    }

    /// Every name a family `name` of this type occupies: its own and those of its samples.
    #[must_use]
    pub fn occupied_names(self, name: &str) -> Vec<String> {
        let mut names = vec![name.to_owned()];
        names.extend(self.sample_suffixes().iter().filter(|suffix| !suffix.is_empty()).map(|s| format!("{name}{s}")));
        names
    }
}

/// Writes `# HELP` (when `help` is not empty) and `# TYPE` lines of a family.
pub fn write_family_header(out: &mut String, name: &str, help: &str, kind: MetricType) {
    if !help.is_empty() {
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        for c in help.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "# TYPE {name} {}", kind.as_str());
}

/// Writes a label value with backslash, double quote and newline escaped.
pub fn write_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Longest label value kept from client data, in bytes: a megabyte-long span name must not become a
/// megabyte of series held for minutes. Longer values are cut at a character boundary.
pub const MAX_LABEL_VALUE_BYTES: usize = 256;

/// `value` cut to [`MAX_LABEL_VALUE_BYTES`] at a character boundary.
#[must_use]
pub fn bounded_label(value: &str) -> &str {
    if value.len() <= MAX_LABEL_VALUE_BYTES {
        return value;
    }
    let mut end = MAX_LABEL_VALUE_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// Appends `name="value"` to a rendered label set (`a="1",b="2"`), with a comma when needed.
pub fn push_label(labels: &mut String, name: &str, value: &str) {
    if !labels.is_empty() {
        labels.push(',');
    }
    labels.push_str(name);
    labels.push_str("=\"");
    write_label_value(labels, value);
    labels.push('"');
}

/// Writes the series part of a sample line and the space before its value:
/// `name{labels,le="0.5"} `. `labels` is already rendered; `bound` adds `le` or `quantile`.
pub fn write_series(out: &mut String, name: &str, suffix: &str, labels: &str, bound: Option<(&str, f64)>) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || bound.is_some() {
        out.push('{');
        out.push_str(labels);
        if let Some((label, value)) = bound {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            write_float(out, value);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
}

/// Writes `value` as Prometheus' Go client does (`strconv.FormatFloat(v, 'g', -1, 64)`): shortest
/// round-trip digits, exponent form below 1e-4 and from 1e6 (`1e+06`), and `+Inf`, `-Inf`, `NaN`.
pub fn write_float(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value == 0.0 {
        out.push('0');
    } else if value.fract() == 0.0 && value.abs() < 1e6 {
        let _ = write!(out, "{}", value as i64);
    } else {
        write_float_digits(out, value);
    }
}

fn write_float_digits(out: &mut String, value: f64) {
    let mut scientific = StackText::default();
    let _ = write!(scientific, "{:e}", value.abs());
    let text = scientific.as_str();
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits = StackText::digits_of(mantissa);
    let digits = digits.as_str();
    if value < 0.0 {
        out.push('-');
    }
    if !(-4..6).contains(&exponent) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exponent < 0 { '-' } else { '+' }, exponent.unsigned_abs());
    } else if exponent < 0 {
        out.push_str("0.");
        (0..exponent.unsigned_abs() - 1).for_each(|_| out.push('0'));
        out.push_str(digits);
    } else {
        let integer_digits = exponent.unsigned_abs() as usize + 1;
        if digits.len() <= integer_digits {
            out.push_str(digits);
            (digits.len()..integer_digits).for_each(|_| out.push('0'));
        } else {
            out.push_str(&digits[..integer_digits]);
            out.push('.');
            out.push_str(&digits[integer_digits..]);
        }
    }
}

/// A small stack buffer for formatting one number without allocating.
#[derive(Default)]
struct StackText {
    bytes: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }

    fn digits_of(mantissa: &str) -> Self {
        let mut digits = Self::default();
        for b in mantissa.bytes().filter(u8::is_ascii_digit).take(digits.bytes.len()) {
            digits.bytes[digits.len] = b;
            digits.len += 1;
        }
        digits
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let target = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        target.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A family left out of a merged page because its name is taken by a family of another type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameConflict {
    /// Index of the part (in the slice given to [`merge`]) the family came from.
    pub part: usize,
    /// The family left out.
    pub name: String,
    /// Its type.
    pub kind: MetricType,
    /// Samples left out with it.
    pub samples: usize,
}

/// One exposition made from several, and what had to be left out.
#[derive(Debug, Clone, Default)]
pub struct MergedExposition {
    /// The page.
    pub text: String,
    /// Families left out, in the order met.
    pub conflicts: Vec<NameConflict>,
}

/// Merges expositions into one with no duplicate family (see the module documentation); earlier
/// parts win.
#[must_use]
pub fn merge(parts: &[&str]) -> MergedExposition {
    let mut families: Vec<MergedFamily<'_>> = Vec::new();
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    let mut occupied: HashMap<String, usize> = HashMap::new();
    let mut conflicts = Vec::new();
    for (part, text) in parts.iter().enumerate() {
        for family in parse(text) {
            if let Some(&index) = by_name.get(family.name) {
                if families[index].family.kind == family.kind {
                    families[index].absorb(family);
                    continue;
                }
            } else {
                let names = family.kind.occupied_names(family.name);
                if !names.iter().any(|name| occupied.contains_key(name)) {
                    let index = families.len();
                    occupied.extend(names.into_iter().map(|name| (name, index)));
                    by_name.insert(family.name, index);
                    families.push(MergedFamily::from(family));
                    continue;
                }
            }
            conflicts.push(NameConflict {
                part,
                name: family.name.to_owned(),
                kind: family.kind,
                samples: family.samples.len(),
            });
        }
    }
    let mut text = String::with_capacity(parts.iter().map(|part| part.len()).sum::<usize>());
    for family in families.iter().map(|merged| &merged.family).filter(|family| !family.samples.is_empty()) {
        if let Some(help) = family.help {
            let _ = writeln!(text, "# HELP {} {help}", family.name);
        }
        if family.typed {
            let _ = writeln!(text, "# TYPE {} {}", family.name, family.kind.as_str());
        }
        for sample in &family.samples {
            text.push_str(sample);
            text.push('\n');
        }
    }
    MergedExposition { text, conflicts }
}

/// A family as read from one exposition: lines borrowed, help still escaped.
#[derive(Debug)]
struct ParsedFamily<'a> {
    name: &'a str,
    kind: MetricType,
    typed: bool,
    help: Option<&'a str>,
    samples: Vec<&'a str>,
}

impl<'a> ParsedFamily<'a> {
    fn new(name: &'a str) -> Self {
        Self { name, kind: MetricType::Untyped, typed: false, help: None, samples: Vec::new() }
    }

    fn owns_sample(&self, sample_name: &str) -> bool {
        sample_name.strip_prefix(self.name).is_some_and(|suffix| self.kind.sample_suffixes().contains(&suffix))
    }
}

/// A family merged from every exposition that has it.
#[derive(Debug)]
struct MergedFamily<'a> {
    family: ParsedFamily<'a>,
    // Built on the first merge only: most families never receive a second block.
    series: Option<HashSet<&'a str>>,
}

impl<'a> From<ParsedFamily<'a>> for MergedFamily<'a> {
    fn from(family: ParsedFamily<'a>) -> Self {
        Self { family, series: None }
    }
}

impl<'a> MergedFamily<'a> {
    fn absorb(&mut self, family: ParsedFamily<'a>) {
        let merged = &mut self.family;
        merged.help = merged.help.or(family.help);
        merged.typed |= family.typed;
        let samples = &merged.samples;
        let series = self.series.get_or_insert_with(|| samples.iter().map(|line| series_of(line)).collect());
        for sample in family.samples {
            if series.insert(series_of(sample)) {
                merged.samples.push(sample);
            }
        }
    }
}

/// Reads an exposition into families, in order. A family's block starts at its `# HELP` or
/// `# TYPE` line; samples that match no open family start an untyped one.
fn parse(text: &str) -> Vec<ParsedFamily<'_>> {
    let mut families: Vec<ParsedFamily<'_>> = Vec::new();
    for line in text.lines().map(str::trim_end).filter(|line| !line.is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            let (Some(keyword @ ("HELP" | "TYPE")), Some(name)) = (words.next(), words.next()) else {
                continue;
            };
            let rest = words.next().unwrap_or("").trim();
            let reuse = families
                .last()
                .is_some_and(|open| open.name == name && open.samples.is_empty() && !(keyword == "TYPE" && open.typed));
            if !reuse {
                families.push(ParsedFamily::new(name));
            }
            let Some(open) = families.last_mut() else { continue };
            if keyword == "TYPE" {
                open.kind = MetricType::parse(rest);
                open.typed = true;
            } else if open.help.is_none() {
                open.help = Some(rest);
            }
            continue;
        }
        let name = sample_name(line);
        if !families.last().is_some_and(|open| open.owns_sample(name)) {
            families.push(ParsedFamily::new(name));
        }
        if let Some(open) = families.last_mut() {
            open.samples.push(line);
        }
    }
    families
}

fn sample_name(line: &str) -> &str {
    line.find(['{', ' ', '\t']).map_or(line, |end| &line[..end])
}

/// The series a sample line writes: its name and label set, without value and timestamp.
fn series_of(line: &str) -> &str {
    let name = sample_name(line);
    if !line[name.len()..].starts_with('{') {
        return name;
    }
    let (mut quoted, mut escaped) = (false, false);
    for (offset, c) in line.char_indices().skip(name.len() + 1) {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return &line[..=offset],
            _ => {}
        }
    }
    line
}

#[cfg(test)]
pub(crate) mod checker {
    //! A strict reader of the text format for tests: what Prometheus would refuse, it refuses.

    use std::collections::{HashMap, HashSet};

    /// One sample: name, labels in written order, value.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct Sample {
        pub(crate) name: String,
        pub(crate) labels: Vec<(String, String)>,
        pub(crate) value: f64,
    }

    impl Sample {
        pub(crate) fn label(&self, name: &str) -> Option<&str> {
            self.labels.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
        }
    }

    /// Checks `text` and returns its samples and the type of each family.
    pub(crate) fn check(text: &str) -> Result<(Vec<Sample>, HashMap<String, String>), String> {
        let mut types: HashMap<String, String> = HashMap::new();
        let mut current: Option<(String, String)> = None;
        let mut seen_series = HashSet::new();
        let mut samples = Vec::new();
        for line in text.lines().filter(|line| !line.is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').ok_or(format!("bad TYPE line {line:?}"))?;
                if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                    return Err(format!("family {name} declared twice"));
                }
                current = Some((name.to_owned(), kind.to_owned()));
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let sample = parse_sample(line)?;
            let (family, kind) = current.as_ref().ok_or(format!("sample before any TYPE: {line:?}"))?;
            let suffixes: &[&str] = match kind.as_str() {
                "histogram" => &["_bucket", "_sum", "_count"],
                "summary" => &["", "_sum", "_count"],
                _ => &[""],
            };
            if !suffixes.iter().any(|suffix| sample.name == format!("{family}{suffix}")) {
                return Err(format!("sample {} outside its family {family}", sample.name));
            }
            let mut key: Vec<_> = sample.labels.clone();
            key.sort();
            if !seen_series.insert((sample.name.clone(), key)) {
                return Err(format!("series written twice: {line:?}"));
            }
            samples.push(sample);
        }
        Ok((samples, types))
    }

    fn parse_sample(line: &str) -> Result<Sample, String> {
        let bad = || format!("bad sample line {line:?}");
        let name_end = line.find(['{', ' ']).ok_or_else(bad)?;
        let name = &line[..name_end];
        let valid_name = name
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()));
        if name.is_empty() || !valid_name {
            return Err(format!("invalid metric name {name:?}"));
        }
        let mut labels = Vec::new();
        let mut rest = &line[name_end..];
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            loop {
                let key_start = chars.peek().map(|(i, _)| *i).ok_or_else(bad)?;
                if body[key_start..].starts_with('}') {
                    rest = &body[key_start + 1..];
                    break;
                }
                let eq = body[key_start..].find("=\"").ok_or_else(bad)? + key_start;
                let key = &body[key_start..eq];
                if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
                    return Err(format!("invalid label name {key:?}"));
                }
                if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("invalid label name {key:?}"));
                }
                while chars.peek().is_some_and(|(i, _)| *i <= eq + 1) {
                    chars.next();
                }
                let mut value = String::new();
                loop {
                    match chars.next().ok_or_else(bad)?.1 {
                        '\\' => match chars.next().ok_or_else(bad)?.1 {
                            'n' => value.push('\n'),
                            c @ ('\\' | '"') => value.push(c),
                            _ => return Err(bad()),
                        },
                        '"' => break,
                        '\n' => return Err(bad()),
                        c => value.push(c),
                    }
                }
                labels.push((key.to_owned(), value));
                if chars.peek().is_some_and(|(_, c)| *c == ',') {
                    chars.next();
                }
            }
        }
        let value = rest.strip_prefix(' ').ok_or_else(bad)?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            other => other.parse().map_err(|_| bad())?,
        };
        Ok(Sample { name: name.to_owned(), labels, value })
    }

    type Labels = Vec<(String, String)>;

    /// Checks that every histogram in `samples` has ascending, cumulative buckets ending at `+Inf`
    /// equal to its `_count`.
    pub(crate) fn check_histograms(samples: &[Sample], family: &str) -> Result<(), String> {
        let mut series: HashMap<Labels, Vec<(f64, f64)>> = HashMap::new();
        for sample in samples.iter().filter(|s| s.name == format!("{family}_bucket")) {
            let le = sample.label("le").ok_or("bucket without le")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().map_err(|_| format!("bad le {le}"))? };
            let key = sample.labels.iter().filter(|(k, _)| k != "le").cloned().collect();
            series.entry(key).or_default().push((le, sample.value));
        }
        for (labels, buckets) in &series {
            if !buckets.windows(2).all(|pair| pair[0].0 < pair[1].0 && pair[0].1 <= pair[1].1) {
                return Err(format!("buckets not ascending and cumulative: {buckets:?}"));
            }
            let count = samples
                .iter()
                .find(|s| s.name == format!("{family}_count") && &s.labels == labels)
                .ok_or("histogram without _count")?;
            if buckets.last().map(|b| (b.0, b.1)) != Some((f64::INFINITY, count.value)) {
                return Err(format!("+Inf bucket is not the count: {buckets:?} vs {}", count.value));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::checker::check;
    use super::*;

    fn float(value: f64) -> String {
        let mut out = String::new();
        write_float(&mut out, value);
        out
    }

    #[test]
    fn floats_are_written_as_the_prometheus_go_client_writes_them() {
        let table = [
            (0.001, "0.001"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.0, "1"),
            (1.4, "1.4"),
            (10.0, "10"),
            (-2.5, "-2.5"),
            (123_456.0, "123456"),
            (1_000_000.0, "1e+06"),
            (1_234_567.0, "1.234567e+06"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e300, "1e+300"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (-0.0, "0"),
        ];
        for (value, expected) in table {
            assert_eq!(float(value), expected, "{value:?}");
        }
    }

    #[test]
    fn long_label_values_are_cut_at_a_character_boundary() {
        let long = "é".repeat(300);
        let cut = bounded_label(&long);
        assert!(cut.len() <= MAX_LABEL_VALUE_BYTES && cut.len() >= MAX_LABEL_VALUE_BYTES - 1);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(bounded_label("short"), "short");
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        let mut labels = String::new();
        push_label(&mut labels, "path", "a\\b\"c\nd");
        assert_eq!(labels, r#"path="a\\b\"c\nd""#);
    }

    #[test]
    fn help_text_escapes_backslash_and_newline_but_not_quotes() {
        let mut out = String::new();
        write_family_header(&mut out, "x", "a \"b\" \\ c\nd", MetricType::Gauge);
        assert_eq!(out, "# HELP x a \"b\" \\\\ c\\nd\n# TYPE x gauge\n");
    }

    #[test]
    fn a_family_of_the_same_type_is_merged_into_one_block() {
        let own = "# HELP rpc_total Calls.\n# TYPE rpc_total counter\nrpc_total{m=\"a\"} 1\n\n\
                   # TYPE up gauge\nup 1\n";
        let received = "# TYPE rpc_total counter\nrpc_total{m=\"a\"} 7\nrpc_total{job=\"x\",m=\"a\"} 2\n";
        let merged = merge(&[own, received]);
        let (samples, types) = check(&merged.text).expect("valid exposition");
        assert_eq!(types.len(), 2);
        let values: Vec<f64> = samples.iter().filter(|s| s.name == "rpc_total").map(|s| s.value).collect();
        assert_eq!(values, [1.0, 2.0], "the own series wins, the new one is added");
        assert!(merged.conflicts.is_empty());
    }

    #[test]
    fn a_family_of_another_type_is_left_out_and_reported() {
        let own = "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 3.5\n\
                   # TYPE rpc_server_duration_seconds histogram\n\
                   rpc_server_duration_seconds_bucket{le=\"+Inf\"} 1\n\
                   rpc_server_duration_seconds_sum 0.1\nrpc_server_duration_seconds_count 1\n";
        let spans = "# TYPE traces_span_metrics_calls_total counter\ntraces_span_metrics_calls_total 4\n";
        let received = "# TYPE process_cpu_seconds_total gauge\nprocess_cpu_seconds_total{job=\"a\"} 1\n\
                        process_cpu_seconds_total{job=\"b\"} 2\n\
                        # TYPE rpc_server_duration_seconds_count gauge\nrpc_server_duration_seconds_count 9\n\
                        # TYPE app_queue_depth gauge\napp_queue_depth 5\n";
        let merged = merge(&[own, spans, received]);
        let (samples, types) = check(&merged.text).expect("valid exposition");
        assert_eq!(types["process_cpu_seconds_total"], "counter");
        assert_eq!(types.len(), 4, "{types:?}");
        assert!(samples.iter().any(|s| s.name == "app_queue_depth"));
        let left_out: Vec<_> = merged.conflicts.iter().map(|c| (c.part, c.name.as_str(), c.samples)).collect();
        assert_eq!(left_out, [(2, "process_cpu_seconds_total", 2), (2, "rpc_server_duration_seconds_count", 1)]);
    }

    #[test]
    fn samples_without_a_type_line_keep_their_own_family() {
        let merged = merge(&["# HELP a A.\n# TYPE a gauge\na 1\nb 2\n", "# TYPE b gauge\nb{x=\"1\"} 3\n"]);
        assert_eq!(merged.conflicts.len(), 1, "an untyped b and a gauge b are different types");
        assert_eq!(merged.text, "# HELP a A.\n# TYPE a gauge\na 1\nb 2\n");
    }

    #[test]
    fn series_keys_ignore_braces_inside_quoted_label_values() {
        assert_eq!(series_of(r#"a{p="}\"}",q="x"} 1"#), r#"a{p="}\"}",q="x"}"#);
        assert_eq!(series_of("a 1"), "a");
    }
}
