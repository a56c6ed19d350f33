//! The `main` of every service binary: load settings, start telemetry, serve until SIGTERM/SIGINT,
//! flush, exit. `<binary> healthcheck` instead asks the service running on this host whether it is
//! ready (exit 0): the container health check of images that carry no shell and no curl.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::ServiceInfo;
use crate::config::{self, Sources, Validate};
use crate::telemetry::{self, TelemetrySettings};
use crate::{admin, shutdown};

/// What [`main`] needs to know about a service's settings.
pub trait ServiceSettings: DeserializeOwned + Validate {
    /// Address and port of the admin listener (`/readyz`).
    fn admin_endpoint(&self) -> (IpAddr, u16);
    /// The `telemetry` section.
    fn telemetry(&self) -> &TelemetrySettings;
}

/// Implements [`ServiceSettings`] for a service's `Settings`, whose `server` section has `host`,
/// `admin_port` and the other ports named in `ports`, and whose `telemetry` section is
/// [`TelemetrySettings`]. It also gives `Settings` `port_problems()`, the
/// [`config::check_distinct_ports`] check of those ports keyed `server.<port>`, and
/// `on_free_loopback_ports()`, for tests that run services side by side.
#[macro_export]
macro_rules! service_settings {
    ($settings:ident, ports: [$($port:ident),+ $(,)?]) => {
        impl $crate::service::ServiceSettings for $settings {
            fn admin_endpoint(&self) -> (::std::net::IpAddr, u16) {
                (self.server.host, self.server.admin_port)
            }

            fn telemetry(&self) -> &$crate::telemetry::TelemetrySettings {
                &self.telemetry
            }
        }

        impl $settings {
            /// These settings with every listener on a free port (0) of 127.0.0.1.
            #[must_use]
            pub fn on_free_loopback_ports(mut self) -> Self {
                self.server.host = ::std::net::IpAddr::V4(::std::net::Ipv4Addr::LOCALHOST);
                $(self.server.$port = 0;)+
                self
            }

            /// Every pair of listeners configured on the same port.
            fn port_problems(&self) -> Vec<String> {
                $crate::config::check_distinct_ports(&[
                    $((concat!("server.", stringify!($port)), self.server.$port)),+
                ])
            }
        }
    };
}

/// The `main` function of a service binary whose crate exports `Application` (with `build`,
/// `metrics` and `run_until_stopped`) and `SERVICE`: runs it through [`main`], with the one
/// application of the process also recording what runs outside it (span export).
#[macro_export]
macro_rules! service_main {
    ($service:ident) => {
        #[tokio::main]
        async fn main() -> std::process::ExitCode {
            $crate::service::main(&$service::SERVICE, async |settings, stop| {
                let app = $service::Application::build(settings).await?;
                app.metrics().install_global()?;
                app.run_until_stopped(stop).await
            })
            .await
        }
    };
}

/// Runs a service binary: `serve` builds the application from its settings and runs it until the
/// given signal future resolves. Exit codes: 0 after a clean stop, 1 when serving failed, 2 for an
/// invalid configuration.
pub async fn main<S, F, Fut, E>(info: &ServiceInfo, serve: F) -> ExitCode
where
    S: ServiceSettings,
    F: FnOnce(S, std::pin::Pin<Box<dyn Future<Output = &'static str> + Send>>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display + From<std::io::Error>,
{
    let binary = format!("axiom25-{}", info.name);
    let mut args: Vec<String> = std::env::args().collect();
    let healthcheck = args.get(1).is_some_and(|arg| arg == "healthcheck");
    if healthcheck {
        args.remove(1);
    }
    let settings = match Sources::from_process(args).and_then(|sources| config::load::<S>(&sources)) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{binary}: {error}");
            return ExitCode::from(2);
        }
    };
    if healthcheck {
        let (host, port) = settings.admin_endpoint();
        let ready = tokio::task::spawn_blocking(move || admin::probe_ready(host, port, Duration::from_secs(2)));
        return if ready.await.unwrap_or(false) { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    let telemetry = match telemetry::init(settings.telemetry(), info) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("{binary}: {}", error_chain(&error));
            return ExitCode::from(2);
        }
    };
    let result = async {
        let stop = shutdown::signal()?;
        serve(settings, Box::pin(stop)).await
    }
    .await;
    if let Err(error) = &result {
        tracing::error!(error = format!("{error:#}"), "Exiting on error");
    }
    // Flushing blocks; the runtime's own work is done by now.
    tokio::task::block_in_place(|| telemetry.shutdown());
    if result.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// `error: its source: …`, the whole chain on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    crate::settings_section! {
        /// A service's settings.
        struct Settings {
            server: ServerSettings,
            telemetry: TelemetrySettings,
        }

        /// Its listeners.
        struct ServerSettings {
            host: IpAddr = IpAddr::from([0, 0, 0, 0]),
            grpc_port: u16 = 50051,
            admin_port: u16 = 8081,
        }
    }

    crate::service_settings!(Settings, ports: [grpc_port, admin_port]);

    impl Validate for Settings {
        fn validate(&self) -> Vec<String> {
            self.port_problems()
        }
    }

    fn load(env: &[(&str, &str)]) -> Result<Settings, config::ConfigError> {
        let env = env.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
        config::load(&Sources { file: None, env })
    }

    #[test]
    fn a_settings_section_defaults_field_by_field_and_refuses_unknown_keys() {
        let settings = load(&[("AXIOM25__SERVER__GRPC_PORT", "9000")]).expect("valid");
        assert_eq!((settings.server.grpc_port, settings.server.admin_port), (9000, 8081));
        assert_eq!(settings.admin_endpoint(), (IpAddr::from([0, 0, 0, 0]), 8081));
        let error = load(&[("AXIOM25__SERVER__COLOUR", "blue")]).expect_err("unknown key");
        assert!(error.to_string().contains("server.colour"), "{error}");
    }

    #[test]
    fn listeners_on_one_port_are_a_problem_named_by_their_keys() {
        let error = load(&[("AXIOM25__SERVER__GRPC_PORT", "8081")]).expect_err("same port twice");
        assert_eq!(error.problems, ["server.grpc_port: must differ from server.admin_port (both are 8081)"]);
    }

    #[test]
    fn free_loopback_ports_bind_every_listener_to_port_zero_on_127_0_0_1() {
        let settings = Settings::default().on_free_loopback_ports();
        assert_eq!(settings.server.host, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!((settings.server.grpc_port, settings.server.admin_port), (0, 0));
        assert!(settings.validate().is_empty(), "port 0 may repeat");
    }

    #[test]
    fn an_error_is_reported_with_its_causes() {
        let error = crate::telemetry::TelemetryError::ExportQueue(crate::telemetry::ExportQueueError::Exporter(
            "no endpoint".into(),
        ));
        assert_eq!(error_chain(&error), "starting the span export queue: building the exporter: no endpoint");
    }
}
