use actix_web::{HttpResponse, get, web};
use confab_api::Health;

use crate::HttpState;

/// The process is alive.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Alive", body = Health)))]
#[get("/healthz")]
pub(crate) async fn healthz() -> web::Json<Health> {
    web::Json(Health {
        status: "ok".into(),
    })
}

/// The instance can serve traffic: every dependency (the database) answers.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "A dependency is unreachable", body = Health),
    )
)]
#[get("/readyz")]
pub(crate) async fn readyz(state: web::Data<HttpState>) -> HttpResponse {
    for probe in &state.probes {
        if let Err(why) = probe.check().await {
            tracing::warn!(dependency = probe.name(), %why, "not ready");
            return HttpResponse::ServiceUnavailable().json(Health {
                status: "unavailable".into(),
            });
        }
    }
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
    })
}
