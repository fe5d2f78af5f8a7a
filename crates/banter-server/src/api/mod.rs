//! The REST API under `/api/v1`, grouped by resource. The OpenAPI document is generated
//! from the handlers' annotations and served at `/api/v1/openapi.json`.

pub mod accounts;
pub mod admin;
pub mod conversations;
pub mod extract;
pub mod friends;
pub mod groups;
pub mod media;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get};
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Banter API", description = "REST API of the Banter chat server. Real-time frames are described in docs/protocol.md."),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Adds to every operation the errors that follow from its shape rather than from what it
/// does (docs/protocol.md §4.1, "Errors every route can return"), so that no handler's
/// annotation can forget them: `401` where a token is needed, `400` and `413` where there
/// is a body, `400` where there are path or query parameters, and `500` everywhere. A
/// status the annotation already lists keeps its description, extended with these causes.
struct CommonErrors;

impl CommonErrors {
    const BODY_400: &'static str = "invalid_json: the body is not JSON, or is nested more than `json_depth_max` levels; invalid_frame: not one JSON object, or a field is missing, has the wrong type or is unknown; invalid_input: no `Content-Type: application/json`, or a string holds U+0000";
    const BODY_413: &'static str = "too_large: the body is larger than `request_body_bytes_max`";
    const PATH_400: &'static str =
        "invalid_input: a path parameter is malformed (an id that is not an integer)";
    const QUERY_400: &'static str = "invalid_input: an unknown or malformed query parameter";
    const BEARER_401: &'static str = "unauthorized: missing, unknown, expired or revoked token";
    const INTERNAL_500: &'static str =
        "internal: something failed inside the server; the cause is logged, not returned";

    fn add(operation: &mut utoipa::openapi::path::Operation, status: &str, cause: &str) {
        use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
        match operation.responses.responses.get_mut(status) {
            Some(RefOr::T(response)) => {
                if !response.description.contains(cause) {
                    response.description = if response.description.is_empty() {
                        cause.to_string()
                    } else {
                        format!("{}; {cause}", response.description)
                    };
                }
            }
            Some(RefOr::Ref(_)) => {}
            None => {
                let body = ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorBody",
                    ))))
                    .build();
                let response = ResponseBuilder::new()
                    .description(cause)
                    .content("application/json", body)
                    .build();
                operation
                    .responses
                    .responses
                    .insert(status.to_string(), RefOr::T(response));
            }
        }
    }
}

impl utoipa::Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let parameters = operation.parameters.clone().unwrap_or_default();
                let takes = |place: ParameterIn| parameters.iter().any(|p| p.parameter_in == place);
                let (in_path, in_query) = (takes(ParameterIn::Path), takes(ParameterIn::Query));
                // `SecurityRequirement` keeps its scheme names private; its JSON shows them.
                let bearer = operation.security.as_ref().is_some_and(|requirements| {
                    serde_json::to_value(requirements).is_ok_and(|v| {
                        v.as_array()
                            .is_some_and(|r| r.iter().any(|r| r.get("bearer").is_some()))
                    })
                });
                if operation.request_body.is_some() {
                    Self::add(operation, "400", Self::BODY_400);
                    Self::add(operation, "413", Self::BODY_413);
                }
                if in_path {
                    Self::add(operation, "400", Self::PATH_400);
                }
                if in_query {
                    Self::add(operation, "400", Self::QUERY_400);
                }
                if bearer {
                    Self::add(operation, "401", Self::BEARER_401);
                }
                Self::add(operation, "500", Self::INTERNAL_500);
            }
        }
    }
}

/// The server never omits a field of its output: an empty optional one is `null`
/// (docs/protocol.md §2.4). So every property of a schema the server sends is required,
/// nullable where it is an `Option`. Request bodies (`…Request`) keep their optional fields.
struct OutputFieldsPresent;

impl utoipa::Modify for OutputFieldsPresent {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, Schema};
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for (name, schema) in components.schemas.iter_mut() {
            if name.ends_with("Request") {
                continue;
            }
            if let RefOr::T(Schema::Object(object)) = schema {
                for property in object.properties.keys() {
                    if !object.required.contains(property) {
                        object.required.push(property.clone());
                    }
                }
            }
        }
    }
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // The admin API's shared secret (`admin_token`), sent the same way.
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The `/api/v1` routes, plus the OpenAPI document describing them. The admin routes are
/// always documented but mounted only when `admin_enabled`; without them, their paths are
/// unknown routes like any other.
pub fn router(admin_enabled: bool) -> Router<AppState> {
    let v1 = OpenApiRouter::new()
        .routes(routes!(accounts::register))
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::logout))
        .routes(routes!(accounts::me, accounts::update_me))
        .routes(routes!(accounts::change_password))
        .routes(routes!(accounts::user_by_username))
        .routes(routes!(friends::list))
        .routes(routes!(friends::remove))
        .routes(routes!(friends::requests, friends::create_request))
        .routes(routes!(friends::accept))
        .routes(routes!(friends::reject))
        .routes(routes!(friends::cancel))
        .routes(routes!(friends::blocks))
        .routes(routes!(friends::block, friends::unblock))
        .routes(routes!(conversations::list))
        .routes(routes!(conversations::open_direct))
        .routes(routes!(conversations::detail))
        .routes(routes!(conversations::messages))
        .routes(routes!(conversations::mark_read))
        .routes(routes!(groups::create))
        .routes(routes!(groups::rename, groups::disband))
        .routes(routes!(groups::add_members))
        .routes(routes!(groups::remove_member))
        .routes(routes!(groups::set_role))
        .routes(routes!(groups::transfer))
        .routes(routes!(groups::leave))
        .routes(routes!(media::upload))
        .routes(routes!(media::download))
        .routes(routes!(media::thumbnail))
        .routes(routes!(media::set_avatar, media::remove_avatar))
        .routes(routes!(media::set_group_avatar))
        .routes(routes!(media::avatar));
    let admin = OpenApiRouter::new()
        .routes(routes!(admin::create_users))
        .routes(routes!(admin::create_friendships))
        .routes(routes!(admin::create_group));
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1)
        .split_for_parts();
    let (admin_router, admin_openapi) = OpenApiRouter::new()
        .nest("/api/v1", admin)
        .split_for_parts();
    openapi.merge(admin_openapi);
    // After the routes are in: `ApiDoc`'s own modifiers run before there are any paths.
    utoipa::Modify::modify(&CommonErrors, &mut openapi);
    utoipa::Modify::modify(&OutputFieldsPresent, &mut openapi);
    let router = if admin_enabled {
        // The innermost body limit wins, so this one replaces the server-wide limit for
        // these routes only.
        router.merge(admin_router.layer(DefaultBodyLimit::max(admin::ADMIN_REQUEST_BODY_BYTES_MAX)))
    } else {
        router
    };
    let openapi = std::sync::Arc::new(openapi);
    router
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
        // Unknown API paths answer like every API error, with a `not_found` body, rather
        // than falling through to the web client's plain-text 404.
        .route("/api/{*rest}", any(|| async { ApiError::not_found() }))
}
