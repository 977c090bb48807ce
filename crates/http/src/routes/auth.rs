use actix_web::{HttpResponse, get, post, web};
use confab_api::{ErrorBody, LoginRequest, Session, SignupRequest, User};
use confab_app::SignupInput;

use crate::{ApiError, Caller, HttpState};

/// Create an account and sign in.
#[utoipa::path(
    tag = "auth",
    request_body = SignupRequest,
    responses(
        (status = 201, description = "Account created; signed in", body = Session),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 409, description = "Username or email taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named in `details`", body = ErrorBody),
    )
)]
#[post("/auth/signup")]
pub(crate) async fn signup(
    state: web::Data<HttpState>,
    body: web::Json<SignupRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let input = SignupInput {
        username: body.username,
        email: body.email,
        password: body.password,
        display_name: body.display_name,
    };
    let session = state.services.auth.signup(input).await?;
    Ok(HttpResponse::Created().json(Session::from(&session)))
}

/// Sign in with a username or email and a password.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = Session),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Wrong login or password", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
    )
)]
#[post("/auth/login")]
pub(crate) async fn login(
    state: web::Data<HttpState>,
    body: web::Json<LoginRequest>,
) -> Result<web::Json<Session>, ApiError> {
    let session = state
        .services
        .auth
        .login(&body.login, &body.password)
        .await?;
    Ok(web::Json(Session::from(&session)))
}

/// The caller's own account, email included.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = User),
        (status = 401, description = "Missing, malformed, expired or forged token", body = ErrorBody),
    )
)]
#[get("/auth/me")]
pub(crate) async fn me(
    state: web::Data<HttpState>,
    caller: Caller,
) -> Result<web::Json<User>, ApiError> {
    let user = state.services.auth.me(caller.0).await?;
    Ok(web::Json(User::own(&user)))
}
