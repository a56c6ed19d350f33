//! The process-wide stop signal: SIGTERM (what Kubernetes and Docker send) or SIGINT (Ctrl-C), the
//! `shutdown` settings section every service shares, and the drain sequence servers follow.

use std::time::Duration;

use serde::Deserialize;
use tokio::signal::unix::{SignalKind, signal as unix_signal};

use crate::admin::{Readiness, ReadinessState};

/// Graceful shutdown: the `shutdown` section of every service's settings.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    /// Time between turning not ready and closing the listeners, in milliseconds, for balancers
    /// that poll health (Kubernetes uses its `preStop` sleep instead).
    pub drain_delay_ms: u64,
    /// Longest wait for work in flight once the listeners are closed, in milliseconds.
    pub grace_period_ms: u64,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self { drain_delay_ms: 0, grace_period_ms: 20_000 }
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

/// The drain sequence of a server: on the stop signal, not ready at once; the listener closed
/// after the drain delay; work in flight abandoned when the grace period after that is over.
#[derive(Debug, Clone)]
pub struct Drain {
    readiness: Readiness,
    drain_delay: Duration,
    grace: Duration,
}

impl Drain {
    /// The sequence of `settings`, reported through `readiness`.
    #[must_use]
    pub const fn new(settings: &ShutdownSettings, readiness: Readiness) -> Self {
        Self {
            readiness,
            drain_delay: Duration::from_millis(settings.drain_delay_ms),
            grace: Duration::from_millis(settings.grace_period_ms),
        }
    }

    /// Waits for `stop` in the background; the returned future resolves when the listener is to
    /// close: the drain delay after the signal, with readiness turned to draining at the signal,
    /// so that balancers move traffic away before connections are refused.
    pub fn on_signal(
        &self,
        stop: impl Future<Output = &'static str> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();
        let (readiness, drain_delay, grace) = (self.readiness.clone(), self.drain_delay, self.grace);
        tokio::spawn(async move {
            let signal = stop.await;
            readiness.set_draining();
            tracing::info!(signal, drain_delay_ms = drain_delay.as_millis() as u64, "Draining");
            tokio::time::sleep(drain_delay).await;
            let _ = close_tx.send(());
        });
        async move {
            let _ = close_rx.await;
            tracing::info!(grace_period_ms = grace.as_millis() as u64, "Listener closed; finishing work in flight");
        }
    }

    /// Runs `serving` to its end, or until the grace period after the drain delay is over, when
    /// whatever is still in flight is abandoned.
    ///
    /// # Errors
    /// The server's own error.
    pub async fn serve<E>(&self, serving: impl Future<Output = Result<(), E>>) -> Result<(), E> {
        let mut draining = self.readiness.subscribe();
        tokio::select! {
            result = serving => result,
            () = async {
                let _ = draining.wait_for(|state| *state == ReadinessState::Draining).await;
                tokio::time::sleep(self.drain_delay + self.grace).await;
            } => {
                tracing::warn!("Grace period over; abandoning work still in flight");
                Ok(())
            }
        }
    }
}
