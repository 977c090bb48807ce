//! The HTTP server: actix-web's application on actix-http's HTTP/1 service, with WebSocket
//! upgrades handed over to the socket as a bare TCP stream.
//!
//! actix-web's `HttpServer` would keep every WebSocket inside its HTTP/1 dispatcher, with an
//! 8 KiB read buffer and an 8 KiB write buffer for the connection's whole life. Built here from
//! the same parts, the HTTP/1 service gives any request that asks for an upgrade to [`upgrade`]
//! together with the connection. That request still goes through the whole application
//! (routing, logging, authentication, the handler's checks); only when its answer is a `101`
//! carrying a [`SocketUpgrade`] does the connection leave HTTP for the socket, and the
//! dispatcher, buffers and all, is dropped.

use std::net::TcpListener;
use std::rc::Rc;
use std::time::Duration;

use actix_codec::Framed;
use actix_http::body::{BodySize, MessageBody};
use actix_http::h1::{self, Message};
use actix_http::{ConnectionType, HttpService, Request, StatusCode};
use actix_server::Server;
use actix_service::{
    IntoServiceFactory, Service, ServiceFactory, fn_factory, fn_service, map_config,
};
use actix_web::dev::AppConfig;
use confab_realtime::SocketUpgrade;
use futures_util::SinkExt;
use tokio::net::TcpStream;

use crate::{HttpState, app};

/// How long a client may take to send a request's head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a closing connection may take to be shut down cleanly.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a stopping server waits for requests under way.
const SHUTDOWN_TIMEOUT_SECS: u64 = 30;

/// Serves the application over `state` on `listener` until the returned server is stopped.
/// Signals are left to the caller, which must close the sockets before it stops the server.
///
/// Must be called within a Tokio runtime: upgraded WebSockets run there, beside the database
/// and Redis tasks they call, while HTTP requests run on the server's own workers.
pub fn serve(listener: TcpListener, state: HttpState) -> std::io::Result<Server> {
    let sockets = tokio::runtime::Handle::current();
    Server::build()
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        .listen("confab", listener, move || {
            let upgrades = state.clone();
            let sockets = sockets.clone();
            HttpService::build()
                .client_request_timeout(REQUEST_TIMEOUT)
                .client_disconnect_timeout(DISCONNECT_TIMEOUT)
                // Chat frames are small and each one matters now: without TCP_NODELAY, Nagle
                // holds a frame back until the previous one is acknowledged, and with delayed
                // ACKs that adds up to 40 ms to a message's delivery.
                .tcp_nodelay(true)
                .upgrade(fn_factory(move || {
                    let app = app(upgrades.clone()).into_factory();
                    let sockets = sockets.clone();
                    async move {
                        let app = Rc::new(app.new_service(AppConfig::default()).await?);
                        Ok::<_, ()>(fn_service(
                            move |(req, framed): (Request, Framed<TcpStream, h1::Codec>)| {
                                upgrade(app.clone(), sockets.clone(), req, framed)
                            },
                        ))
                    }
                }))
                // The application's configuration only names the host for URL generation,
                // which Confab does not use: the host a client asked for is in its request.
                .finish(map_config(app(state.clone()), |()| AppConfig::default()))
                .tcp()
        })
        .map(actix_server::ServerBuilder::run)
}

/// A request that asked for an upgrade: answered by the application, like any other. A `101`
/// with a socket in it hands the connection to the socket; any other answer is written, and the
/// connection is closed, since it cannot go back to HTTP.
async fn upgrade<S, B>(
    app: Rc<S>,
    sockets: tokio::runtime::Handle,
    req: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
) -> Result<(), actix_web::Error>
where
    S: Service<Request, Response = actix_web::dev::ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let response = match app.call(req).await {
        Ok(response) => response.into_parts().1.map_into_boxed_body(),
        Err(error) => error.as_response_error().error_response(),
    };
    let mut response: actix_http::Response<_> = response.into();
    let socket = response.extensions_mut().remove::<SocketUpgrade>();
    let (mut head, body) = response.into_parts();
    if let (Some(socket), StatusCode::SWITCHING_PROTOCOLS) = (socket, head.status()) {
        framed.send(Message::Item((head, BodySize::None))).await?;
        let parts = framed.into_parts();
        socket.serve(&sockets, parts.io, parts.read_buf.to_vec())?;
        return Ok(());
    }
    head.head_mut().set_connection_type(ConnectionType::Close);
    let size = body.size();
    let bytes = actix_http::body::to_bytes(body)
        .await
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    // Head and body in one write: a client that reads the answer to a refused handshake reads
    // what arrived with its head.
    framed.feed(Message::Item((head, size))).await?;
    if !bytes.is_empty() {
        framed.feed(Message::Chunk(Some(bytes))).await?;
    }
    framed.feed(Message::Chunk(None)).await?;
    framed.flush().await?;
    Ok(())
}
