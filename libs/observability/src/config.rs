//! Layered configuration (docs/contracts.md §1): compiled-in defaults < optional YAML file (`--config
//! PATH`) < environment variables `AXIOM25__SECTION__KEY`.
//!
//! Every problem is collected before failing, so an operator fixes a bad deployment in one round:
//! a key that does not parse is reported and set aside, and the rest is checked again until the
//! settings deserialize; then [`Validate`] adds the semantic checks.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use config::{Config, Environment, File, FileFormat, Value, ValueKind};
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

/// Prefix of every environment variable the services read.
pub const ENV_PREFIX: &str = "AXIOM25";
/// Separator between levels in environment variable names.
pub const ENV_SEPARATOR: &str = "__";
/// The most problems reported at once; past it the settings are hopeless anyway.
const MAX_PROBLEMS: usize = 64;

/// Semantic checks on deserialized settings.
pub trait Validate {
    /// Every problem found, each naming its key, e.g. `server.grpc_port: must differ from server.admin_port`.
    fn validate(&self) -> Vec<String>;
}

/// Why the settings could not be loaded: every bad key at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// One line per problem.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration ({} problem(s)): {}", self.problems.len(), self.problems.join("; "))
    }
}

impl std::error::Error for ConfigError {}

/// Where settings come from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The YAML file given with `--config`, if any; it must exist.
    pub file: Option<PathBuf>,
    /// Environment variables; only those starting with `AXIOM25__` are read.
    pub env: HashMap<String, String>,
}

impl Sources {
    /// The process's real sources: `--config PATH` (or `--config=PATH`) from `args` and the
    /// process environment.
    ///
    /// # Errors
    /// When `--config` has no path or an argument is not understood.
    pub fn from_process(args: impl IntoIterator<Item = String>) -> Result<Self, ConfigError> {
        let mut file = None;
        let mut args = args.into_iter().skip(1);
        while let Some(arg) = args.next() {
            if arg == "--config" {
                let path =
                    args.next().ok_or_else(|| ConfigError { problems: vec!["--config: needs a file path".into()] })?;
                file = Some(PathBuf::from(path));
            } else if let Some(path) = arg.strip_prefix("--config=") {
                file = Some(PathBuf::from(path));
            } else {
                return Err(ConfigError {
                    problems: vec![format!("{arg}: unknown argument (the only one is --config PATH)")],
                });
            }
        }
        Ok(Self { file, env: std::env::vars().collect() })
    }
}

/// Loads `T` from `sources` over `T`'s own defaults (`#[serde(default)]`).
///
/// # Errors
/// Every unknown key, unparsable value and failed [`Validate`] check, together.
pub fn load<T: DeserializeOwned + Validate>(sources: &Sources) -> Result<T, ConfigError> {
    let mut tree = merged_tree(sources)?;
    let mut problems = Vec::new();
    loop {
        match serde_path_to_error::deserialize::<_, T>(tree.clone()) {
            Ok(settings) => {
                problems.extend(settings.validate());
                return if problems.is_empty() { Ok(settings) } else { Err(ConfigError { problems }) };
            }
            Err(error) => {
                let segments: Vec<String> = error.path().iter().filter_map(segment_key).collect();
                let inner = error.into_inner().to_string();
                let mut key_path = segments.clone();
                // Some deserializers report an unknown key on its parent; the name is in the message.
                if let Some(unknown) = unknown_field(&inner)
                    && key_path.last().map(String::as_str) != Some(unknown)
                {
                    key_path.push(unknown.to_owned());
                }
                let shown = if key_path.is_empty() { "<root>".to_owned() } else { key_path.join(".") };
                problems.push(format!("{shown}: {}", tidy(&inner)));
                if key_path.is_empty() || !remove_key(&mut tree, &key_path) || problems.len() >= MAX_PROBLEMS {
                    return Err(ConfigError { problems });
                }
            }
        }
    }
}

fn merged_tree(sources: &Sources) -> Result<Value, ConfigError> {
    let mut builder = Config::builder();
    if let Some(path) = &sources.file {
        builder = builder.add_source(File::from(path.as_path()).format(FileFormat::Yaml).required(true));
    }
    let env: config::Map<String, String> = sources
        .env
        .iter()
        .filter(|(key, _)| key.starts_with(&format!("{ENV_PREFIX}{ENV_SEPARATOR}")))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    builder = builder.add_source(
        Environment::with_prefix(ENV_PREFIX).prefix_separator(ENV_SEPARATOR).separator(ENV_SEPARATOR).source(Some(env)),
    );
    let problem = |error: config::ConfigError| ConfigError { problems: vec![error.to_string()] };
    let merged = builder.build().map_err(problem)?;
    merged.try_deserialize::<Value>().map_err(problem)
}

