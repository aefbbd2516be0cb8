//! The OpenAPI 3.1 description of the API, generated from the code and served at `GET /api/v1/openapi.json`.
//!
//! Each handler carries its own `#[utoipa::path]` annotation (method, path, parameters, body, responses) and
//! each wire type derives `ToSchema` where it is declared; [`ApiDoc`] is the one list of documented
//! operations. The router test (`tests/router.rs`) reads the routes axum actually registered and fails when
//! one is missing here, or documented here but not routed.
//!
//! Conventions: only the trailing-slash spelling of a path is documented (as Svix does; both are served);
//! errors are `HttpErrorOut` (`{code, detail}`) or, for 422, `HTTPValidationError` (`{detail: [{loc, msg,
//! type}]}`), referenced through the reusable responses below; [`AdminErrors`] and [`AdminBodyErrors`] list
//! what every authenticated route can answer besides its own statuses.
//!
//! Adding a route: put `#[utoipa::path(method, path = "/api/v1/…/", operation_id = "v1.<resource>.<action>",
//! tag, params, request_body, responses)]` on its handler (see `app.rs`), derive `ToSchema` on its wire types,
//! and add the handler to `paths(...)` below. Public routes say `security(())`; a route that is not JSON
//! names its content type (`content_type = "text/plain"`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, ToResponse};

use crate::ApiState;
use crate::error::{ApiError, ErrorBody, FieldError, ValidationErrorBody};

/// The one list of documented operations. A new route gets a `#[utoipa::path]` on its handler and a line in
/// `paths(...)` here.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookrelay",
        description = "Webhook gateway: the Svix-compatible v1 API for outbound webhooks, plus hookrelay's \
                       extensions (inbound sources and their public ingest route, recover and replay-missing \
                       background tasks, health, statistics, Prometheus metrics). Every path is also served \
                       without its trailing slash.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        crate::health::health,
        crate::health::ping,
        serve_document,
        crate::app::list,
        crate::app::create,
        crate::app::read,
        crate::app::upsert,
        crate::app::patch,
        crate::app::delete,
        crate::event_type::list,
        crate::event_type::create,
        crate::event_type::read,
        crate::event_type::upsert,
        crate::event_type::patch,
        crate::event_type::delete,
        crate::endpoint::list,
        crate::endpoint::create,
        crate::endpoint::read,
        crate::endpoint::upsert,
        crate::endpoint::patch,
        crate::endpoint::delete,
        crate::endpoint::read_secret,
        crate::endpoint::rotate_secret,
        crate::endpoint::read_headers,
        crate::endpoint::replace_headers,
        crate::endpoint::patch_headers,
        crate::endpoint::stats,
        crate::send_example::send_example,
        crate::listen::stream,
        crate::listen::answer,
        crate::transformation::read,
        crate::transformation::set,
        crate::transformation::simulate,
        crate::message::list,
        crate::message::publish,
        crate::message::read,
        crate::message::expunge_content,
        crate::attempt::list_by_app,
        crate::attempt::list_by_endpoint,
        crate::attempt::list_by_message,
        crate::attempt::read,
        crate::attempt::expunge_content,
        crate::attempt::list_destinations,
        crate::attempt::list_attempted_messages,
        crate::attempt::resend,
        crate::attempt_stream::all_apps,
        crate::attempt_stream::one_app,
        crate::background_task::recover,
        crate::background_task::replay_missing,
        crate::background_task::list,
        crate::background_task::read,
        crate::source::list,
        crate::source::create,
        crate::source::read,
        crate::source::patch,
        crate::source::delete,
        crate::source::list_events,
        crate::source::list_rejections,
        crate::source::stats,
        crate::source::sign,
        crate::ingest::ingest,
        crate::stats::stats,
        crate::stats::activity,
        crate::metrics::scrape,
        crate::token::app_portal_access,
        crate::token::create_admin_token,
        crate::token::list_admin_tokens,
        crate::token::revoke_admin_token,
        crate::token::whoami,
    ),
    components(
        schemas(ErrorBody, ValidationErrorBody, FieldError),
        responses(
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            NotReplayable,
            ContentGone,
            ConflictOrNotReplayable,
            PayloadTooLarge,
            Invalid,
            TooManyRequests,
            Unavailable,
            Internal,
        ),
    ),
    modifiers(&BearerAuth, &LinkCreatedResources, &IdempotencyKeyHeader),
    security(("bearer" = [])),
    tags(
        (name = "Application", description = "One per customer of the SaaS; owns endpoints and messages."),
        (name = "Event Type", description = "The kinds of events publishers send and endpoints filter on."),
        (name = "Endpoint", description = "The URLs an application's messages are delivered to."),
        (name = "Message", description = "Publishing events and reading them back."),
        (name = "Message Attempt", description = "Delivery attempts, destinations and manual resends."),
        (name = "Background Task", description = "Recover and replay-missing, run after their 202."),
        (name = "Source", description = "hookrelay extension: inbound webhook sources (admin)."),
        (name = "Ingest", description = "hookrelay extension: the public route providers send webhooks to."),
        (name = "Authentication", description = "Application (app portal) tokens and named admin tokens (admin only); which token is calling (any token)."),
        (name = "Statistics", description = "hookrelay extension: the last 24 hours at a glance, and activity over time (admin)."),
        (name = "Health", description = "Liveness, database and queue, metrics; no API token needed."),
    ),
)]
pub struct ApiDoc;

