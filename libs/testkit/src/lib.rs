//! The AXIOM-25 test kit, used only by tests and benches (as a dev-dependency): spawn an app in
//! the test process on port 0, launch a service binary and wait until it is ready, parse the
//! Prometheus text format, read a process's CPU time and resident memory, one HTTP client, and
//! deterministic numbers for inputs.
//! Its Python twin is `tools/testkit` (`axiom25_testkit`).

pub mod binary;
pub mod exposition;
pub mod http;
pub mod numbers;
pub mod resources;
pub mod spawn;

pub use binary::{Binary, RunningBinary};
pub use exposition::{Exposition, Sample};
pub use http::{Answer, HttpClient};
pub use numbers::Xorshift;
pub use resources::Usage;
pub use spawn::{InProcess, Stop, spawn};