fn segment_key(segment: &Segment) -> Option<String> {
    match segment {
        Segment::Map { key } => Some(key.clone()),
        Segment::Seq { index } => Some(index.to_string()),
        Segment::Enum { variant } => Some(variant.clone()),
        Segment::Unknown => None,
    }
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(name, _)| name)
}

/// The message without the `for key ...` suffix the key column already says.
fn tidy(message: &str) -> &str {
    message.split_once(" for key `").map_or(message, |(head, _)| head)
}

/// Removes `path` from the tree so its default applies on the next pass. False if it was absent.
fn remove_key(tree: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let mut node = tree;
    for key in parents {
        let ValueKind::Table(table) = &mut node.kind else { return false };
        let Some(child) = table.get_mut(key) else { return false };
        node = child;
    }
    match &mut node.kind {
        ValueKind::Table(table) => table.remove(last).is_some(),
        _ => false,
    }
}

/// Declares settings sections: structs that deserialize with `#[serde(default,
/// deny_unknown_fields)]`, describe themselves as JSON Schema (their `///` docs are the
/// configuration reference) and default field by field. A field's default follows `=`; without
/// one it is the type's own `Default`.
///
/// ```
/// axiom25_observability::settings_section! {
///     /// Listeners.
///     pub struct ServerSettings {
///         /// gRPC port; 0 picks a free one.
///         pub grpc_port: u16 = 50051,
///         /// Names of things.
///         pub names: Vec<String>,
///     }
/// }
/// assert_eq!(ServerSettings::default().grpc_port, 50051);
/// ```
#[macro_export]
macro_rules! settings_section {
    (@default) => { ::core::default::Default::default() };
    (@default $default:expr) => { $default };
    ($(
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident: $type:ty $(= $default:expr)?),* $(,)?
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, ::serde::Deserialize, ::schemars::JsonSchema)]
        #[serde(default, deny_unknown_fields)]
        $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $type,)*
        }

        impl ::core::default::Default for $name {
            fn default() -> Self {
                Self { $($field: $crate::settings_section!(@default $($default)?),)* }
            }
        }
    )*};
}

/// Problems for every pair of listeners configured on the same port (0, "any free port", may repeat).
#[must_use]
pub fn check_distinct_ports(ports: &[(&str, u16)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, (name, port)) in ports.iter().enumerate() {
        for (other, other_port) in &ports[i + 1..] {
            if *port != 0 && port == other_port {
                problems.push(format!("{name}: must differ from {other} (both are {port})"));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Server {
        port: u16,
        host: String,
    }
    impl Default for Server {
        fn default() -> Self {
            Self { port: 80, host: "0.0.0.0".into() }
        }
    }
    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Settings {
        server: Server,
        ratio: f64,
    }
    impl Validate for Settings {
        fn validate(&self) -> Vec<String> {
            if (0.0..=1.0).contains(&self.ratio) { vec![] } else { vec!["ratio: must be within 0..=1".into()] }
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Sources {
        Sources { file: None, env: pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect() }
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        assert_eq!(load::<Settings>(&env(&[("UNRELATED", "1")])), Ok(Settings::default()));
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "server:\n  port: 1000\n  host: file\nratio: 0.5\n").expect("write");
        let mut sources = env(&[("AXIOM25__SERVER__PORT", "2000")]);
        sources.file = Some(path);
        let settings: Settings = load(&sources).expect("valid");
        assert_eq!(settings, Settings { server: Server { port: 2000, host: "file".into() }, ratio: 0.5 });
    }

    #[test]
    fn every_bad_key_is_named_in_one_error() {
        let sources = env(&[
            ("AXIOM25__SERVER__PORT", "seventy"),
            ("AXIOM25__SERVER__COLOUR", "blue"),
            ("AXIOM25__NOPE", "1"),
            ("AXIOM25__RATIO", "7"),
        ]);
        let error = load::<Settings>(&sources).expect_err("invalid");
        let text = error.to_string();
        for key in ["server.port", "server.colour", "nope", "ratio"] {
            assert!(text.contains(&format!("{key}:")), "{key} missing from {text}");
        }
        assert_eq!(error.problems.len(), 4, "{text}");
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let mut sources = env(&[]);
        sources.file = Some("/definitely/not/here.yaml".into());
        assert!(load::<Settings>(&sources).is_err());
    }

    #[test]
    fn command_line_accepts_only_config() {
        let parsed = Sources::from_process(["bin".into(), "--config".into(), "x.yaml".into()]).expect("ok");
        assert_eq!(parsed.file, Some(PathBuf::from("x.yaml")));
        assert!(Sources::from_process(["bin".into(), "--verbose".into()]).is_err());
        assert!(Sources::from_process(["bin".into(), "--config".into()]).is_err());
    }

    #[test]
    fn equal_ports_are_reported() {
        assert_eq!(check_distinct_ports(&[("a", 1), ("b", 1)]).len(), 1);
        assert!(check_distinct_ports(&[("a", 0), ("b", 0)]).is_empty());
    }
}
