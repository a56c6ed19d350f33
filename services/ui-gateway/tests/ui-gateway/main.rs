//! Integration tests of the ui-gateway: the real server on port 0, in front of a real api.

mod helpers;
mod metrics;
mod ops;
mod reconnect;
mod rest;
mod ui;
