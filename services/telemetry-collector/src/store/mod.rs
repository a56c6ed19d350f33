//! The span and log stores: bounded, oldest traces evicted whole, indexed for the query API.
