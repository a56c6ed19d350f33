//! The label set of a series: point attributes as label text, with `job` and `instance` from the resource.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::naming::label_name;
use crate::exposition;
use crate::otlp::byte_text::base64;

/// `job` and `instance` of the resource, as the Collector's Prometheus exporter derives them.
#[derive(Debug, Default)]
pub(super) struct ResourceLabels {
    job: Option<String>,
    instance: Option<String>,
}

impl ResourceLabels {
    pub(super) fn of(resource: Option<&Resource>) -> Self {
        let attributes = resource.map(|resource| resource.attributes.as_slice()).unwrap_or_default();
        let attribute = |key: &str| {
            let found = attributes.iter().find(|attribute| attribute.key == key)?;
            Some(attribute_text(found.value.as_ref())).filter(|text| !text.is_empty())
        };
        let job = attribute("service.name").map(|name| match attribute("service.namespace") {
            Some(namespace) => format!("{namespace}/{name}"),
            None => name,
        });
        Self { job, instance: attribute("service.instance.id") }
    }

    /// The rendered label set of a point: its attributes and the resource's `job` and `instance`.
    pub(super) fn series_labels(&self, attributes: &[KeyValue]) -> String {
        let taken = |key: &str| (key == "job" && self.job.is_some()) || (key == "instance" && self.instance.is_some());
        let mut pairs: Vec<(String, &str, String)> = attributes
            .iter()
            .filter_map(|attribute| {
                let key = label_name(&attribute.key)?;
                (!taken(&key)).then(|| (key, attribute.key.as_str(), attribute_text(attribute.value.as_ref())))
            })
            .collect();
        pairs.extend(self.job.iter().map(|job| ("job".to_owned(), "", job.clone())));
        pairs.extend(self.instance.iter().map(|instance| ("instance".to_owned(), "", instance.clone())));
        pairs.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        let mut labels = String::new();
        let mut pairs = pairs.into_iter().peekable();
        while let Some((key, _, mut value)) = pairs.next() {
            while let Some((_, _, more)) = pairs.next_if(|next| next.0 == key) {
                value.push(';');
                value.push_str(&more);
            }
            if !value.is_empty() {
                exposition::push_label(&mut labels, &key, &value);
            }
        }
        labels
    }
}

/// An attribute value as label text, as the Collector writes it: arrays and maps as JSON, bytes
/// as base64.
pub(super) fn attribute_text(value: Option<&AnyValue>) -> String {
    let text = full_attribute_text(value);
    match exposition::bounded_label(&text).len() {
        len if len == text.len() => text,
        len => text[..len].to_owned(),
    }
}

pub(super) fn full_attribute_text(value: Option<&AnyValue>) -> String {
    use any_value::Value as V;
    match value.and_then(|value| value.value.as_ref()) {
        None | Some(V::StringValueStrindex(_)) => String::new(),
        Some(V::StringValue(text)) => text.clone(),
        Some(V::BoolValue(flag)) => flag.to_string(),
        Some(V::IntValue(number)) => number.to_string(),
        Some(V::DoubleValue(number)) => number.to_string(),
        Some(V::BytesValue(bytes)) => base64(bytes),
        Some(other @ (V::ArrayValue(_) | V::KvlistValue(_))) => json(Some(other)).to_string(),
    }
}

pub(super) fn json(value: Option<&any_value::Value>) -> serde_json::Value {
    use any_value::Value as V;
    use serde_json::Value as J;
    match value {
        None | Some(V::StringValueStrindex(_)) => J::Null,
        Some(V::StringValue(text)) => J::from(text.as_str()),
        Some(V::BoolValue(flag)) => J::from(*flag),
        Some(V::IntValue(number)) => J::from(*number),
        Some(V::DoubleValue(number)) => J::from(*number),
        Some(V::BytesValue(bytes)) => J::from(base64(bytes)),
        Some(V::ArrayValue(array)) => J::Array(array.values.iter().map(|value| json(value.value.as_ref())).collect()),
        Some(V::KvlistValue(map)) => J::Object(
            map.values
                .iter()
                .map(|pair| (pair.key.clone(), json(pair.value.as_ref().and_then(|value| value.value.as_ref()))))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric_store::tests::text;

    #[test]
    fn attribute_keys_become_sanitised_labels_with_job_and_instance_from_the_resource() {
        let resource = ResourceLabels::of(Some(&Resource {
            attributes: vec![
                text("service.namespace", "matrix"),
                text("service.name", "api"),
                text("service.instance.id", "pod-1"),
            ],
            ..Resource::default()
        }));
        let attributes = [
            text("http.method", "GET"),
            text("http_method", "POST"),
            text("1st", "yes"),
            text("job", "ignored"),
            text("...", "dropped"),
            text("empty", ""),
            text("quote", "a\"b"),
        ];
        assert_eq!(
            resource.series_labels(&attributes),
            r#"http_method="GET;POST",instance="pod-1",job="matrix/api",key_1st="yes",quote="a\"b""#
        );
        let bare = ResourceLabels::of(None);
        assert_eq!(bare.series_labels(&[text("job", "mine")]), r#"job="mine""#);
    }

    #[test]
    fn a_huge_attribute_value_becomes_a_label_of_bounded_length() {
        let huge = AnyValue { value: Some(any_value::Value::StringValue("v".repeat(1 << 20))) };
        assert_eq!(attribute_text(Some(&huge)).len(), exposition::MAX_LABEL_VALUE_BYTES);
    }

    #[test]
    fn attribute_values_of_every_type_become_text() {
        use any_value::Value as V;
        let array = V::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
            values: vec![
                AnyValue { value: Some(V::IntValue(1)) },
                AnyValue { value: Some(V::StringValue("a".into())) },
            ],
        });
        let cases = [
            (V::BoolValue(true), "true"),
            (V::IntValue(-3), "-3"),
            (V::DoubleValue(1.5), "1.5"),
            (V::BytesValue(b"hello".to_vec()), "aGVsbG8="),
            (V::BytesValue(b"hi".to_vec()), "aGk="),
            (array, r#"[1,"a"]"#),
        ];
        for (value, expected) in cases {
            assert_eq!(attribute_text(Some(&AnyValue { value: Some(value) })), expected);
        }
    }
}
