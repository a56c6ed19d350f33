//! The operations view's data: readiness of the api and the collector, RED figures from the
//! collector's span metrics, recent traces. (Being written.)

use crate::backend::Backend;
use crate::settings::OpsSettings;

/// Handle on the operations data.
#[derive(Debug, Clone)]
pub struct Ops {
    #[allow(dead_code)]
    backend: Backend,
}

impl Ops {
    /// Starts polling.
    #[must_use]
    pub fn start(_settings: &OpsSettings, backend: Backend) -> Self {
        Self { backend }
    }
}
