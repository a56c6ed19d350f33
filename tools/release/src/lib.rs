//! Blue/green releases of the AXIOM-25 api (docs/contracts.md §8): one state machine ([`flow`]) over two
//! platforms ([`platform::compose`] for the local stack, [`platform::kubernetes`] for the chart).

pub mod analysis;
pub mod color;
pub mod command;
pub mod events;
pub mod flow;
pub mod platform;
pub mod probe;

pub use color::Color;
pub use flow::{Outcome, ReleasePlan};
