//! The REST API under `/api/v1`, grouped by resource. The OpenAPI document is generated
//! from the handlers' annotations and served at `/api/v1/openapi.json`.

pub mod accounts;
pub mod admin;
pub mod conversations;
pub mod extract;
pub mod friends;
pub mod groups;

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
        .routes(routes!(groups::leave));
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
