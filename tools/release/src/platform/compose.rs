//! The local stack (docker compose): containers `api-blue` and `api-green`, each on its own preview
//! host port, behind one HAProxy (`api` on the stack's network, `127.0.0.1:50051` from the host)
//! that balances HTTP/2 streams, not connections. A switch is two commands on HAProxy's runtime
//! API: new calls go to the new colour at once while calls in flight on the old one finish, and no
//! client connection is cut, so gRPC clients and the gateway follow without reconnecting.
//!
//! Clients that bypass HAProxy (none on the stack itself) are still asked to reconnect after a
//! switch, through the old colour's preview admin port, as on Kubernetes.
//!
//! State comes from the platform itself: the active colour from HAProxy (`show servers state`),
//! each colour's version and health from its container.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::{
    ApiSetting, Platform, PlatformError, PlatformState, RECONNECT_PATH, ReplicaReconnect, TrackState, reconnect_answer,
};
use crate::color::Color;
use crate::command::{CommandRunner, Invocation};

/// HAProxy backend holding one server per colour (see `infrastructure/docker/api-proxy/haproxy.cfg`).
pub const BACKEND: &str = "api";
/// HAProxy backend of the api's admin port, switched with the gRPC one.
pub const ADMIN_BACKEND: &str = "admin";
/// gRPC port of every api container.
const GRPC_PORT: u16 = 50051;
/// Admin port of every api container.
const ADMIN_PORT: u16 = 8081;

/// How to reach the local stack.
#[derive(Debug, Clone)]
pub struct ComposeSettings {
    /// The compose command, e.g. `["docker-compose"]` or `["docker", "compose"]`.
    pub compose: Vec<String>,
    /// The compose file.
    pub file: PathBuf,
    /// The compose project name.
    pub project: String,
    /// Host address of HAProxy's runtime API (`127.0.0.1:<port>`).
    pub switch_admin: String,
    /// Host ports of the blue and green preview names.
    pub preview_ports: (u16, u16),
    /// Host ports of the blue and green preview admin ports.
    pub admin_ports: (u16, u16),
    /// Folder for each colour's settings file (`<color>.env`).
    pub state_dir: PathBuf,
}

/// The local stack.
pub struct Compose<R> {
    settings: ComposeSettings,
    runner: R,
}

impl<R: CommandRunner> Compose<R> {
    /// The stack described by `settings`, driven through `runner`.
    pub const fn new(settings: ComposeSettings, runner: R) -> Self {
        Self { settings, runner }
    }

    fn service(color: Color) -> String {
        format!("api-{color}")
    }

    fn compose(&self, args: &[&str]) -> Invocation {
        let (program, base) = self.settings.compose.split_first().expect("a compose command");
        let file = self.settings.file.display().to_string();
        let mut all: Vec<String> = base.to_vec();
        all.extend(["-f".into(), file, "-p".into(), self.settings.project.clone()]);
        all.extend(args.iter().map(|arg| (*arg).to_owned()));
        Invocation::new(program, all)
    }

    /// The container id of `color`, if it exists (running or stopped).
    fn container(&self, color: Color) -> Result<Option<String>, PlatformError> {
        let out = self.runner.run(&self.compose(&["ps", "-a", "-q", &Self::service(color)]))?;
        Ok(out.lines().map(str::trim).find(|line| !line.is_empty()).map(str::to_owned))
    }

    fn inspect(&self, id: &str) -> Result<Value, PlatformError> {
        let out = self.runner.run(&Invocation::new("docker", ["inspect", id]))?;
        let parsed: Value = serde_json::from_str(&out)
            .map_err(|error| PlatformError::Unexpected { what: "docker inspect".into(), detail: error.to_string() })?;
        Ok(parsed[0].clone())
    }

    fn track(&self, color: Color) -> Result<TrackState, PlatformError> {
        let Some(id) = self.container(color)? else { return Ok(TrackState::default()) };
        let container = self.inspect(&id)?;
        let version = container["Config"]["Env"].as_array().and_then(|env| {
            env.iter().filter_map(Value::as_str).find_map(|pair| pair.strip_prefix("AXIOM25__RELEASE__VERSION="))
        });
        let running = container["State"]["Running"].as_bool().unwrap_or(false);
        let healthy = container["State"]["Health"]["Status"].as_str() == Some("healthy");
        Ok(TrackState {
            version: version.map(str::to_owned),
            replicas: u32::from(running),
            ready: u32::from(running && healthy),
        })
    }

