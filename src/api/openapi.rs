//! The OpenAPI 3 description of the HTTP API, served at `GET /openapi.json`.
//!
//! It is not written by hand: every route is declared once, on its handler
//! (`#[utoipa::path]`), and [`super::routes()`] builds the axum router and the
//! description from those same declarations (`utoipa-axum`), with request and
//! response schemas derived from the types the handlers really use. A route
//! cannot be served without being described, and the integration test
//! `openapi::the_spec_matches_the_router` checks the served description
//! against what the router answers.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The name of the bearer security scheme in the description (the
/// `security` attributes spell it out: they need a literal).
pub const BEARER: &str = "bearer";

/// The static part of the description: info, tags, the security scheme and
/// the default requirement (the bearer token; public routes opt out).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "SSP (Spooky Stream Processor)",
        description = "Live SurrealQL views over SurrealDB, kept up to date incrementally; view membership is written to SurrealDB as `_spooky_list_ref` edges. Every route needs `Authorization: Bearer <secret>` except the probes, `/version` and this document. Errors are `{\"error\": \"...\", \"code\": \"...\"}`."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "probes", description = "Liveness, readiness, version (public)"),
        (name = "ingest", description = "Record changes pushed by applications"),
        (name = "views", description = "Register, read, keep alive and remove views"),
        (name = "ops", description = "Metrics, reset and this description"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The rendered description, shared by the `/openapi.json` handler.
#[derive(Clone)]
pub struct SpecJson(pub Arc<String>);

/// This OpenAPI description.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    security(()),
    responses((status = 200, description = "This description (OpenAPI 3.1)", content_type = "application/json"))
)]
pub async fn openapi_json(Extension(spec): Extension<SpecJson>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        spec.0.as_str().to_owned(),
    )
}
