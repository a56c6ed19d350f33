//! When a failed export is tried again (the OTLP specification's retryable codes) and after how long
//! (the upstream's RetryInfo, else exponential backoff with jitter).

use std::time::Duration;

use rand::Rng;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// What a failed export means for its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// Try again, after the upstream's delay if it gave one.
    Retryable { retry_after: Option<Duration> },
    /// The upstream will never accept this batch.
    Permanent,
}

/// Classifies `status` as the OTLP specification does: RESOURCE_EXHAUSTED is retryable only when
/// the upstream says when to retry (RetryInfo), since otherwise it means "too large, ever".
pub(super) fn classify(status: &Status) -> Failure {
    let retry_info = status.get_details_retry_info();
    let retry_after = retry_info.as_ref().and_then(|info| info.retry_delay);
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => Failure::Retryable { retry_after },
        Code::ResourceExhausted if retry_info.is_some() => Failure::Retryable { retry_after },
        // A status with a source error was made by this side's transport (a connection reset, a
        // stream refused by a server going away), not sent by the upstream: like gRPC's own
        // clients, treat it as UNAVAILABLE.
        Code::Unknown | Code::Internal if std::error::Error::source(status).is_some() => {
            Failure::Retryable { retry_after }
        }
        _ => Failure::Permanent,
    }
}

/// Exponential backoff with ±50 % jitter (the OpenTelemetry Collector's randomisation factor), so
/// that collectors that failed together do not retry together.
#[derive(Debug, Clone)]
pub(super) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(super) fn new(initial: Duration, max: Duration) -> Self {
        Self { next: initial, max }
    }

    /// The wait before the next attempt; each call doubles the base up to the maximum.
    pub(super) fn next_wait(&mut self) -> Duration {
        let base = self.next;
        self.next = base.saturating_mul(2).min(self.max);
        base.mul_f64(rand::rng().random_range(0.5..1.5)).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::ErrorDetails;

    use super::*;

    #[test]
    fn transport_failures_are_retried_but_the_same_codes_sent_by_the_upstream_are_not() {
        let reset = Status::from_error(Box::new(std::io::Error::other("connection reset by peer")));
        assert_eq!(reset.code(), Code::Unknown);
        assert!(matches!(classify(&reset), Failure::Retryable { .. }));
        assert!(matches!(classify(&Status::unknown("upstream bug")), Failure::Permanent));
        assert!(matches!(classify(&Status::internal("upstream bug")), Failure::Permanent));
    }

    #[test]
    fn the_otlp_retryable_codes_are_retried_and_everything_else_is_permanent() {
        for code in [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unavailable,
            Code::DataLoss,
        ] {
            assert_eq!(classify(&Status::new(code, "")), Failure::Retryable { retry_after: None }, "{code:?}");
        }
        for code in [Code::InvalidArgument, Code::Unknown, Code::Unauthenticated, Code::ResourceExhausted] {
            assert_eq!(classify(&Status::new(code, "")), Failure::Permanent, "{code:?}");
        }
    }

    #[test]
    fn resource_exhausted_is_retried_only_with_retry_info_and_its_delay_is_kept() {
        let delay = Duration::from_millis(300);
        let status = Status::with_error_details(
            Code::ResourceExhausted,
            "slow down",
            ErrorDetails::with_retry_info(Some(delay)),
        );
        assert_eq!(classify(&status), Failure::Retryable { retry_after: Some(delay) });
        let unavailable =
            Status::with_error_details(Code::Unavailable, "later", ErrorDetails::with_retry_info(Some(delay)));
        assert_eq!(classify(&unavailable), Failure::Retryable { retry_after: Some(delay) });
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stays_under_the_maximum() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        for base_ms in [100_u64, 200, 400, 800, 1000, 1000] {
            let wait = backoff.next_wait();
            let low = Duration::from_millis(base_ms / 2);
            let high = Duration::from_millis(base_ms * 3 / 2).min(Duration::from_millis(1000));
            assert!(low <= wait && wait <= high, "base {base_ms} ms gave {wait:?}");
        }
    }
}
