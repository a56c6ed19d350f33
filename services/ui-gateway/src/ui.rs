//! The web UI. (Being written.)

use axum::Router;

use crate::ops::Ops;

/// The pages.
pub fn router(_ops: Ops, _keys_required: bool) -> Router {
    Router::new()
}
