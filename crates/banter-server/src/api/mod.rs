//! The REST API under `/api/v1`, grouped by resource. The OpenAPI document is generated
//! from the handlers' annotations and served at `/api/v1/openapi.json`.

pub mod accounts;
pub mod conversations;
pub mod extract;
pub mod friends;
pub mod groups;

use crate::state::AppState;
use axum::routing::get;
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
    }
}

/// The `/api/v1` routes, plus the OpenAPI document describing them.
pub fn router() -> Router<AppState> {
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
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1)
        .split_for_parts();
    let openapi = std::sync::Arc::new(openapi);
    router.route(
        "/api/v1/openapi.json",
        get(move || {
            let openapi = openapi.clone();
            async move { Json(openapi.as_ref().clone()) }
        }),
    )
}
