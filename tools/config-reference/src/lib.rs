//! The configuration reference of every service, generated from its `Settings` types so that it
//! cannot drift from what the services accept: a JSON Schema per service
//! (`docs/config/<service>.schema.json`, which the Helm chart's generator and tests read) and
//! `docs/configuration.md`, one table per settings section. `///` comments on the settings fields
//! are the descriptions; `Default` gives the defaults.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use axiom25_observability::config::{ENV_PREFIX, ENV_SEPARATOR};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// The command that writes every generated file; drift reports name it.
pub const REGENERATE: &str = "cargo run -p axiom25-config-reference";
/// Where the Markdown reference lives, relative to the repository root.
pub const MARKDOWN_PATH: &str = "docs/configuration.md";

/// One service and the JSON Schema of its settings.
#[derive(Debug, Clone)]
pub struct ServiceSchema {
    /// The service's name, as in its image and chart (`api`, `ui-gateway`, `telemetry-collector`).
    pub service: &'static str,
    /// Its settings as a JSON Schema (draft 2020-12), sections inlined.
    pub schema: Value,
}

impl ServiceSchema {
    /// Where the schema is checked in, relative to the repository root.
    #[must_use]
    pub fn path(&self) -> String {
        format!("docs/config/{}.schema.json", self.service)
    }

    /// The settings sections (`server`, `limits`, ...), in key order.
    fn sections(&self) -> impl Iterator<Item = (&String, &Value)> {
        properties(&self.schema).into_iter().flat_map(Map::iter)
    }
}

/// The JSON Schema of settings type `T` of `service`.
#[must_use]
pub fn schema_of<T: JsonSchema>(service: &'static str) -> ServiceSchema {
    let mut schema = SchemaSettings::draft2020_12()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<T>();
    schema.insert("title".into(), format!("Settings of axiom25-{service}").into());
    schema.insert(
        "description".into(),
        format!("Generated from the Settings types by `{REGENERATE}`; see {MARKDOWN_PATH}.").into(),
    );
    ServiceSchema { service, schema: schema.to_value() }
}

/// The schemas of the three services.
#[must_use]
pub fn services() -> Vec<ServiceSchema> {
    vec![
        schema_of::<axiom25_api::Settings>("api"),
        schema_of::<axiom25_ui_gateway::Settings>("ui-gateway"),
        schema_of::<axiom25_telemetry_collector::Settings>("telemetry-collector"),
    ]
}

/// Every generated file, as (path relative to the repository root, content).
#[must_use]
pub fn generated_files() -> Vec<(String, String)> {
    let services = services();
    let mut files: Vec<(String, String)> = services
        .iter()
        .map(|service| {
            let text = serde_json::to_string_pretty(&service.schema).expect("a JSON value always serializes");
            (service.path(), text + "\n")
        })
        .collect();
    files.push((MARKDOWN_PATH.to_owned(), markdown(&services)));
    files
}

/// Generated files under `root` whose content differs from what the types produce.
#[must_use]
pub fn stale_files(root: &Path) -> Vec<String> {
    generated_files()
        .into_iter()
        .filter(|(path, content)| std::fs::read_to_string(root.join(path)).ok().as_deref() != Some(content.as_str()))
        .map(|(path, _)| path)
        .collect()
}

/// The repository this crate was built from.
#[must_use]
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `AXIOM25__SECTION__KEY`.
#[must_use]
pub fn env_var(section: &str, key: &str) -> String {
    [ENV_PREFIX, section, key].join(ENV_SEPARATOR).to_uppercase()
}

fn properties(schema: &Value) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A schema's title and description as one line of a Markdown table.
fn description(schema: &Value) -> String {
    let parts: Vec<String> = [text(schema, "title"), text(schema, "description")].into_iter().flatten().collect();
    parts.join(" ").split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")
}

