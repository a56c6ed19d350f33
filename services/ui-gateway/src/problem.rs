//! Every error answer of the gateway is an [`axiom25_observability::problem::Problem`], the
//! RFC 9457 document the collector's query API answers too (docs/contracts.md §3). This module adds its
//! schema for the OpenAPI document.

use utoipa::ToSchema;

pub use axiom25_observability::problem::{PROBLEM_JSON, Problem};

/// The OpenAPI schema of [`Problem`], which lives in a crate without utoipa; a test keeps the two
/// naming the same members.
#[derive(ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)]
pub struct ProblemSchema {
    /// URI naming the kind of problem, e.g. `urn:axiom25:problem:invalid-argument`.
    #[schema(rename = "type")]
    kind: String,
    /// Short summary of the kind of problem.
    title: String,
    /// HTTP status code.
    status: u16,
    /// What went wrong with this request, naming the field and value at fault.
    detail: String,
    /// JSON pointer to the part of the request body at fault (e.g. `/a/1/0`), when one is.
    pointer: Option<String>,
    /// Stable reason of the api's error, e.g. `SINGULAR_MATRIX` (see the gateway's docs), when it
    /// gave one.
    reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use utoipa::PartialSchema as _;
    use utoipa::openapi::{RefOr, schema::Schema};

    use super::*;

    #[test]
    fn the_schema_names_exactly_the_members_a_problem_sends() {
        let problem = Problem::new(StatusCode::BAD_REQUEST, "x", "X", "x").at("/a").because("NOT_SQUARE");
        let sent: Vec<String> = serde_json::to_value(problem).unwrap().as_object().unwrap().keys().cloned().collect();
        let RefOr::T(Schema::Object(schema)) = ProblemSchema::schema() else { panic!("an object schema") };
        let mut described: Vec<String> = schema.properties.keys().cloned().collect();
        described.sort();
        assert_eq!(described, sent);
        assert_eq!(schema.required, ["type", "title", "status", "detail"]);
    }
}
