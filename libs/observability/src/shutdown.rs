//! The process-wide stop signal: SIGTERM (what Kubernetes and Docker send) or SIGINT (Ctrl-C).

use tokio::signal::unix::{SignalKind, signal as unix_signal};

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