/// What a person types as the value: `integer`, `string or unset`, `` `json` \| `text` ``.
#[must_use]
pub fn type_name(schema: &Value) -> String {
    let choices: Vec<&Value> = match (schema.get("enum"), schema.get("oneOf")) {
        (Some(Value::Array(values)), _) => values.iter().collect(),
        (_, Some(Value::Array(variants))) => variants.iter().filter_map(|variant| variant.get("const")).collect(),
        _ => Vec::new(),
    };
    if !choices.is_empty() {
        return choices.iter().map(|choice| format!("`{}`", plain(choice))).collect::<Vec<_>>().join(" \\| ");
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let optional = types.contains(&"null");
    let mut names: Vec<String> = types
        .iter()
        .filter(|name| **name != "null")
        .map(|name| match (*name, schema.get("items")) {
            ("array", Some(items)) => format!("list of {}", type_name(items)),
            (name, _) if name == "string" && schema.get("format").and_then(Value::as_str) == Some("ip") => {
                "IP address".to_owned()
            }
            (name, _) => name.to_owned(),
        })
        .collect();
    if optional {
        names.push("unset".to_owned());
    }
    names.join(" or ")
}

/// A JSON value as written in YAML or an environment variable: strings without quotes.
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A default as shown in the table.
#[must_use]
pub fn default_cell(schema: &Value) -> String {
    match schema.get("default") {
        None | Some(Value::Null) => "unset".to_owned(),
        Some(Value::String(text)) if text.is_empty() => "`\"\"` (empty)".to_owned(),
        Some(Value::Array(items)) if items.is_empty() => "`[]` (empty)".to_owned(),
        Some(value @ Value::Array(_)) => format!("`{}`", value.to_string().replace(',', ", ")),
        Some(value) => format!("`{}`", plain(value)),
    }
}

/// A section's keys, ignoring what its parent says about it: equal across services when the
/// section is the same shared type.
fn section_shape(section: &Value) -> Value {
    let mut shape = section.clone();
    if let Some(object) = shape.as_object_mut() {
        object.remove("description");
        object.remove("title");
    }
    shape
}

fn is_shared(name: &str, section: &Value, services: &[ServiceSchema]) -> bool {
    let shape = section_shape(section);
    services.len() > 1
        && services.iter().all(|service| {
            properties(&service.schema).and_then(|sections| sections.get(name)).map(section_shape).as_ref()
                == Some(&shape)
        })
}

fn section_table(out: &mut String, name: &str, section: &Value) {
    out.push_str("| key | type | default | environment variable | description |\n|---|---|---|---|---|\n");
    for (key, field) in properties(section).into_iter().flat_map(Map::iter) {
        // The environment layer holds strings; a list is written in the YAML file.
        let variable = if field.get("type").and_then(Value::as_str) == Some("array") {
            "YAML file only".to_owned()
        } else {
            format!("`{}`", env_var(name, key))
        };
        let _ = writeln!(
            out,
            "| `{name}.{key}` | {} | {} | {variable} | {} |",
            type_name(field),
            default_cell(field),
            description(field)
        );
    }
}

/// The Markdown reference of `services`.
#[must_use]
pub fn markdown(services: &[ServiceSchema]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "# Configuration reference\n\n\
         <!-- Generated from the services' Settings types by `{REGENERATE}`: edit the `///` comments \
         and defaults in the Rust code, then regenerate; a test fails while this file differs. -->\n\n\
         Every service reads its compiled-in defaults, then the YAML file given with `--config PATH` (if \
         any), then the environment variables `{ENV_PREFIX}{ENV_SEPARATOR}SECTION{ENV_SEPARATOR}KEY` (double \
         underscore between levels, e.g. `{}=2048`); each overrides the one before. Unknown keys are \
         errors: an invalid configuration makes the process exit with status 2 and one message naming \
         every bad key. Lists are written in the YAML file. Times are in the unit their key names \
         (`_ms`, `_seconds`), sizes in bytes unless the key says `_mib`.\n\n\
         The same settings as JSON Schema (draft 2020-12), for editors and the Helm chart's checks: {}.\n",
        env_var("limits", "max_rows"),
        services
            .iter()
            .map(|service| format!("[`{}`](config/{}.schema.json)", service.path(), service.service))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut shared: Vec<(&String, &Value)> = Vec::new();
    for service in services {
        let _ = writeln!(out, "\n## {}\n", service.service);
        for (name, section) in service.sections() {
            let _ = write!(out, "### `{name}`\n\n{}", description(section));
            if is_shared(name, section, services) {
                let _ =
                    writeln!(out, " The keys are the same in every service: see [`{name}`](#{name}-every-service).");
                if !shared.iter().any(|(known, _)| *known == name) {
                    shared.push((name, section));
                }
            } else {
                out.push_str("\n\n");
                section_table(&mut out, name, section);
            }
            out.push('\n');
        }
        out.pop();
    }
    if !shared.is_empty() {
        out.push_str("\n## Sections every service shares\n");
        for (name, section) in shared {
            let _ = write!(out, "\n### `{name}` (every service)\n\n");
            section_table(&mut out, name, section);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::fmt::Debug;

    use axiom25_observability::config::{ConfigError, Sources};
    use serde_json::json;

    use super::*;

    #[test]
    fn the_checked_in_reference_is_what_the_settings_types_produce() {
        let stale = stale_files(&repository_root());
        assert!(stale.is_empty(), "stale generated files {stale:?}: run `{REGENERATE}`");
    }

    #[test]
    fn environment_variables_are_the_prefix_section_and_key_in_capitals() {
        assert_eq!(env_var("span_store", "max_bytes"), "AXIOM25__SPAN_STORE__MAX_BYTES");
    }

    #[test]
    fn types_are_named_as_a_person_writes_the_value() {
        assert_eq!(type_name(&json!({"type": "integer", "format": "uint16"})), "integer");
        assert_eq!(type_name(&json!({"type": ["string", "null"]})), "string or unset");
        assert_eq!(type_name(&json!({"type": "string", "format": "ip"})), "IP address");
        assert_eq!(type_name(&json!({"type": "array", "items": {"type": "number"}})), "list of number");
        let documented_enum = json!({"oneOf": [{"const": "json", "description": "x"}, {"const": "text"}]});
        assert_eq!(type_name(&documented_enum), "`json` \\| `text`");
        assert_eq!(type_name(&json!({"type": "string", "enum": ["drop"]})), "`drop`");
    }

    #[test]
    fn defaults_are_shown_as_written_and_absent_ones_as_unset() {
        assert_eq!(default_cell(&json!({"default": null})), "unset");
        assert_eq!(default_cell(&json!({})), "unset");
        assert_eq!(default_cell(&json!({"default": ""})), "`\"\"` (empty)");
        assert_eq!(default_cell(&json!({"default": "0.0.0.0"})), "`0.0.0.0`");
        assert_eq!(default_cell(&json!({"default": [0.5, 1.0]})), "`[0.5, 1.0]`");
    }

    #[test]
    fn a_section_all_services_share_is_tabled_once_and_the_others_per_service() {
        let section = |keys: Value| json!({"type": "object", "properties": keys});
        let one = ServiceSchema {
            service: "one",
            schema: json!({"properties": {
                "shared": section(json!({"a": {"type": "integer", "default": 1, "description": "A."}})),
                "own": section(json!({"b": {"type": "integer", "default": 2, "description": "B."}})),
            }}),
        };
        let mut two = one.clone();
        two.service = "two";
        two.schema["properties"]["own"]["properties"]["c"] = json!({"type": "boolean"});
        two.schema["properties"]["own"]["properties"]["d"] = json!({"type": "array", "items": {"type": "string"}});
        two.schema["properties"]["shared"]["description"] = json!("Differently introduced.");
        let text = markdown(&[one, two]);
        assert_eq!(text.matches("| `shared.a` | integer | `1` | `AXIOM25__SHARED__A` | A. |").count(), 1, "{text}");
        assert_eq!(text.matches("| `own.b` |").count(), 2, "{text}");
        assert_eq!(text.matches("| `own.c` | boolean |").count(), 1, "{text}");
        assert!(text.contains("| `own.d` | list of string | unset | YAML file only |"), "{text}");
        assert!(text.contains("Differently introduced. The keys are the same in every service"), "{text}");
    }

    #[test]
    fn every_section_and_key_is_described() {
        for service in services() {
            for (name, section) in service.sections() {
                assert!(!description(section).is_empty(), "{}: section {name} has no `///` comment", service.service);
                for (key, field) in properties(section).into_iter().flat_map(Map::iter) {
                    assert!(!description(field).is_empty(), "{}: {name}.{key} has no `///` comment", service.service);
                }
            }
        }
    }

    /// Every documented key with its documented default, as (section, key, value).
    fn documented_defaults(service: &ServiceSchema) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (name, section) in service.sections() {
            for (key, field) in properties(section).into_iter().flat_map(Map::iter) {
                if let Some(value) = field.get("default").filter(|value| !value.is_null()) {
                    out.push((name.clone(), key.clone(), value.clone()));
                }
            }
        }
        out
    }

    /// Loads settings from a YAML file of every documented default and from one environment
    /// variable per documented scalar default; both must equal the compiled-in defaults.
    fn assert_documented_defaults_load<S: Debug + Default>(
        load: fn(&Sources) -> Result<S, ConfigError>,
        service: &str,
    ) {
        let schema = services().into_iter().find(|s| s.service == service).expect("a known service");
        let defaults = documented_defaults(&schema);
        assert!(defaults.len() > 10, "{service}: only {} defaults documented", defaults.len());
        let mut tree = Map::new();
        for (section, key, value) in &defaults {
            let entry = tree.entry(section.clone()).or_insert_with(|| Value::Object(Map::new()));
            entry.as_object_mut().expect("sections are objects").insert(key.clone(), value.clone());
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("config.yaml");
        // JSON is YAML: the file holds exactly the documented values.
        std::fs::write(&file, Value::Object(tree).to_string()).expect("write config");
        let from_file = load(&Sources { file: Some(file), env: HashMap::new() })
            .unwrap_or_else(|error| panic!("{service}: the documented defaults do not load: {error}"));
        assert_eq!(format!("{from_file:?}"), format!("{:?}", S::default()), "{service}: file");

        let env: HashMap<String, String> = defaults
            .iter()
            .filter(|(_, _, value)| !value.is_array())
            .map(|(section, key, value)| (env_var(section, key), plain(value)))
            .collect();
        let from_env = load(&Sources { file: None, env })
            .unwrap_or_else(|error| panic!("{service}: a documented variable is not read: {error}"));
        assert_eq!(format!("{from_env:?}"), format!("{:?}", S::default()), "{service}: environment");
    }

    #[test]
    fn the_documented_api_keys_and_defaults_are_what_the_api_reads() {
        assert_documented_defaults_load(axiom25_api::Settings::load, "api");
    }

    #[test]
    fn the_documented_gateway_keys_and_defaults_are_what_the_gateway_reads() {
        assert_documented_defaults_load(axiom25_ui_gateway::Settings::load, "ui-gateway");
    }

    #[test]
    fn the_documented_collector_keys_and_defaults_are_what_the_collector_reads() {
        assert_documented_defaults_load(axiom25_telemetry_collector::Settings::load, "telemetry-collector");
    }
}
