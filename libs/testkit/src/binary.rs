//! A service binary on free loopback ports: started with its ports set to 0, its JSON log read up
//! to the `Listening` line (which names the bound ports), then `/readyz` on its admin port polled
//! until it answers 200. Stopped with SIGTERM, as Kubernetes and Docker stop it; killed on drop.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::http::HttpClient;

/// How to start a binary; [`Binary::start`] runs it.
pub struct Binary {
    command: Command,
    ready: bool,
    timeout: Duration,
}

/// A started binary, listening (and ready, unless asked not to wait).
pub struct RunningBinary {
    /// The process; `kill_on_drop` is set.
    pub child: Child,
    /// The `Listening` log line, as JSON.
    pub listening: serde_json::Value,
    ports: BTreeMap<String, u16>,
}

impl Binary {
    /// `path` with an empty environment but `AXIOM25__SERVER__HOST=127.0.0.1`, stdout read by the
    /// kit, stderr inherited; waits for readiness, up to 30 s.
    pub fn new(path: impl AsRef<OsStr>) -> Self {
        let mut command = Command::new(path);
        command
            .env_clear()
            .env("AXIOM25__SERVER__HOST", "127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        Self { command, ready: true, timeout: Duration::from_secs(30) }
    }

    /// Binds each of `ports` (`grpc`, `http`, `admin`) to port 0.
    pub fn ports(mut self, ports: &[&str]) -> Self {
        for port in ports {
            self.command.env(format!("AXIOM25__SERVER__{}_PORT", port.to_uppercase()), "0");
        }
        self
    }

    /// Sets one environment variable (later settings win).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Sets environment variables.
    pub fn envs<K: AsRef<OsStr>, V: AsRef<OsStr>>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self {
        self.command.envs(vars);
        self
    }

    /// Adds command-line arguments.
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.command.args(args);
        self
    }

    /// Whether [`start`](Self::start) waits for `/readyz` after `Listening` (default yes).
    pub fn wait_ready(self, ready: bool) -> Self {
        Self { ready, ..self }
    }

    /// The limit for listening and readiness together.
    pub fn timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }

    /// Starts the binary and waits until it listens (and is ready).
    pub async fn start(mut self) -> anyhow::Result<RunningBinary> {
        let mut child = self.command.spawn().context("starting the binary")?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let stdout = child.stdout.take().context("stdout is piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let listening = tokio::time::timeout_at(deadline, async {
            while let Some(line) = lines.next_line().await? {
                if let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line)
                    && entry["message"] == "Listening"
                {
                    return Ok(entry);
                }
            }
            bail!("the binary exited before listening ({:?})", child.try_wait())
        })
        .await
        .with_context(|| format!("the binary did not listen within {:?}", self.timeout))??;
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let ports = listening
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(key, value)| {
                let name = key.strip_suffix("_port")?;
                Some((name.to_owned(), u16::try_from(value.as_u64()?).ok()?))
            })
            .collect();
        let running = RunningBinary { child, listening, ports };
        if self.ready
            && let Some(admin) = running.ports.get("admin")
        {
            wait_ready(SocketAddr::from((Ipv4Addr::LOCALHOST, *admin)), deadline).await?;
        }
        Ok(running)
    }
}

