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
mod state;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, web};
use utoipa_swagger_ui::SwaggerUi;

pub use caller::Caller;
pub use error::ApiError;
pub use state::HttpState;

/// The largest JSON body accepted, in bytes.
pub const MAX_JSON_BODY: usize = 64 * 1024;

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
    app.service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", api))
        .default_service(web::to(error::unknown_route))
        .wrap(logging::request_logger())
}
