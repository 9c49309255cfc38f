//! The OpenAPI document, generated from the code: each handler's `#[utoipa::path]` annotation
//! (method, path, parameters, body, its success and its own errors) and the `ToSchema` body
//! types. The router is built from the same annotations ([`crate::api_routes`]), so a route
//! cannot exist without its entry. Served at `GET /api/openapi.json`, committed as
//! `docs/openapi.json` (tests/api/openapi.rs fails when the two differ).
//!
//! The errors every route of a kind shares follow from its extractors and are added here rather
//! than repeated on each handler:
//! - a `security` requirement (the `Caller` extractor) → 401, 429 (failed bearer-token attempts
//!   per address, and the rate-limited routes' per-user and per-organization limits) and 503
//!   (the token is looked up in the store);
//! - a request body (`JsonBody` / `OptionalJson`) → 400, 413, 415;
//! - a path parameter (`Id`) → 404;
//! - the `admin` tag (`require_admin`) → 403.
//!
//! Adding a route:
//! 1. Annotate the handler: `#[utoipa::path(post, path = "/me/tokens", tag = "sessions",
//!    security(("bearer" = [])), request_body = NewToken, params(("id" = Uuid, Path, ...)),
//!    responses((status = 201, description = "...", body = TokenDto), (status = 409,
//!    description = "CONFLICT: ...", body = ErrorBody)))]` — the path relative to `/api`, the
//!    success and the errors particular to it (the shared ones above are added here).
//! 2. Derive `ToSchema` on its body types (`#[schema(required)]` on response `Option` fields, which
//!    are always present; `#[schema(value_type = String, format = DateTime)]` on timestamps;
//!    limits such as `#[schema(minimum = 1, maximum = 365)]` that match what the code checks).
//! 3. Register it in [`crate::api_routes`]: `.routes(routes!(module::handler))`, one `routes!`
//!    per path with all that path's handlers.
//! 4. `UPDATE_OPENAPI=1 cargo test -p entryguard-api --test api openapi::` rewrites
//!    docs/openapi.json; commit it. `bash .ci/schemathesis.sh` then fuzzes the new route too.
//!
//! A new `error.code` is a variant of `error_codes!` in error.rs.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, OpenApi, Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::error::ErrorBody;

/// The name of the bearer-token security scheme, as handlers' `security(("bearer" = []))`.
pub const BEARER: &str = "bearer";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "EntryGuard API",
        version = "1",
        description = "Just-in-time network access for AWS. JSON everywhere, camelCase fields, \
            RFC 3339 UTC timestamps. Every route except the `meta` ones requires \
            `Authorization: Bearer <token>`. Every error has the body \
            `{\"error\":{\"code\",\"message\",\"fields\"?}}` (schema `Error`); an unknown route \
            is 404 NOT_FOUND and a known path with another method 405 METHOD_NOT_ALLOWED. \
            docs/api.md has the rules behind each field.",
    ),
    tags(
        (name = "sessions", description = "The caller and their own sessions"),
        (name = "tokens", description = "The caller's personal API tokens"),
        (name = "admin", description = "Administration of the caller's organization (admins only: 403 FORBIDDEN for members)"),
        (name = "meta", description = "Health and this document; no token needed"),
    )
)]
struct ApiDoc;

/// The document: the annotated routes nested under `/api`, completed with the shared errors.
pub fn document() -> OpenApi {
    let routes =
        utoipa_axum::router::OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
            .nest("/api", crate::api_routes());
    let mut doc = routes.into_openapi();
    complete(&mut doc);
    doc
}

/// The document as pretty-printed JSON (the form docs/openapi.json holds).
pub fn document_json() -> String {
    let mut json = document()
        .to_pretty_json()
        .expect("the document serializes");
    json.push('\n');
    json
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "This OpenAPI document", body = Object)))]
pub async fn serve() -> impl IntoResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(document_json).as_str();
    ([(header::CONTENT_TYPE, "application/json")], json)
}

