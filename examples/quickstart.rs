//! Quickstart: an mTLS server on https://127.0.0.1:8443 in `Required` mode.
//!
//! ```text
//! cargo run --example quickstart                       # demo PKI under ./demo-pki/
//! cargo run --example quickstart -- --ca Root_CA.pem    # trust your own CA bundle
//! ```
//!
//! On first start it creates `./demo-pki/` (root CA, intermediate CA, a server
//! certificate for localhost, a valid and an expired client certificate) and
//! reuses it afterwards. Every request is answered with what the server learnt
//! about the client certificate, as JSON; every connection attempt prints one
//! JSON line with its status and reason code.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_mtls::{
    ChainValidator, ClientCertInfo, MtlsClientVerifier, ReasonCode, TrustStore, TrustStoreHandle,
    ValidationMode,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const ADDR: &str = "127.0.0.1:8443";

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut ca_override = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ca" => ca_override = args.next().map(PathBuf::from),
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: quickstart [--ca CA_BUNDLE.pem]"
                )
                .into())
            }
        }
    }
    let pki = Path::new("demo-pki");
    if !pki.join("server.pem").exists() {
        create_demo_pki(pki)?;
        println!("created demo PKI under {}", pki.display());
    }
    let ca_path = ca_override.unwrap_or_else(|| pki.join("root_ca.pem"));

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let store = TrustStore::builder().add_file(&ca_path).build()?;
    println!(
        "trust store {}: {} CA certificate(s)",
        ca_path.display(),
        store.len()
    );
    let validator = Arc::new(
        ChainValidator::builder(TrustStoreHandle::new(store), provider.clone())
            .max_chain_depth(4)
            .build()?,
    );
    let verifier = MtlsClientVerifier::builder(validator.clone())
        .mode(ValidationMode::Required)
        .build()?;
    let server_chain = CertificateDer::pem_file_iter(pki.join("server.pem"))?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let server_key = PrivateKeyDer::from_pem_file(pki.join("server.key"))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(server_chain, server_key)?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(ADDR).await?;

    println!("listening on https://{ADDR} (Required mode)\n\ntry:");
    let d = pki.display();
    println!("  curl --cacert {d}/root_ca.pem --key {d}/client.key --cert {d}/client.pem https://localhost:8443/ --resolve localhost:8443:127.0.0.1");
    println!("  curl --cacert {d}/root_ca.pem --key {d}/expired_client.key --cert {d}/expired_client.pem https://localhost:8443/ --resolve localhost:8443:127.0.0.1");
    println!("  curl --cacert {d}/root_ca.pem https://localhost:8443/ --resolve localhost:8443:127.0.0.1   # no certificate");
    println!("(under TLS 1.3 a rejected client sees the alert on its first read: curl prints an SSL error or 'Connection reset by peer')\n");

    loop {
        let (tcp, peer) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let validator = validator.clone();
        tokio::spawn(async move {
            serve(acceptor, validator, tcp, peer).await;
        });
    }
}

