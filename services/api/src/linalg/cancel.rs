//! Cooperative cancellation between the gRPC handler and the computation it started.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::LinalgError;

/// Cooperative cancellation flag shared between the gRPC handler (which
/// cancels when the client goes away or the deadline passes) and the
/// computation (which polls it between stages).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A fresh, not-cancelled token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests cancellation; every clone observes it.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    pub(super) fn check(&self) -> Result<(), LinalgError> {
        if self.is_cancelled() { Err(LinalgError::Cancelled) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_token_clones_share_one_flag() {
        let token = CancelToken::default();
        let clone = token.clone();
        assert!(!clone.is_cancelled());
        token.cancel();
        assert!(clone.is_cancelled());
    }
}
