//! An app inside the test process, on the ports it bound itself (port 0 in test settings).
//!
//! Generic over the lifecycle every service follows (`build` → bound addresses →
//! `run_until_stopped(stop)`), as a closure, so it serves each `Application` without the kit
//! depending on any service crate:
//!
//! ```ignore
//! let app = Application::build(settings).await?;
//! let running = axiom25_testkit::spawn((app.grpc_addr(), app.admin_addr()), |stop| app.run_until_stopped(stop));
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The stop future handed to `run_until_stopped`: resolves (with the reason `"test"`) when the
/// [`InProcess`] guard is stopped or dropped.
pub struct Stop(oneshot::Receiver<()>);

impl Future for Stop {
    type Output = &'static str;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A dropped sender is a stop too: the guard went away.
        Pin::new(&mut self.0).poll(cx).map(|_| "test")
    }
}

/// A running app and its addresses; dropping it asks the app to stop (without waiting).
pub struct InProcess<A> {
    /// What the app bound (its addresses, or anything else taken from it before it ran).
    pub addresses: A,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Runs `run(stop)` on the current runtime; `addresses` is kept on the guard.
pub fn spawn<A, F>(addresses: A, run: impl FnOnce(Stop) -> F) -> InProcess<A>
where
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(run(Stop(stopped)));
    InProcess { addresses, stop: Some(stop), task: Some(task) }
}

impl<A> InProcess<A> {
    /// Asks the app to stop and waits until it returned: its result, or its panic as an error.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.signal_stop();
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }

    /// Asks the app to stop, without waiting.
    pub fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl<A> Drop for InProcess<A> {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    /// The lifecycle of a service, in miniature: serves until stopped, then records that it drained.
    async fn serve(stop: Stop, drained: Arc<AtomicBool>) -> anyhow::Result<()> {
        let reason = stop.await;
        anyhow::ensure!(reason == "test", "stopped for {reason}");
        drained.store(true, Ordering::SeqCst);
        Ok(())
    }

    #[tokio::test]
    async fn stop_waits_until_the_app_has_returned() {
        let drained = Arc::new(AtomicBool::new(false));
        let flag = drained.clone();
        let running = spawn(7u16, |stop| serve(stop, flag));
        assert_eq!(running.addresses, 7);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!drained.load(Ordering::SeqCst), "runs until asked to stop");
        running.stop().await.expect("ran");
        assert!(drained.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn dropping_the_guard_stops_the_app() {
        let drained = Arc::new(AtomicBool::new(false));
        let flag = drained.clone();
        drop(spawn((), |stop| serve(stop, flag)));
        tokio::time::timeout(Duration::from_secs(5), async {
            while !drained.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("stopped after the drop");
    }

    #[tokio::test]
    async fn a_failing_app_reports_its_error_on_stop() {
        let running = spawn((), |stop| async move {
            stop.await;
            Err::<(), _>(anyhow::anyhow!("drain failed"))
        });
        assert_eq!(running.stop().await.expect_err("failed").to_string(), "drain failed");
    }
}
