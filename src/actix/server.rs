//! actix-web over the full pipeline: actix-server accepts, the edge acceptor
//! runs the handshake, stage 2 and the log, actix-http serves HTTP/1.1.

use std::fmt;
use std::io;
use std::net::TcpListener;
use std::time::Duration;

use actix_http::{HttpServiceBuilder, Request, Response};
use actix_server::{Server, ServerBuilder};
use actix_service::ServiceFactoryExt as _;
use actix_service::{fn_service, map_config, IntoServiceFactory, Service, ServiceFactory};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Extensions};
use tokio::net::TcpStream;

use super::EdgeConnection;
use crate::acceptor::MtlsStream;
use crate::config::Edge;

/// Serves the apps `factory` builds on `listener`: every accepted connection
/// runs through `edge`'s pipeline in its own task, and the allowed ones are
/// served over HTTP/1.1 (keep the configuration's `alpn` at its default,
/// `http/1.1`). `factory` is called once per worker thread, as
/// `HttpServer::new`'s is. Apps see the connection as `HttpServer` shows a
/// TLS listener's (`https` scheme, the listener's address as fallback host).
///
/// The returned [`Server`] runs once polled inside an actix system
/// (`actix_rt::System::new().block_on(server)` or `#[actix_web::main]`);
/// it stops on Ctrl-C / SIGTERM, or through [`Server::handle`]. Use
/// [`listen`] to configure workers and signals or to serve several listeners.
pub fn server<F, I, S, B>(edge: Edge, listener: TcpListener, factory: F) -> io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    Ok(listen(Server::build(), edge, listener, factory)?.run())
}

/// Adds `listener` to `builder`, served as [`server`] serves it.
pub fn listen<F, I, S, B>(
    builder: ServerBuilder,
    edge: Edge,
    listener: TcpListener,
    factory: F,
) -> io::Result<ServerBuilder>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let addr = listener.local_addr()?;
    builder.listen(format!("edge-mtls-{addr}"), listener, move || {
        let host = addr.to_string();
        let app = factory()
            .into_factory()
            .map_err(|err| err.into().error_response());
        // What `HttpServer` gives apps behind TLS: `https` as the scheme of
        // `ConnectionInfo` and `url_for`, the listener as the fallback host.
        // actix-web builds this value only through this constructor (the one
        // actix-test uses too).
        let app = map_config(app, move |()| {
            AppConfig::__priv_test_new(true, host.clone(), addr)
        });
        // `HttpServer`'s defaults.
        let http = HttpServiceBuilder::<MtlsStream<TcpStream>, _>::default()
            .client_request_timeout(Duration::from_secs(5))
            .client_disconnect_timeout(Duration::from_secs(1))
            .secure()
            .local_addr(addr)
            .on_connect_ext(|io: &MtlsStream<TcpStream>, data: &mut Extensions| {
                data.insert(EdgeConnection::new(io.info.clone()));
            })
            .h1(app)
            // Dispatch errors are the client's (a malformed request, a
            // timeout) and have been answered already.
            .map_err(drop);
        let edge = edge.clone();
        fn_service(move |tcp: TcpStream| {
            let edge = edge.clone();
            async move {
                let peer = tcp.peer_addr().map_err(drop)?;
                // Failures have been logged (and refused connections reset)
                // by the pipeline.
                let stream = edge.acceptor().accept_tcp(tcp, peer).await.map_err(drop)?;
                Ok((stream, Some(peer)))
            }
        })
        .and_then(http)
    })
}
