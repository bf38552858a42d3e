//! An application behind an mTLS listener: a tokio-rustls server speaking
//! HTTP/1.1 with hyper that attaches each connection's certificate headers
//! to every request and answers with the request headers the application
//! received, as JSON `[[name, value], ...]` in arrival order.
//!
//! The headers are rendered once per connection from what the handshake
//! established, exactly as an integration is meant to use `HeaderBuilder`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use edge_mtls::CertFields;
use edge_mtls::ClientCertInfo;
use edge_mtls::ConnectionId;
use edge_mtls::{ConnectionFacts, ConnectionHeaders, HeaderBuilder};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;
use rustls::{ProtocolVersion, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::{drain, provider, IO_TIMEOUT};

/// What the server established for one connection.
#[derive(Debug)]
pub struct EchoedConnection {
    /// The chain the client presented, leaf first.
    pub peer_certificates: Option<Vec<CertificateDer<'static>>>,
    /// The certificate's text forms, when one was presented.
    pub cert: Option<CertFields>,
    /// The connection id given to the header builder.
    pub connection_id: String,
    /// `TLSv1.3` / `TLSv1.2`.
    pub tls_version: Option<String>,
    /// The negotiated cipher suite.
    pub tls_cipher: Option<String>,
    /// What the builder rendered (and every request got).
    pub headers: ConnectionHeaders,
}

/// A server for a fixed number of connections, one after the other.
pub struct HeaderEchoServer {
    pub addr: SocketAddr,
    task: JoinHandle<Vec<Result<EchoedConnection, String>>>,
}

impl HeaderEchoServer {
    pub async fn start(
        config: Arc<ServerConfig>,
        builder: Arc<HeaderBuilder>,
        connections: usize,
        verified: bool,
    ) -> HeaderEchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let acceptor = TlsAcceptor::from(config);
        let task = tokio::spawn(async move {
            let mut seen = Vec::with_capacity(connections);
            for _ in 0..connections {
                match tokio::time::timeout(IO_TIMEOUT, listener.accept()).await {
                    Ok(Ok((tcp, _))) => {
                        seen.push(echo_one(&acceptor, tcp, &builder, verified).await)
                    }
                    Ok(Err(e)) => seen.push(Err(format!("accept: {e}"))),
                    Err(_) => {
                        seen.push(Err("no connection arrived".into()));
                        break;
                    }
                }
            }
            seen
        });
        HeaderEchoServer { addr, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Waits for the server to stop; one entry per connection.
    pub async fn finish(self) -> Vec<Result<EchoedConnection, String>> {
        tokio::time::timeout(IO_TIMEOUT * 2, self.task)
            .await
            .expect("server finished in time")
            .expect("server task")
    }
}

/// The name rustls's protocol version has in ALB's `X-Amzn-Tls-Version`.
pub fn tls_version_name(version: ProtocolVersion) -> String {
    match version {
        ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}"),
    }
}

async fn echo_one(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    builder: &HeaderBuilder,
    verified: bool,
) -> Result<EchoedConnection, String> {
    let accepted = tokio::time::timeout(IO_TIMEOUT, acceptor.accept(tcp).into_fallible()).await;
    let tls = match accepted {
        Err(_) => return Err("handshake timed out".into()),
        Ok(Err((error, mut tcp))) => {
            drain(&mut tcp).await;
            return Err(format!("handshake: {error}"));
        }
        Ok(Ok(tls)) => tls,
    };
    let (_, conn) = tls.get_ref();
    let peer_certificates: Option<Vec<CertificateDer<'static>>> = conn
        .peer_certificates()
        .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect());
    let tls_version = conn.protocol_version().map(tls_version_name);
    let tls_cipher = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()));
    let cert = match peer_certificates.as_deref() {
        Some([leaf, rest @ ..]) => {
            let info = ClientCertInfo::from_der(leaf)
                .ok_or("the presented leaf does not parse as ClientCertInfo")?;
            Some(CertFields::new(&info, rest))
        }
        _ => None,
    };
    let connection_id = ConnectionId::random(provider().secure_random)
        .map_err(|e| format!("connection id: {e:?}"))?
        .to_string();
    let headers = builder.render(&ConnectionFacts {
        cert: cert.as_ref(),
        verified,
        connection_id: Some(&connection_id),
        tls_version: tls_version.as_deref(),
        tls_cipher: tls_cipher.as_deref(),
    });
    let shared = Arc::new(headers.clone());
    let service = service_fn(move |request: Request<Incoming>| {
        let headers = Arc::clone(&shared);
        async move {
            let (mut parts, _body) = request.into_parts();
            headers.apply(&mut parts.headers);
            let seen: Vec<(String, String)> = parts
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = serde_json::to_vec(&seen).expect("headers as JSON");
            let response = Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .expect("response");
            Ok::<_, Infallible>(response)
        }
    });
    tokio::time::timeout(
        IO_TIMEOUT,
        http1::Builder::new().serve_connection(TokioIo::new(tls), service),
    )
    .await
    .map_err(|_| "serving HTTP timed out".to_string())?
    .map_err(|e| format!("serving HTTP: {e}"))?;
    Ok(EchoedConnection {
        peer_certificates,
        cert,
        connection_id,
        tls_version,
        tls_cipher,
        headers,
    })
}