async fn serve(
    acceptor: TlsAcceptor,
    validator: Arc<ChainValidator>,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    let started = Instant::now();
    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
    let mut tls = match handshake {
        Err(_) => return log(peer, Err(ReasonCode::TcpTimeout.as_str().into()), started),
        Ok(Err(e)) => return log(peer, Err(failure_reason(&e)), started),
        Ok(Ok(tls)) => tls,
    };
    let (_, conn) = tls.get_ref();
    let chain: Vec<CertificateDer<'static>> = conn
        .peer_certificates()
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let info = chain
        .first()
        .and_then(|leaf| ClientCertInfo::from_der(leaf));
    let expired = chain.first().is_some_and(|leaf| {
        let refs: Vec<&[u8]> = chain.iter().skip(1).map(|c| c.as_ref()).collect();
        validator
            .validate(leaf, &refs, UnixTime::now())
            .map(|p| p.is_expired_at(UnixTime::now()))
            .unwrap_or(false)
    });
    log(peer, Ok(info.as_ref()), started);

    let mut buf = vec![0u8; 8192];
    let mut read = 0;
    while read < buf.len() {
        match tls.read(&mut buf[read..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => read += n,
        }
        if buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let body = match &info {
        Some(i) => format!(
            "{{\"present\":1,\"subject\":{:?},\"issuer\":{:?},\"serialNumber\":{:?},\"sha256\":{:?},\"notBefore\":{},\"notAfter\":{},\"expired\":{expired}}}\n",
            i.subject,
            i.issuer,
            hex(&i.serial, ":"),
            hex(&i.sha256, ""),
            i.not_before,
            i.not_after
        ),
        None => "{\"present\":0}\n".to_string(),
    };
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tls.write_all(response.as_bytes()).await;
    let _ = tls.shutdown().await;
}

fn failure_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let code = if lower.contains("expired") || lower.contains("notvalidyet") {
        ReasonCode::ClientCertExpired
    } else if lower.contains("unknownissuer") || lower.contains("unknown issuer") {
        ReasonCode::ClientCertUntrusted
    } else if lower.contains("no certificates") {
        ReasonCode::ClientCertMissing
    } else {
        ReasonCode::UnmappedConnectionError
    };
    format!("{code}: {text}")
}

fn log(
    peer: SocketAddr,
    outcome: std::result::Result<Option<&ClientCertInfo>, String>,
    started: Instant,
) {
    let ms = started.elapsed().as_millis();
    match outcome {
        Ok(info) => println!(
            "{{\"connectionStatus\":\"Success\",\"clientIp\":\"{}\",\"clientPort\":{},\"tlsHandshakeDuration\":{ms},\"clientLeafCertSubject\":{:?}}}",
            peer.ip(),
            peer.port(),
            info.map(|i| i.subject.as_str()).unwrap_or("-")
        ),
        Err(reason) => println!(
            "{{\"connectionStatus\":\"Failed\",\"clientIp\":\"{}\",\"clientPort\":{},\"tlsHandshakeDuration\":{ms},\"detail\":{reason:?}}}",
            peer.ip(),
            peer.port()
        ),
    }
}

fn hex(bytes: &[u8], sep: &str) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(sep)
}

fn create_demo_pki(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text);

    let ca_params = |cn: &str| -> Result<CertificateParams> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name.push(DnType::CommonName, cn);
        p.distinguished_name
            .push(DnType::OrganizationName, "edge-mtls demo");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.use_authority_key_identifier_extension = true;
        Ok(p)
    };
    let root =
        CertifiedIssuer::self_signed(ca_params("edge-mtls demo root CA")?, KeyPair::generate()?)?;
    write("root_ca.pem", &root.pem())?;
    let intermediate = CertifiedIssuer::signed_by(
        ca_params("edge-mtls demo intermediate CA")?,
        KeyPair::generate()?,
        &root,
    )?;
    write("intermediate_ca.pem", &intermediate.pem())?;

    let mut server =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    let server_key = KeyPair::generate()?;
    let server_cert = server.signed_by(&server_key, &intermediate)?;
    write(
        "server.pem",
        &format!("{}{}", server_cert.pem(), intermediate.pem()),
    )?;
    write("server.key", &server_key.serialize_pem())?;

    let client =
        |name: &str, cn: &str, expired: bool, issuer: &Issuer<'_, KeyPair>| -> Result<()> {
            let mut p = CertificateParams::new(Vec::<String>::new())?;
            p.distinguished_name.push(DnType::CommonName, cn);
            p.distinguished_name
                .push(DnType::OrganizationName, "edge-mtls demo");
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.use_authority_key_identifier_extension = true;
            if expired {
                p.not_before = rcgen::date_time_ymd(2020, 1, 1);
                p.not_after = rcgen::date_time_ymd(2021, 1, 1);
            }
            let key = KeyPair::generate()?;
            let cert = p.signed_by(&key, issuer)?;
            // The client sends its certificate followed by the intermediate.
            write(
                &format!("{name}.pem"),
                &format!("{}{}", cert.pem(), intermediate.pem()),
            )?;
            write(&format!("{name}.key"), &key.serialize_pem())?;
            Ok(())
        };
    client("client", "valid-client", false, &intermediate)?;
    client("expired_client", "expired-client", true, &intermediate)?;
    Ok(())
}