    fn container_ip(&self, color: Color) -> Result<String, PlatformError> {
        let unexpected = |detail: &str| PlatformError::Unexpected { what: Self::service(color), detail: detail.into() };
        let id = self.container(color)?.ok_or_else(|| unexpected("no container"))?;
        let container = self.inspect(&id)?;
        container["NetworkSettings"]["Networks"]
            .as_object()
            .and_then(|networks| networks.values().find_map(|network| network["IPAddress"].as_str()))
            .filter(|ip| !ip.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| unexpected("no IP address on the stack's network"))
    }

    /// Sends one command to HAProxy's runtime API and returns its answer.
    fn runtime(&self, command: &str) -> Result<String, PlatformError> {
        let endpoint = self.settings.switch_admin.clone();
        let io = |source| PlatformError::SwitchPoint { endpoint: endpoint.clone(), source };
        let mut stream = TcpStream::connect(&endpoint).map_err(io)?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(io)?;
        writeln!(stream, "{command}").map_err(io)?;
        let mut answer = String::new();
        for line in BufReader::new(stream).lines() {
            answer.push_str(&line.map_err(io)?);
            answer.push('\n');
        }
        Ok(answer)
    }
}

/// The colours HAProxy sends new calls to, from `show servers state <backend>`: servers whose
/// administrative state has no maintenance bit (fields: be_id be_name srv_id srv_name srv_addr
/// srv_op_state srv_admin_state ...).
#[must_use]
pub fn active_servers(servers_state: &str) -> Vec<Color> {
    servers_state
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (name, admin) = (fields.get(3)?, fields.get(6)?.parse::<u32>().ok()?);
            // 0x01 forced maintenance, 0x02 maintenance inherited, 0x20 maintenance from DNS.
            (admin & 0x23 == 0).then(|| name.parse().ok()).flatten()
        })
        .collect()
}