/// Adds the bearer-token security scheme the operations refer to (`security(("bearer" = []))`).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "An admin token (the bootstrap one or a named one), or an application token from \
                 `POST /api/v1/auth/app-portal-access/{app_id}/`, which may only use its application's routes: \
                 `Authorization: Bearer <token>`.",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
        let metrics = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("`GET /metrics` only, when the operator set `HOOKRELAY_METRICS_TOKEN`."))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("metricsToken", SecurityScheme::Http(metrics));
    }
}

/// Adds OpenAPI links from each create operation (a POST on a collection answering 201 or 202) to the
/// operations on what it created (the paths below the collection, e.g. `POST /api/v1/app/` →
/// `GET /api/v1/app/{app_id}/`): the new resource's `id` (an event type's `name`) fills the child's parameter,
/// and the create's own path parameters are passed on. Clients and test generators (schemathesis's stateful
/// phase) follow them; derived from the paths, so a new route gets its links without annotation.
struct LinkCreatedResources;

impl Modify for LinkCreatedResources {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let targets: Vec<(String, String)> = openapi
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                operations(item).filter_map(|op| op.operation_id.clone()).map(move |id| (path.clone(), id))
            })
            .collect();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let Some(create) = item.post.as_mut() else { continue };
            for (status, response) in create.responses.responses.iter_mut() {
                let RefOr::T(response) = response else { continue };
                if status != "201" && status != "202" {
                    continue;
                }
                for (target_path, target_id) in &targets {
                    if let Some(link) = link_to(path, target_path, target_id) {
                        response.links.insert(target_id.clone(), RefOr::T(link));
                    }
                }
            }
        }
    }
}

/// Declares the `idempotency-key` header on every POST the API remembers answers for (all but the public
/// ingest route), as Svix's document does, so generated clients can send it.
struct IdempotencyKeyHeader;

impl Modify for IdempotencyKeyHeader {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        for (path, item) in openapi.paths.paths.iter_mut() {
            let Some(post) = item.post.as_mut().filter(|_| !path.starts_with("/ingest/")) else { continue };
            let header = ParameterBuilder::new()
                .name("idempotency-key")
                .parameter_in(ParameterIn::Header)
                .required(utoipa::openapi::Required::False)
                .description(Some(
                    "The request's idempotency key: a repeat within 12 hours gets the first answer replayed \
                     instead of running again.",
                ))
                .schema(Some(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::String)))
                .build();
            post.parameters.get_or_insert_with(Vec::new).push(header);
        }
    }
}

/// Marks every object schema without declared properties (payloads, examples, transformation inputs) as open
/// to any property: bare `{"type": "object"}` is read by some generators (openapi-typescript) as an object with
/// no properties at all, `Record<string, never>`, so `payload: {a: 1}` would not compile. Applied to the
/// document's JSON, since its schemas nest in many typed places.
fn open_objects(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let is_bare_object = map.get("type").is_some_and(|t| {
                t == "object" || t.as_array().is_some_and(|types| types.iter().any(|t| t == "object"))
            }) && !map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && !map.contains_key("$ref");
            if is_bare_object {
                map.insert("additionalProperties".into(), Value::Bool(true));
            }
            map.values_mut().for_each(open_objects);
        }
        Value::Array(items) => items.iter_mut().for_each(open_objects),
        _ => {}
    }
}

