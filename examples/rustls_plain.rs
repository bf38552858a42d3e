//! A plain tokio + rustls server behind edge-mtls, configured from TOML,
//! without any HTTP framework: each allowed connection gets a minimal
//! HTTP/1.1 answer listing the certificate headers the edge computed for it.
//!
//! ```text
//! cargo run --example rustls_plain                       # demo PKI, 127.0.0.1:8445
//! cargo run --example rustls_plain -- edge.toml           # your own configuration
//! curl --cacert demo-pki/root_ca.pem --key demo-pki/my_client.key \
//!      --cert demo-pki/my_client.pem https://127.0.0.1:8445/
//! ```

#[path = "common/demo_pki.rs"]
mod demo_pki;

use std::path::Path;

use edge_mtls::MtlsConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The configuration used without an argument: the demo PKI, Required mode,
/// the revoked demo certificate deny-listed, CloudFront and RFC 9440 headers,
/// JSON-line connection logs on stdout.
const DEMO: &str = r#"
distribution_id = "rustls-plain"
mode = "required"
handshake_timeout_ms = 5000

[server]
cert_chain = "demo-pki/server.pem"
key = "demo-pki/server.key"

[trust_store]
files = ["demo-pki/trust_store_bundle.pem"]

[revocation.deny_list]
kvs_json = ["demo-pki/revoked-serials.json"]

[headers]
profiles = ["cloudfront", "rfc9440"]
connection_id_header = "X-Edge-Connection-Id"

[log]
format = "json_lines"
target = "stdout"
"#;

#[tokio::main]
async fn main() -> Result<()> {
    let config = match std::env::args().nth(1) {
        Some(path) => MtlsConfig::from_file(path)?,
        None => {
            demo_pki::ensure(Path::new("demo-pki"))?;
            MtlsConfig::from_toml(DEMO)?
        }
    };
    let edge = config.into_builder().build()?;
    let listener = TcpListener::bind("127.0.0.1:8445").await?;
    eprintln!("listening on https://{}", listener.local_addr()?);

    let mut backoff = edge_mtls::AcceptBackoff::default();
    loop {
        // Out of file descriptors: wait for connections to close, do not spin.
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => {
                backoff.recovered();
                accepted
            }
            Err(e) => {
                tokio::time::sleep(backoff.failed(&e)).await;
                continue;
            }
        };
        let edge = edge.clone();
        // One task per connection: handshakes run concurrently.
        tokio::spawn(async move {
            // Refusals are logged (and the connection closed) by the pipeline.
            let Ok(mut stream) = edge.acceptor().accept_tcp(tcp, peer).await else {
                return;
            };
            // Read the request head (this server answers one request).
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65_536 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let mut body = String::new();
            for (name, value) in stream.info.headers.entries() {
                body.push_str(name);
                body.push_str(": ");
                body.push_str(&String::from_utf8_lossy(value));
                body.push('\n');
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
