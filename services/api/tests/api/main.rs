//! Integration tests: the real server on port 0 called through a real tonic client.

mod connections;
mod helpers;
mod observability;
mod probes;
mod release;
mod rpc;
mod shutdown;
mod statuses;