fn operations(item: &utoipa::openapi::PathItem) -> impl Iterator<Item = &utoipa::openapi::path::Operation> {
    [&item.get, &item.put, &item.post, &item.delete, &item.patch].into_iter().flatten()
}

/// The link from a create on `collection` to the operation `target_id` on `target_path`, when the target is
/// below the created resource and needs no parameter the create cannot supply.
fn link_to(collection: &str, target_path: &str, target_id: &str) -> Option<utoipa::openapi::link::Link> {
    let rest = target_path.strip_prefix(collection)?;
    let (first, _) = rest.split_once('/')?;
    let created = first.strip_prefix('{')?.strip_suffix('}')?;
    // utoipa 5 writes `Link::operation_id` as `operation_id` (fixed in utoipa 6), which readers ignore; the
    // field goes in through the extensions map, which is written as is.
    let operation_id = utoipa::openapi::extensions::Extensions::from_iter([("operationId", target_id)]);
    let mut link = utoipa::openapi::link::LinkBuilder::new().extensions(Some(operation_id));
    let field = if created == "name" { "name" } else { "id" };
    link = link.parameter(created, format!("$response.body#/{field}"));
    for param in target_path.split('/').filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}')) {
        if param == created {
            continue;
        }
        if !collection.contains(&format!("{{{param}}}")) {
            return None;
        }
        link = link.parameter(param, format!("$request.path.{param}"));
    }
    Some(link.build())
}

/// The public routes that serve the document; mounted without authentication.
pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new().route("/api/v1/openapi.json", get(serve_document))
}

/// The document as JSON text, built on first use.
pub fn document() -> Result<&'static str, ApiError> {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    if let Some(text) = DOCUMENT.get() {
        return Ok(text);
    }
    let mut value = serde_json::to_value(ApiDoc::openapi())
        .map_err(|err| ApiError::Internal(format!("serializing the OpenAPI document: {err}")))?;
    open_objects(&mut value);
    let text = value.to_string();
    Ok(DOCUMENT.get_or_init(|| text))
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "v1.openapi.get",
    tag = "Health",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 description of this API.", body = Object)),
)]
async fn serve_document() -> Result<Response, ApiError> {
    Ok((StatusCode::OK, [(CONTENT_TYPE, "application/json")], document()?).into_response())
}

/// A reusable error response whose body is the schema named `schema`.
fn error_response(description: &str, schema: &str) -> RefOr<utoipa::openapi::Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).build();
    RefOr::T(ResponseBuilder::new().description(description).content("application/json", content).build())
}

/// Declares a reusable response (`#/components/responses/<name>`) with an error body.
macro_rules! error_responses {
    ($($name:ident: $schema:literal, $description:literal;)*) => {$(
        #[doc = $description]
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
                (stringify!($name), error_response($description, $schema))
            }
        }
    )*};
}

error_responses! {
    Unauthorized: "HttpErrorOut", "No or a wrong bearer token (`authentication_failed`).";
    Forbidden: "HttpErrorOut", "The token may not do this: an application token outside its application's routes, \
        or a read-only token writing (`insufficient_access`).";
    NotFound: "HttpErrorOut", "The resource does not exist (`not_found`).";
    Conflict: "HttpErrorOut", "A uniqueness rule would be broken: uid, event type name or eventId (`conflict`).";
    NotReplayable: "HttpErrorOut", "A request with this idempotency key already succeeded, and its answer held a \
        token or secret, which a server without an encryption key does not store: send it again with a new key \
        (`idempotency_not_replayable`).";
    ContentGone: "HttpErrorOut", "The message's content was expunged or its retention ended: there is nothing to \
        send (`conflict`).";
    ConflictOrNotReplayable: "HttpErrorOut", "The name is taken (`conflict`), or a request with this idempotency \
        key already succeeded and its token is not stored without an encryption key (`idempotency_not_replayable`).";
    PayloadTooLarge: "HttpErrorOut", "The body is larger than the server accepts (`payload_too_large`).";
    Invalid: "HTTPValidationError", "The input is not acceptable; `loc` names the offending field.";
    Unavailable: "HttpErrorOut", "The database is unreachable right now; retry later (`service_unavailable`).";
    Internal: "HttpErrorOut", "A bug or corrupt data; the cause is in the server log (`internal_server_error`).";
}

/// 429, with the `Retry-After` header the client should honour.
pub struct TooManyRequests;