impl<R: CommandRunner> Platform for Compose<R> {
    fn name(&self) -> &'static str {
        "compose"
    }

    fn state(&self) -> Result<PlatformState, PlatformError> {
        let servers = self.runtime(&format!("show servers state {BACKEND}"))?;
        let active = match active_servers(&servers).as_slice() {
            [one] => *one,
            other => {
                return Err(PlatformError::Unexpected {
                    what: "HAProxy show servers state".into(),
                    detail: format!("expected exactly one active colour, found {other:?}: {servers}"),
                });
            }
        };
        Ok(PlatformState { active, blue: self.track(Color::Blue)?, green: self.track(Color::Green)? })
    }

    fn deploy(
        &self,
        color: Color,
        version: &str,
        settings: &[ApiSetting],
        _replicas: u32,
    ) -> Result<(), PlatformError> {
        let io = |source: std::io::Error| PlatformError::Unexpected {
            what: format!("writing {}", self.settings.state_dir.display()),
            detail: source.to_string(),
        };
        std::fs::create_dir_all(&self.settings.state_dir).map_err(io)?;
        let env_file = self.settings.state_dir.join(format!("{color}.env"));
        let lines: String = settings.iter().map(|s| format!("{}={}\n", s.key, s.value)).collect();
        std::fs::write(&env_file, lines).map_err(io)?;
        let upper = color.as_str().to_ascii_uppercase();
        let service = Self::service(color);
        let invocation = self
            .compose(&["up", "-d", "--no-deps", "--force-recreate", &service])
            .env(&format!("AXIOM25_{upper}_TAG"), version)
            .env(&format!("AXIOM25_{upper}_ENV_FILE"), &env_file.display().to_string());
        self.runner.run(&invocation)?;
        Ok(())
    }

    fn switch(&self, color: Color) -> Result<(), PlatformError> {
        // The new container may have a new address; HAProxy re-resolves by itself, but setting it
        // here makes the switch independent of DNS timing.
        let ip = self.container_ip(color)?;
        let (to, from) = (color.as_str(), color.other().as_str());
        // gRPC first, then the admin port (scrapes and probes of the stable name follow).
        for command in [
            format!("set server {BACKEND}/{to} addr {ip} port {GRPC_PORT}"),
            format!("set server {BACKEND}/{to} state ready"),
            format!("set server {BACKEND}/{from} state maint"),
            format!("set server {ADMIN_BACKEND}/{to} addr {ip} port {ADMIN_PORT}"),
            format!("set server {ADMIN_BACKEND}/{to} state ready"),
            format!("set server {ADMIN_BACKEND}/{from} state maint"),
        ] {
            let answer = self.runtime(&command)?;
            let answer = answer.trim();
            if !answer.is_empty() && !answer.contains("IP changed") && !answer.contains("no need to change") {
                return Err(PlatformError::Unexpected { what: command, detail: answer.to_owned() });
            }
        }
        Ok(())
    }

    fn retire(&self, color: Color) -> Result<(), PlatformError> {
        self.runner.run(&self.compose(&["stop", &Self::service(color)]))?;
        Ok(())
    }

    fn revive(&self, color: Color, _replicas: u32) -> Result<(), PlatformError> {
        self.runner.run(&self.compose(&["start", &Self::service(color)]))?;
        Ok(())
    }

    fn preview_endpoint(&self, color: Color) -> String {
        let port = match color {
            Color::Blue => self.settings.preview_ports.0,
            Color::Green => self.settings.preview_ports.1,
        };
        format!("http://127.0.0.1:{port}")
    }

    fn reconnect_clients(&self, color: Color) -> Result<Vec<ReplicaReconnect>, PlatformError> {
        let port = match color {
            Color::Blue => self.settings.admin_ports.0,
            Color::Green => self.settings.admin_ports.1,
        };
        let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let outcome = match axiom25_observability::admin::http_post(admin, RECONNECT_PATH, Duration::from_secs(5)) {
            Ok((200, body)) => reconnect_answer(&body),
            Ok((status, body)) => Err(format!("{admin} answered {status}: {}", body.trim())),
            Err(error) => Err(format!("{admin}: {error}")),
        };
        Ok(vec![ReplicaReconnect { replica: Self::service(color), outcome }])
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::sync::Mutex;

    use super::*;
    use crate::command::CommandError;

    const SHOW_SERVERS: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n\
        3 api 1 blue 172.18.0.5 2 0 1\n3 api 2 green 172.18.0.6 0 1 1\n";

    #[test]
    fn the_active_colour_is_the_server_not_in_maintenance() {
        assert_eq!(active_servers(SHOW_SERVERS), [Color::Blue]);
        assert_eq!(
            active_servers(&SHOW_SERVERS.replace(" 2 0 1\n", " 2 1 1\n").replace(" 0 1 1\n", " 2 0 1\n")),
            [Color::Green]
        );
    }

    /// Answers `ps` and `inspect` like docker does for a stack with both colours.
    struct FakeDocker {
        calls: Mutex<Vec<Invocation>>,
    }

    impl CommandRunner for FakeDocker {
        fn run(&self, invocation: &Invocation) -> Result<String, CommandError> {
            self.calls.lock().expect("lock").push(invocation.clone());
            let args = invocation.args.join(" ");
            Ok(if args.contains("ps -a -q api-blue") {
                "b1\n".into()
            } else if args.contains("ps -a -q api-green") {
                "g1\n".into()
            } else if args == "inspect b1" || args == "inspect g1" {
                let version = if args.ends_with("b1") { "1.0.0" } else { "2.0.0" };
                serde_json::json!([{
                    "Config": {"Env": ["PATH=/bin", format!("AXIOM25__RELEASE__VERSION={version}")]},
                    "State": {"Running": true, "Health": {"Status": "healthy"}},
                    "NetworkSettings": {"Networks": {"axiom25_default": {"IPAddress": "172.18.0.9"}}},
                }])
                .to_string()
            } else {
                String::new()
            })
        }
    }

    /// A stand-in for HAProxy's runtime API: records each command, answers `show servers state`.
    fn fake_haproxy() -> (String, std::sync::mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(8) {
                let mut stream = stream.expect("accept");
                let mut line = String::new();
                BufReader::new(&stream).read_line(&mut line).expect("read");
                let answer = if line.starts_with("show servers state") { SHOW_SERVERS } else { "\n" };
                stream.write_all(answer.as_bytes()).expect("write");
                let _ = tx.send(line.trim().to_owned());
            }
        });
        (addr, rx)
    }

    fn stack(switch_admin: String, state_dir: PathBuf) -> Compose<FakeDocker> {
        stack_with_admin(switch_admin, state_dir, (9, 9))
    }

    fn stack_with_admin(switch_admin: String, state_dir: PathBuf, admin_ports: (u16, u16)) -> Compose<FakeDocker> {
        Compose::new(
            ComposeSettings {
                compose: vec!["docker-compose".into()],
                file: "infrastructure/docker/docker-compose.yml".into(),
                project: "axiom25".into(),
                switch_admin,
                preview_ports: (50061, 50062),
                admin_ports,
                state_dir,
            },
            FakeDocker { calls: Mutex::new(Vec::new()) },
        )
    }

    #[test]
    fn state_reads_the_switch_from_haproxy_and_versions_from_the_containers() {
        let (addr, _commands) = fake_haproxy();
        let state = stack(addr, std::env::temp_dir()).state().expect("state");
        assert_eq!(state.active, Color::Blue);
        assert_eq!(state.blue.version.as_deref(), Some("1.0.0"));
        assert_eq!(state.green, TrackState { version: Some("2.0.0".into()), replicas: 1, ready: 1 });
    }

    #[test]
    fn a_switch_points_the_new_colour_at_its_container_then_puts_the_old_one_in_maintenance() {
        let (addr, commands) = fake_haproxy();
        stack(addr, std::env::temp_dir()).switch(Color::Green).expect("switch");
        let sent: Vec<String> = commands.iter().take(6).collect();
        assert_eq!(
            sent,
            [
                "set server api/green addr 172.18.0.9 port 50051",
                "set server api/green state ready",
                "set server api/blue state maint",
                "set server admin/green addr 172.18.0.9 port 8081",
                "set server admin/green state ready",
                "set server admin/blue state maint",
            ]
        );
    }

    /// A stand-in for an api admin port: answers one request with `answer`, sends back what it got.
    fn fake_admin(answer: &'static str) -> (u16, std::sync::mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(&stream);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).expect("read");
            let mut header = String::new();
            while reader.read_line(&mut header).expect("read") > 2 {
                header.clear();
            }
            stream.write_all(answer.as_bytes()).expect("write");
            let _ = tx.send(request_line.trim().to_owned());
        });
        (port, rx)
    }

    #[test]
    fn reconnect_clients_posts_to_the_colours_preview_admin_port() {
        let (green, requests) = fake_admin("HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n{\"connections\":2}");
        let platform = stack_with_admin("127.0.0.1:9".into(), std::env::temp_dir(), (9, green));
        let answers = platform.reconnect_clients(Color::Green).expect("asked");
        assert_eq!(answers, [ReplicaReconnect { replica: "api-green".into(), outcome: Ok(2) }]);
        assert_eq!(requests.recv().expect("a request"), "POST /admin/reconnect-clients HTTP/1.1");
    }

    #[test]
    fn an_unreachable_admin_port_is_reported_not_raised() {
        let closed = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let platform = stack_with_admin("127.0.0.1:9".into(), std::env::temp_dir(), (closed, 9));
        let answers = platform.reconnect_clients(Color::Blue).expect("the colour is known");
        assert_eq!(answers[0].replica, "api-blue");
        assert!(answers[0].outcome.as_ref().is_err_and(|error| error.contains(&closed.to_string())), "{answers:?}");
    }

    #[test]
    fn deploy_recreates_only_the_idle_colour_with_its_tag_and_settings_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let platform = stack("127.0.0.1:9".into(), dir.path().to_owned());
        let faults: ApiSetting = "AXIOM25__FAULTS__ERROR_RATIO=0.5".parse().expect("valid");
        platform.deploy(Color::Green, "2.1.0", &[faults], 1).expect("deploy");
        let calls = platform.runner.calls.lock().expect("lock");
        let up = calls.last().expect("one call");
        assert_eq!(up.args[4..], ["up", "-d", "--no-deps", "--force-recreate", "api-green"]);
        assert!(up.env.contains(&("AXIOM25_GREEN_TAG".into(), "2.1.0".into())));
        let env_file = dir.path().join("green.env");
        assert!(up.env.contains(&("AXIOM25_GREEN_ENV_FILE".into(), env_file.display().to_string())));
        assert_eq!(std::fs::read_to_string(env_file).expect("written"), "AXIOM25__FAULTS__ERROR_RATIO=0.5\n");
    }
}
