//! Integration tests of the collector: the real server on port 0.