impl<'r> ToResponse<'r> for TooManyRequests {
    fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
        let description = "The token sent more requests than its rate limit allows (`rate_limit_exceeded`); only \
                           when the operator set `HOOKRELAY_API_RATE_LIMIT`.";
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("HttpErrorOut"))).build();
        let retry_after = utoipa::openapi::HeaderBuilder::new()
            .schema(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::Integer))
            .description(Some("Seconds to wait before retrying."))
            .build();
        let response = ResponseBuilder::new()
            .description(description)
            .content("application/json", content)
            .header("Retry-After", retry_after)
            .build();
        ("TooManyRequests", RefOr::T(response))
    }
}

fn error_refs(entries: &[(&str, &str)]) -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
    entries
        .iter()
        .map(|(status, name)| ((*status).to_owned(), RefOr::Ref(Ref::new(format!("#/components/responses/{name}")))))
        .collect()
}

/// What every authenticated route can answer besides its own statuses: 401, 403 (an application token out of
/// its scope, a read-only token writing), 422 (a bad path segment or query parameter), 429 (the per-token rate
/// limit, when enabled), 500 and 503.
pub struct AdminErrors;

impl IntoResponses for AdminErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        error_refs(&[
            ("401", "Unauthorized"),
            ("403", "Forbidden"),
            ("422", "Invalid"),
            ("429", "TooManyRequests"),
            ("500", "Internal"),
            ("503", "Unavailable"),
        ])
    }
}

/// [`AdminErrors`] plus 413, for authenticated routes that read a body.
pub struct AdminBodyErrors;

impl IntoResponses for AdminBodyErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let mut responses = AdminErrors::responses();
        responses.extend(error_refs(&[("413", "PayloadTooLarge")]));
        responses
    }
}

/// Path parameter of the application routes.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppPath {
    /// The application's id (`app_…`) or uid.
    pub app_id: String,
}

/// Path parameters of one endpoint.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EndpointPath {
    /// The application's id (`app_…`) or uid.
    pub app_id: String,
    /// The endpoint's id (`ep_…`) or uid.
    pub endpoint_id: String,
}

/// Path parameters of one message.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MessagePath {
    /// The application's id (`app_…`) or uid.
    pub app_id: String,
    /// The message's id (`msg_…`) or its `eventId`.
    pub msg_id: String,
}

/// The pagination parameters every list takes.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 250)]
    pub limit: Option<u32>,
    /// The `iterator` of the previous page, or its `prevIterator` (leading `-`) to page backwards.
    pub iterator: Option<String>,
    /// `ascending` or `descending`; messages, attempts and tasks list newest first, everything else oldest first.
    #[param(inline)]
    pub order: Option<Ordering>,
}

