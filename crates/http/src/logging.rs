use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use tracing::Span;
use tracing_actix_web::{RootSpanBuilder, TracingLogger};

/// One span per request, with a request id, and one line when it ends. Only the path is
/// recorded, never the query string: browsers pass the access token there on the WebSocket.
pub(crate) struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        tracing::info_span!(
            "request",
            request_id = %uuid::Uuid::now_v7(),
            method = %request.method(),
            path = %request.path(),
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        span.in_scope(|| match outcome {
            Ok(response) => {
                let status = response.status().as_u16();
                if response.status().is_server_error() {
                    tracing::error!(status, "request finished");
                } else {
                    tracing::info!(status, "request finished");
                }
            }
            Err(error) => tracing::error!(%error, "request failed"),
        });
    }
}

pub(crate) fn request_logger() -> TracingLogger<RequestSpan> {
    TracingLogger::<RequestSpan>::new()
}
