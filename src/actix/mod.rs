//! actix-web 4 integration.
//!
//! Two ways to put an actix-web `App` behind edge-mtls:
//!
//! - [`server`] / [`listen`] (the full pipeline): actix-server accepts the
//!   TCP connections and each one runs through the [`Edge`](crate::Edge)'s pipeline
//!   ([`MtlsAcceptor::accept_tcp`](crate::MtlsAcceptor::accept_tcp)) in its
//!   own task, so handshakes run concurrently: the TLS handshake with stage 1
//!   inside the verifier, stage 2 (revocation answers that need I/O, the
//!   connection policy), exactly one connection-log record per attempt, and a
//!   reset for connections refused after the handshake. actix-http then
//!   serves HTTP/1.1 on the connections that were allowed.
//! - [`on_connect`] with actix-web's own `HttpServer` (`listen_rustls_0_23` /
//!   `bind_rustls_0_23` with [`rustls_config`]): actix runs the handshake, so
//!   this path has stage 1 only and writes no connection log; see
//!   [`on_connect`] for exactly what it does and does not do.
//!
//! - [`ForwardedCerts`] behind a proxy that terminates TLS: plain HTTP
//!   with actix-web's own `HttpServer`, the certificate the proxy forwards
//!   verified on every request (the extractors work the same).
//!
//! Either way each connection's [`EdgeConnection`] is stored once in the
//! connection extensions, where the [`ClientCert`] and [`MtlsConnection`]
//! extractors find it, and the [`MtlsHeaders`] middleware gives every request
//! the connection's certificate headers after removing client-sent copies.
//!
//! actix-web 4 uses `http` 0.2 while the rest of this crate uses `http` 1:
//! the headers are rendered by the shared
//! [`HeaderBuilder`](crate::HeaderBuilder) and converted to actix-web's
//! types once per connection.
//!
//! ```no_run
//! use actix_web::{web, App};
//! use edge_mtls::actix::{ClientCert, MtlsHeaders};
//! use edge_mtls::MtlsConfig;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let edge = MtlsConfig::from_file("edge.toml")?.into_builder().build()?;
//! let listener = std::net::TcpListener::bind("127.0.0.1:8443")?;
//! let server = edge_mtls::actix::server(edge, listener, || {
//!     App::new().wrap(MtlsHeaders).route(
//!         "/",
//!         web::get().to(|ClientCert(cert): ClientCert| async move {
//!             format!("hello {}", cert.subject)
//!         }),
//!     )
//! })?;
//! actix_rt::System::new().block_on(server)?;
//! # Ok(())
//! # }
//! ```

mod extract;
mod forwarded;
mod middleware;
mod on_connect;
mod server;

use std::sync::Arc;

use actix_web::http::header::{HeaderName, HeaderValue};

use crate::acceptor::ConnectionInfo;

pub use extract::{ClientCert, ExtractError, MtlsConnection, UnverifiedClientCert};
pub use forwarded::{ForwardedCerts, ForwardedCertsMiddleware};
pub use middleware::{MtlsHeaders, MtlsHeadersMiddleware};
pub use on_connect::{on_connect, rustls_config, OnConnectError};
pub use server::{listen, server};

/// What one connection carries into actix-web, stored in its connection
/// extensions (`HttpRequest::conn_data::<EdgeConnection>()`): the
/// [`ConnectionInfo`] and its headers in actix-web's `http` 0.2 types,
/// converted once when the connection starts. Cloning is two
/// reference-count increments.
#[derive(Clone, Debug)]
pub struct EdgeConnection {
    info: Arc<ConnectionInfo>,
    headers: Arc<[(HeaderName, HeaderValue)]>,
}

impl EdgeConnection {
    /// Converts `info`'s headers to actix-web's types.
    pub fn new(info: Arc<ConnectionInfo>) -> Self {
        let headers = info
            .headers
            .entries()
            // Rendered as valid `http` 1 names and values, which `http` 0.2
            // accepts unchanged; nothing is dropped in practice.
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_bytes(name.as_bytes()).ok()?,
                    HeaderValue::from_bytes(value).ok()?,
                ))
            })
            .collect();
        Self { info, headers }
    }

    /// What the pipeline learnt about the connection.
    pub fn info(&self) -> &Arc<ConnectionInfo> {
        &self.info
    }

    /// The headers every request of the connection receives.
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }
}
