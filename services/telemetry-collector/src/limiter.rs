//! Memory limiter: refuses new data before decoding once the process is above its soft limit.
