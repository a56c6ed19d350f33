//! The query API on the admin port (CONTRACTS §4): services, traces, one trace, logs.
