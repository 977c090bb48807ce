//! One module per resource. `mount` registers every handler through utoipa-actix-web, so the
//! OpenAPI document is collected from the same registrations that serve requests.

mod auth;
mod conversations;
mod health;
mod messages;
mod socket;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Confab",
        description = "Real-time chat server: REST for accounts, conversations and history; one WebSocket per device (`GET /api/v1/ws`, described in asyncapi.json) for everything live.",
        license(name = "MIT OR Apache-2.0")
    ),
    modifiers(&BearerScheme),
    components(schemas(confab_api::ErrorCode)),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "conversations", description = "Direct chats and groups"),
        (name = "messages", description = "History and sending"),
        (name = "realtime", description = "The WebSocket"),
        (name = "operations", description = "Health and readiness"),
    )
)]
pub(crate) struct ApiDoc;

/// Declares the `bearer` security scheme the protected routes refer to.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

pub(crate) fn mount(cfg: &mut ServiceConfig<'_>) {
    cfg.service(health::healthz).service(health::readyz).service(
        scope::scope("/api/v1")
            .service(auth::signup)
            .service(auth::login)
            .service(auth::me)
            .service(conversations::list)
            .service(conversations::open_direct)
            .service(conversations::create_group)
            .service(conversations::get)
            .service(conversations::mark_read)
            .service(messages::history)
            .service(messages::send)
            .service(socket::connect),
    );
}
