//! The process-wide stop signal: SIGTERM (what Kubernetes and Docker send) or SIGINT (Ctrl-C), and
//! the `shutdown` settings section every service shares (the drain itself is
//! [`crate::lifecycle::Lifecycle`]'s).

use tokio::signal::unix::{SignalKind, signal as unix_signal};

crate::settings_section! {
    /// Graceful shutdown: the `shutdown` section of every service's settings.
    pub struct ShutdownSettings {
        /// Time between turning not ready and closing the listeners, in milliseconds, for balancers
        /// that poll health (Kubernetes uses its `preStop` sleep instead).
        pub drain_delay_ms: u64 = 0,
        /// Longest wait for work in flight once the listeners are closed, in milliseconds.
        pub grace_period_ms: u64 = 20_000,
    }
}

impl ShutdownSettings {
    /// Problems with these settings, keys prefixed with `prefix`.
    #[must_use]
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        if self.grace_period_ms == 0 {
            return vec![format!("{prefix}.grace_period_ms: must be at least 1")];
        }
        Vec::new()
    }
}

/// Resolves when the process is asked to stop. If the handlers cannot be installed the process
/// could never stop gracefully, so that is reported at start-up rather than ignored.
///
/// # Errors
/// When a signal handler cannot be registered.
pub fn signal() -> std::io::Result<impl Future<Output = &'static str> + Send + 'static> {
    let mut term = unix_signal(SignalKind::terminate())?;
    let mut int = unix_signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}
