//! # confab-http
//!
//! Confab's REST API on actix-web: the routes of `/api/v1`, the bearer-token extractor, the
//! single mapping of use-case errors to HTTP answers, and the OpenAPI document generated from
//! the very handlers that serve requests (utoipa-actix-web), served at `/openapi.json` with an
//! offline API explorer at `/docs`.

mod caller;
mod error;
mod logging;
mod routes;
mod server;
mod state;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, web};
use utoipa_swagger_ui::SwaggerUi;

pub use caller::Caller;
pub use error::ApiError;
pub use server::serve;
pub use state::HttpState;

/// The largest JSON body accepted, in bytes.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// `/docs` is the documented address; the explorer's assets live under `/docs/`.
async fn docs_redirect() -> actix_web::HttpResponse {
    actix_web::HttpResponse::PermanentRedirect()
        .insert_header((actix_web::http::header::LOCATION, "/docs/"))
        .finish()
}

/// The OpenAPI document of every route, generated from the handlers themselves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::collect(App::new()).1
}

/// The whole HTTP application over `state`: API routes, health, OpenAPI and docs, with request
/// logging and JSON error answers for every failure, unknown routes included.
pub fn app(
    state: HttpState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (app, api) = routes::collect(
        App::new()
            .app_data(web::Data::new(state))
            .app_data(error::json_config())
            .app_data(error::path_config())
            .app_data(error::query_config()),
    );
    // The explorer is served from this binary (vendored), and its online validator is off: an
    // API page that works offline must not send the document's address to a third party.
    let explorer = SwaggerUi::new("/docs/{_:.*}")
        .url("/openapi.json", api)
        .config(utoipa_swagger_ui::Config::default().validator_url("none"));
    app.service(web::resource("/docs").route(web::get().to(docs_redirect)))
        .service(explorer)
        .default_service(web::to(error::unknown_route))
        .wrap(logging::request_logger())
}
