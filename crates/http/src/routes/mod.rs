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
        description = "Real-time chat server: REST for accounts, conversations and history; one WebSocket per device (`GET /api/v1/ws`) for everything live. Errors are always `{\"error\": {code, message, details}}`.",
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

/// Any route may fail inside; every operation documents that answer too. Applied once the
/// paths are collected from the registered handlers (see [`collect`]).
struct InternalErrors;

impl Modify for InternalErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let internal = ResponseBuilder::new()
            .description("Internal error; nothing internal is revealed")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                operation
                    .responses
                    .responses
                    .entry("500".to_owned())
                    .or_insert_with(|| internal.clone().into());
            }
        }
    }
}

/// Registers every handler on `app` and returns it with the finished OpenAPI document: the
/// one path by which both the server and `confab openapi` get their routes.
pub(crate) fn collect<T>(app: actix_web::App<T>) -> (actix_web::App<T>, utoipa::openapi::OpenApi)
where
    T: actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Error = actix_web::Error,
            InitError = (),
        >,
{
    use utoipa_actix_web::AppExt;
    let (app, mut api) = app
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(mount)
        .split_for_parts();
    InternalErrors.modify(&mut api);
    (app, api)
}

fn mount(cfg: &mut ServiceConfig<'_>) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(
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
                .service(messages::edit)
                .service(messages::remove)
                .service(socket::connect),
        );
}