/// List order.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Ordering {
    Ascending,
    Descending,
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn doc() -> Value {
        serde_json::from_str(document().expect("serializes")).expect("the document is JSON")
    }

    #[test]
    fn document_is_openapi_3_1_with_bearer_auth_and_error_shapes() {
        let doc = doc();
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["HttpErrorOut"]["required"], serde_json::json!(["code", "detail"]));
        assert_eq!(
            schemas["HTTPValidationError"]["properties"]["detail"]["items"]["$ref"],
            "#/components/schemas/ValidationError"
        );
        assert_eq!(schemas["ValidationError"]["required"], serde_json::json!(["loc", "msg", "type"]));
    }

    #[test]
    fn every_reference_resolves() {
        let doc = doc();
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(refs.len() > 50, "expected many references, found {}", refs.len());
        for reference in refs {
            let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("external reference {reference}"));
            assert!(doc.pointer(pointer).is_some(), "dangling reference {reference}");
        }
    }

    fn collect_refs(value: &Value, refs: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    refs.push(reference.clone());
                }
                map.values().for_each(|v| collect_refs(v, refs));
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
            _ => {}
        }
    }

    #[test]
    fn objects_without_properties_admit_any_and_posts_declare_the_idempotency_key() {
        let doc = doc();
        let message_in = &doc["components"]["schemas"]["MessageIn"]["properties"];
        assert_eq!(message_in["payload"]["additionalProperties"], Value::Bool(true), "{message_in}");
        let mut bare = Vec::new();
        find_bare_objects(&doc, "", &mut bare);
        assert!(bare.is_empty(), "objects without properties that admit none: {bare:?}");
        let create = &doc["paths"]["/api/v1/app/{app_id}/msg/"]["post"]["parameters"];
        let header = create.as_array().and_then(|params| params.iter().find(|p| p["name"] == "idempotency-key"));
        assert_eq!(header.map(|h| h["in"].clone()), Some(Value::from("header")), "{create}");
        let ingest = &doc["paths"]["/ingest/{source}/"]["post"]["parameters"];
        assert!(ingest.as_array().is_none_or(|params| params.iter().all(|p| p["name"] != "idempotency-key")));
    }

    fn find_bare_objects(value: &Value, at: &str, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if map.get("type") == Some(&Value::from("object"))
                    && !map.contains_key("properties")
                    && !map.contains_key("additionalProperties")
                {
                    found.push(at.to_owned());
                }
                map.iter().for_each(|(key, child)| find_bare_objects(child, &format!("{at}/{key}"), found));
            }
            Value::Array(items) => items.iter().for_each(|child| find_bare_objects(child, at, found)),
            _ => {}
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = doc();
        let mut ids = Vec::new();
        for item in doc["paths"].as_object().expect("paths").values() {
            for op in item.as_object().expect("path item").values() {
                ids.push(op["operationId"].as_str().expect("every operation has an id").to_owned());
            }
        }
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "duplicate operationId");
    }

    #[test]
    fn creates_link_to_the_operations_on_what_they_created() {
        let doc = doc();
        let links = &doc["paths"]["/api/v1/app/{app_id}/endpoint/"]["post"]["responses"]["201"]["links"];
        assert_eq!(
            links["v1.endpoint.get-stats"]["parameters"],
            serde_json::json!({"app_id": "$request.path.app_id", "endpoint_id": "$response.body#/id"})
        );
        assert_eq!(links["v1.endpoint.get-stats"]["operationId"], "v1.endpoint.get-stats");
        assert!(links["v1.endpoint.get-stats"].get("operation_id").is_none());
        let links = &doc["paths"]["/api/v1/event-type/"]["post"]["responses"]["201"]["links"];
        assert_eq!(links["v1.event-type.get"]["parameters"], serde_json::json!({"name": "$response.body#/name"}));
        let links = &doc["paths"]["/api/v1/app/{app_id}/msg/"]["post"]["responses"]["202"]["links"];
        assert!(links.get("v1.message.get").is_some(), "{links}");
        assert!(links.get("v1.message-attempt.get").is_none(), "needs an attempt id the message cannot give");
    }

    #[test]
    fn public_routes_need_no_token() {
        let doc = doc();
        for (path, method) in [
            ("/api/v1/health/", "get"),
            ("/api/v1/health/ping/", "get"),
            ("/api/v1/openapi.json", "get"),
            ("/ingest/{source}/", "post"),
        ] {
            assert_eq!(doc["paths"][path][method]["security"], serde_json::json!([{}]), "{method} {path}");
        }
        assert!(doc["paths"]["/api/v1/app/"]["get"].get("security").is_none(), "admin routes use the global scheme");
        assert_eq!(
            doc["paths"]["/metrics"]["get"]["security"],
            serde_json::json!([{}, {"metricsToken": []}]),
            "the metrics token is optional"
        );
    }

    #[test]
    fn authenticated_routes_document_forbidden_and_the_rate_limit() {
        let doc = doc();
        for (path, method) in [
            ("/api/v1/app/", "get"),
            ("/api/v1/stats/", "get"),
            ("/api/v1/stats/activity/", "get"),
            ("/api/v1/auth/token/", "post"),
        ] {
            let responses = &doc["paths"][path][method]["responses"];
            assert_eq!(responses["403"]["$ref"], "#/components/responses/Forbidden", "{method} {path}");
            assert_eq!(responses["429"]["$ref"], "#/components/responses/TooManyRequests", "{method} {path}");
        }
        let too_many = &doc["components"]["responses"]["TooManyRequests"];
        assert_eq!(too_many["headers"]["Retry-After"]["schema"]["type"], "integer");
        assert!(doc["paths"]["/api/v1/health/"]["get"]["responses"].get("429").is_none(), "health is not limited");
    }

    #[test]
    fn health_documents_the_queue() {
        let doc = doc();
        let health = &doc["components"]["schemas"]["HealthOut"];
        assert_eq!(health["required"], serde_json::json!(["status", "database", "queue"]));
        let queue = &doc["components"]["schemas"]["HealthQueueOut"];
        assert_eq!(queue["required"], serde_json::json!(["depth", "oldestAgeSeconds", "asOf"]));
    }
}
