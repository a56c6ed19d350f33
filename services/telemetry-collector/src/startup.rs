//! Builds the collector from its settings and runs it until told to stop.

/// A bound, not yet serving collector.
#[derive(Debug)]
pub struct Application;
