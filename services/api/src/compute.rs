//! Admission and execution of computations.
//!
//! A request first takes an admission slot (`limits.max_in_flight`); when none is free it is shed
//! at once with UNAVAILABLE instead of queueing without bound. It then waits for one of the
//! `compute.workers` CPU slots and runs on tokio's blocking pool, off the reactor. Work estimated
//! below [`INLINE_FLOPS`] (tens of microseconds) runs in place instead: the hop to another thread
//! would cost more than the work. When the
//! handler future is dropped (the client cancelled, or [`crate::edge`] answered its deadline)
//! the computation's [`CancelToken`] is set and the work is abandoned at its next checkpoint
//! rather than finished in the background.

use std::sync::Arc;

use metrics::Gauge;
use tokio::sync::Semaphore;
use tonic::Status;

use crate::error::{ApiError, Operands, RETRY_DELAY, Reason, linalg_status};
use crate::linalg::{CancelToken, LinalgError};

/// Admission control and CPU slots shared by all requests.
#[derive(Clone)]
pub struct ComputeGate {
    admission: Arc<Semaphore>,
    max_in_flight: usize,
    workers: Arc<Semaphore>,
    // Registered once: looking a gauge up by name costs a registry lookup per request.
    in_flight: Gauge,
    running: Gauge,
}

impl std::fmt::Debug for ComputeGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeGate").field("max_in_flight", &self.max_in_flight).finish_non_exhaustive()
    }
}

/// Computations estimated below this many floating-point operations run on the calling task.
pub const INLINE_FLOPS: f64 = 1e6;

/// Cancels the token when dropped: the handler future is dropped when the client cancels.
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

fn panicked() -> Status {
    tracing::error!("Computation panicked");
    Status::internal("the computation failed unexpectedly; it has been logged")
}

/// Raises a saturation gauge for as long as it lives.
struct GaugeGuard(Gauge);

impl GaugeGuard {
    fn up(gauge: &Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

impl ComputeGate {
    /// A gate admitting `max_in_flight` requests, `workers` of them computing at once.
    #[must_use]
    pub fn new(max_in_flight: usize, workers: usize) -> Self {
        Self {
            admission: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            workers: Arc::new(Semaphore::new(workers.max(1))),
            in_flight: metrics::gauge!("axiom25_api_requests_in_flight"),
            running: metrics::gauge!("axiom25_api_computations_running"),
        }
    }

    /// Runs `work` on `operands`, estimated at `flops` floating-point operations, on a CPU slot
    /// (or in place when it is small).
    ///
    /// # Errors
    /// UNAVAILABLE with `RetryInfo` when shed, INTERNAL if the computation panicked (the process
    /// survives), or the computation's own error with the operands' shapes in its details.
    pub async fn run<T, F>(&self, flops: f64, operands: Operands, work: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&CancelToken) -> Result<T, LinalgError> + Send + 'static,
    {
        let Ok(_admitted) = Arc::clone(&self.admission).try_acquire_owned() else {
            metrics::counter!("axiom25_api_requests_shed_total").increment(1);
            return Err(ApiError::new(
                Reason::Overloaded,
                format!("server is at its limit of {} requests in flight; retry with backoff", self.max_in_flight),
            )
            .meta("maxInFlight", self.max_in_flight)
            .retry_after(RETRY_DELAY)
            .into());
        };
        let _in_flight = GaugeGuard::up(&self.in_flight);
        let cancel = CancelToken::default();
        let _cancel_on_drop = CancelOnDrop(cancel.clone());
        if flops < INLINE_FLOPS {
            return match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&cancel))) {
                Ok(result) => result.map_err(|error| linalg_status(error, operands)),
                Err(_) => Err(panicked()),
            };
        }
        let worker = Arc::clone(&self.workers).acquire_owned().await.map_err(|_| {
            Status::from(ApiError::new(Reason::ShuttingDown, "server is shutting down").retry_after(RETRY_DELAY))
        })?;
        let running = GaugeGuard::up(&self.running);
        let task = tokio::task::spawn_blocking(move || {
            // The CPU slot is held until the computation really stops, abandoned or not, so
            // abandoned work still counts against the CPU budget.
            let _worker = worker;
            let _running = running;
            if cancel.is_cancelled() {
                return Err(LinalgError::Cancelled);
            }
            work(&cancel)
        });
        match task.await {
            Ok(result) => result.map_err(|error| linalg_status(error, operands)),
            Err(_) => Err(panicked()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    /// A cost that always takes a worker.
    const BIG: f64 = 1e12;

    const NONE: Operands = Operands { a: crate::error::Shape { rows: 1, cols: 1 }, b: None };

    #[tokio::test]
    async fn requests_beyond_the_admission_limit_are_shed_with_unavailable() {
        let gate = ComputeGate::new(1, 1);
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let busy = {
            let gate = gate.clone();
            tokio::spawn(async move {
                gate.run(BIG, NONE, move |_| {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                    Ok(1)
                })
                .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv()).await.expect("join").expect("started");
        let shed = gate.run(BIG, NONE, |_| Ok(2)).await.expect_err("shed");
        assert_eq!(shed.code(), Code::Unavailable);
        let details = tonic_types::StatusExt::get_error_details(&shed);
        assert_eq!(details.error_info().expect("ErrorInfo").reason, "OVERLOADED");
        assert_eq!(details.retry_info().expect("RetryInfo").retry_delay, Some(RETRY_DELAY));
        release_tx.send(()).expect("release");
        assert_eq!(busy.await.expect("join").expect("served"), 1);
        assert_eq!(gate.run(BIG, NONE, |_| Ok(3)).await.expect("admitted again"), 3);
    }

    #[tokio::test]
    async fn dropping_the_call_cancels_its_computation() {
        let gate = ComputeGate::new(4, 1);
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let call = tokio::spawn(async move {
            gate.run(BIG, NONE, move |cancel| {
                let _ = started_tx.send(());
                while !cancel.is_cancelled() {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                let _ = seen_tx.send(());
                Err::<(), _>(LinalgError::Cancelled)
            })
            .await
        });
        tokio::task::spawn_blocking(move || started_rx.recv()).await.expect("join").expect("started");
        call.abort();
        tokio::task::spawn_blocking(move || seen_rx.recv_timeout(std::time::Duration::from_secs(5)))
            .await
            .expect("join")
            .expect("the computation saw the cancellation");
    }

    #[tokio::test]
    async fn a_panicking_computation_is_an_internal_error_not_a_crash() {
        let gate = ComputeGate::new(4, 1);
        let status =
            gate.run(BIG, NONE, |_| -> Result<(), LinalgError> { panic!("boom") }).await.expect_err("internal");
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(gate.run(BIG, NONE, |_| Ok(7)).await.expect("still serving"), 7);
        let inline = gate.run(1.0, NONE, |_| -> Result<(), LinalgError> { panic!("small boom") }).await;
        assert_eq!(inline.expect_err("internal").code(), Code::Internal);
    }
}
