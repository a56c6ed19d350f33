//! Span metrics (CONTRACTS §4): calls and duration per service, span name, kind and status.