async fn wait_ready(admin: SocketAddr, deadline: tokio::time::Instant) -> anyhow::Result<()> {
    let client = HttpClient::new().with_timeout(Duration::from_secs(2));
    loop {
        let status = client.get(admin, "/readyz").await.map(|answer| answer.status.as_u16());
        if matches!(status, Ok(200)) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("/readyz on {admin} did not answer 200 in time (last: {status:?})");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl RunningBinary {
    /// The loopback address of the port the `Listening` line names `{name}_port`.
    pub fn addr(&self, name: &str) -> SocketAddr {
        let port = self.ports.get(name).unwrap_or_else(|| panic!("no {name}_port in {}", self.listening));
        SocketAddr::from((Ipv4Addr::LOCALHOST, *port))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the binary is still running")
    }

    /// Sends SIGTERM, without waiting.
    pub fn signal_term(&self) -> anyhow::Result<()> {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.pid())?).context("pid 0")?;
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).context("sending SIGTERM")
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit (then kills it and fails).
    pub async fn terminate(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        self.signal_term()?;
        self.wait(timeout).await
    }

    /// Waits up to `timeout` for the exit (then kills it and fails).
    pub async fn wait(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                self.child.kill().await?;
                bail!("the binary did not exit within {timeout:?}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A stand-in service: `/bin/sh -c script`, with a PATH for the script's own commands.
    fn shell(script: &str) -> Binary {
        Binary::new("/bin/sh").args(["-c", script]).env("PATH", "/usr/bin:/bin")
    }

    /// `/readyz` answering 503 to the first `not_ready` reads, then 200; how many reads it got.
    async fn readiness(not_ready: u32) -> (u16, Arc<AtomicU32>) {
        let reads = Arc::new(AtomicU32::new(0));
        let counter = reads.clone();
        let router = axum::Router::new().route(
            "/readyz",
            axum::routing::get(async move || {
                let read = counter.fetch_add(1, Ordering::SeqCst);
                if read < not_ready { http::StatusCode::SERVICE_UNAVAILABLE } else { http::StatusCode::OK }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move { axum::serve(listener, router).await });
        (port, reads)
    }

    #[tokio::test]
    async fn start_reads_the_ports_of_the_listening_line_then_waits_until_ready() {
        let (admin, reads) = readiness(3).await;
        let script = format!(
            "echo 'not json'; echo '{{\"message\":\"Starting\",\"grpc_port\":1}}'; \
             echo '{{\"message\":\"Listening\",\"grpc_port\":4321,\"admin_port\":{admin}}}'; sleep 5"
        );
        let running = shell(&script).start().await.expect("listens and gets ready");
        assert_eq!(running.addr("grpc"), SocketAddr::from((Ipv4Addr::LOCALHOST, 4321)));
        assert_eq!(running.addr("admin").port(), admin);
        assert_eq!(reads.load(Ordering::SeqCst), 4, "polled /readyz until it answered 200");
    }

    #[tokio::test]
    async fn the_requested_ports_are_zero_on_loopback_and_env_overrides_them() {
        let script = "echo \"{\\\"message\\\":\\\"Listening\\\",\\\"host\\\":\\\"$AXIOM25__SERVER__HOST\\\",\
            \\\"grpc_port\\\":$AXIOM25__SERVER__GRPC_PORT,\\\"http_port\\\":$AXIOM25__SERVER__HTTP_PORT}\"; sleep 5";
        let running = shell(script)
            .ports(&["grpc", "http"])
            .env("AXIOM25__SERVER__HTTP_PORT", "8")
            .start()
            .await
            .expect("listens");
        assert_eq!(running.listening["host"], "127.0.0.1");
        assert_eq!((running.addr("grpc").port(), running.addr("http").port()), (0, 8));
    }

    #[tokio::test]
    async fn a_binary_that_exits_before_listening_is_an_error() {
        let error = shell("echo starting; exit 3").start().await.err().expect("never listened");
        assert!(error.to_string().contains("exited before listening"), "{error}");
    }

    #[tokio::test]
    async fn a_binary_that_stays_silent_fails_within_the_timeout() {
        let started = std::time::Instant::now();
        let error = shell("sleep 5").timeout(Duration::from_millis(200)).start().await.err().expect("silent");
        assert!(error.to_string().contains("did not listen within"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn terminate_sends_sigterm_and_returns_the_exit_status() {
        // The loop is bounded (at most 10 s) and ends at once on SIGTERM.
        let script = "trap 'exit 7' TERM; echo '{\"message\":\"Listening\",\"grpc_port\":1}'; \
                      i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done";
        let mut running = shell(script).start().await.expect("listens");
        let status = running.terminate(Duration::from_secs(5)).await.expect("exits on SIGTERM");
        assert_eq!(status.code(), Some(7));
    }

    #[tokio::test]
    async fn a_binary_that_ignores_sigterm_is_killed_after_the_timeout() {
        let script = "trap '' TERM; echo '{\"message\":\"Listening\",\"grpc_port\":1}'; sleep 5";
        let mut running = shell(script).start().await.expect("listens");
        let error = running.terminate(Duration::from_millis(200)).await.expect_err("ignored SIGTERM");
        assert!(error.to_string().contains("did not exit"), "{error}");
        assert!(running.child.try_wait().expect("waitable").is_some(), "killed");
    }
}
