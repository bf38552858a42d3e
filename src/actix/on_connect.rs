//! `HttpServer::on_connect` wiring for applications that keep actix-web's
//! own server and TLS acceptor.

use std::any::Any;
use std::sync::Arc;

use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::dev::Extensions;
use tokio::net::TcpStream;

use super::EdgeConnection;
use crate::config::{Edge, PostHandshakeCheck};

/// Why [`on_connect`] cannot serve an [`Edge`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OnConnectError {
    /// The configuration has a check that runs after the handshake, which an
    /// `on_connect` callback cannot run; serve with
    /// [`server`](super::server) instead.
    #[error(
        "{check} runs after the TLS handshake, which HttpServer::on_connect cannot do: \
         serve with edge_mtls::actix::server"
    )]
    NeedsPipeline {
        /// The first such check.
        check: PostHandshakeCheck,
    },
    /// The configuration has per-SNI sites (their own trust store, mode,
    /// policy or headers), which need the pipeline's choice of a site from
    /// the ClientHello; `HttpServer` would serve every name with the default
    /// site.
    #[error(
        "the SNI site \"{pattern}\" needs the pipeline's per-SNI site choice: \
         serve with edge_mtls::actix::server"
    )]
    SniSite {
        /// The first such SNI pattern.
        pattern: String,
    },
}

/// The TLS configuration for `HttpServer::listen_rustls_0_23` /
/// `bind_rustls_0_23`: the [`Edge`]'s default site, with its client
/// certificate verifier (actix-web adds `http/1.1` to its ALPN list).
pub fn rustls_config(edge: &Edge) -> rustls::ServerConfig {
    rustls::ServerConfig::clone(&edge.server_config())
}

/// A callback for `HttpServer::on_connect` on listeners bound with
/// [`rustls_config`]:
///
/// ```no_run
/// # use actix_web::{App, HttpServer};
/// # use edge_mtls::actix::MtlsHeaders;
/// # fn run(edge: edge_mtls::Edge) -> Result<(), Box<dyn std::error::Error>> {
/// let server = HttpServer::new(|| App::new().wrap(MtlsHeaders))
///     .on_connect(edge_mtls::actix::on_connect(&edge)?)
///     .bind_rustls_0_23("127.0.0.1:8443", edge_mtls::actix::rustls_config(&edge))?
///     .run();
/// # Ok(())
/// # }
/// ```
///
/// What this path does: actix-web runs the TLS handshake, in which the
/// verifier does stage 1 (chain validation in the configured mode, deny
/// lists, CRLs; a failure aborts the handshake with its TLS alert). The
/// callback then builds the connection's [`ConnectionInfo`](crate::ConnectionInfo)
/// and headers once ([`EdgeConnection`], for the extractors and the
/// [`MtlsHeaders`](super::MtlsHeaders) middleware), verifies a resumed
/// session's restored chain again and resets the connection when that fails.
///
/// What it does not do: stage 2 and the connection log. A configuration
/// with a check that only stage 2 runs (a connection policy, OCSP, a custom
/// revocation source; see [`Edge::post_handshake_checks`]) is refused with
/// [`OnConnectError::NeedsPipeline`] rather than served with the check
/// skipped, and so is one with per-SNI sites ([`OnConnectError::SniSite`]),
/// which `HttpServer` would all serve with the default site. No
/// connection-log record is written (handshake failures happen inside
/// actix-web's acceptor, out of sight), and
/// `ConnectionInfo::revocation_status` and `custom_data` are `None`.
/// [`server`](super::server) runs the whole pipeline.
///
/// Connections that are not rustls 0.23 streams (a plain `bind` listener)
/// get no [`EdgeConnection`]: extractors answer 500 and the middleware only
/// removes client-sent certificate headers.
pub fn on_connect(
    edge: &Edge,
) -> Result<impl Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static, OnConnectError> {
    if let Some(&check) = edge.post_handshake_checks().first() {
        return Err(OnConnectError::NeedsPipeline { check });
    }
    if let Some(pattern) = edge.config().sni.keys().next() {
        return Err(OnConnectError::SniSite {
            pattern: pattern.clone(),
        });
    }
    let edge = edge.clone();
    Ok(move |io: &dyn Any, data: &mut Extensions| {
        let Some(tls) = io.downcast_ref::<TlsStream<TcpStream>>() else {
            return;
        };
        let (tcp, conn) = tls.get_ref();
        let described = tcp
            .peer_addr()
            .ok()
            .and_then(|peer| edge.acceptor().describe_handshake(conn, peer).ok());
        match described {
            Some(info) => {
                data.insert(EdgeConnection::new(Arc::new(info)));
            }
            None => reset(tcp),
        }
    })
}

/// Refuses a connection the callback cannot own: with a zero linger, the
/// close actix-web makes once it reads the end of the stream is a reset, as
/// the pipeline's refusals are.
fn reset(tcp: &TcpStream) {
    let _ = tcp.set_zero_linger();
    // Shutting down a duplicate of the descriptor shuts the socket down for
    // every descriptor of it; the duplicate itself is closed on drop.
    #[cfg(unix)]
    let duplicate = {
        use std::os::fd::AsFd;
        tcp.as_fd()
            .try_clone_to_owned()
            .map(std::net::TcpStream::from)
    };
    #[cfg(windows)]
    let duplicate = {
        use std::os::windows::io::AsSocket;
        tcp.as_socket()
            .try_clone_to_owned()
            .map(std::net::TcpStream::from)
    };
    #[cfg(any(unix, windows))]
    if let Ok(duplicate) = duplicate {
        let _ = duplicate.shutdown(std::net::Shutdown::Both);
    }
}