/// The shared error responses: (status, component name, description).
const SHARED: [(&str, &str, &str); 8] = [
    (
        "400",
        "BadRequest",
        "VALIDATION_FAILED: malformed JSON, a body that is not an object, a missing or unknown \
         field, a wrong type or a value out of range; `fields` names the field when it can",
    ),
    (
        "401",
        "Unauthenticated",
        "UNAUTHENTICATED: missing, unknown or expired bearer token",
    ),
    (
        "403",
        "Forbidden",
        "FORBIDDEN: the caller is not an admin of the organization",
    ),
    (
        "404",
        "NotFound",
        "NOT_FOUND: no such id in the caller's organization (or not the caller's own)",
    ),
    (
        "413",
        "PayloadTooLarge",
        "PAYLOAD_TOO_LARGE: the body is over 64 KiB",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "UNSUPPORTED_MEDIA_TYPE: a body without Content-Type: application/json",
    ),
    (
        "429",
        "RateLimited",
        "RATE_LIMITED: too many failed bearer-token attempts from the caller's address; on \
         session start, stop and extend, credential validation, token creation and dead-letter \
         redrive also too many requests by the caller or their organization (docs/api.md has \
         the limits). `Retry-After` says how many seconds until the window ends",
    ),
    (
        "503",
        "Unavailable",
        "UNAVAILABLE: the store is temporarily unavailable; try again",
    ),
];

fn shared_response(status: &str, description: &str) -> Response {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(ErrorBody::name())))
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", content);
    if status == "401" {
        let bearer = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["Bearer"]));
        response = response.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(bearer)
                .description(Some("Always `Bearer`"))
                .build(),
        );
    }
    if status == "429" {
        let seconds = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1));
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(seconds)
                .description(Some("Seconds to wait before trying again"))
                .build(),
        );
    }
    response.build()
}

fn add_shared(op: &mut Operation, status: &str) {
    let (_, name, _) = SHARED
        .iter()
        .find(|(s, _, _)| *s == status)
        .expect("a shared status");
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
}

/// An optional body is `Option<T>` in an annotation, which utoipa renders as "null or T"; but
/// optional means the body may be absent, and a JSON `null` body is rejected like any other
/// non-object.
fn not_null(schema: &mut Option<RefOr<Schema>>) {
    let Some(RefOr::T(Schema::OneOf(one_of))) = schema else {
        return;
    };
    let is_null = |s: &RefOr<Schema>| matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
    if one_of.items.len() == 2 && one_of.items.iter().any(is_null) {
        *schema = one_of.items.iter().find(|s| !is_null(s)).cloned();
    }
}

fn complete(doc: &mut OpenApi) {
    // Cargo's "UNLICENSED" is not an SPDX identifier; the API has no public licence.
    doc.info.license = None;
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A token from the sign-in (in the local runner: POST /api/dev/login)",
                ))
                .build(),
        ),
    );
    let mut schemas = vec![(ErrorBody::name().into_owned(), ErrorBody::schema())];
    ErrorBody::schemas(&mut schemas);
    components.schemas.extend(schemas);
    for (status, name, description) in SHARED {
        components
            .responses
            .insert(name.to_owned(), shared_response(status, description).into());
    }

    for (path, item) in doc.paths.paths.iter_mut() {
        let has_path_param = path.contains('{');
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            if secured {
                add_shared(op, "401");
                add_shared(op, "429");
                add_shared(op, "503");
            }
            if let Some(body) = op.request_body.as_mut() {
                for content in body.content.values_mut() {
                    not_null(&mut content.schema);
                }
                for status in ["400", "413", "415"] {
                    add_shared(op, status);
                }
            }
            if has_path_param {
                add_shared(op, "404");
            }
            if op
                .tags
                .as_ref()
                .is_some_and(|t| t.iter().any(|t| t == "admin"))
            {
                add_shared(op, "403");
            }
        }
    }
}
