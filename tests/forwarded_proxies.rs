//! Real proxies in front: curl → nginx or HAProxy (TLS, client certificate
//! requested but not verified) → the app over plain HTTP, which verifies the
//! forwarded certificate. nginx forwards `$ssl_client_escaped_cert` to the
//! `behind_proxy` example (a real process); HAProxy forwards
//! `ssl_c_der,base64` to an in-process `serve_forwarded`. The proxies
//! connect to the app from 127.0.0.2, the only trusted proxy address; curl
//! talking to the app straight from 127.0.0.1 is a stranger.
//!
//! nginx and HAProxy are installed by `.ci/run`; without them these tests
//! fail and say so.

mod common;

#[path = "common/quickstart.rs"]
mod quickstart;

#[path = "../examples/common/identity.rs"]
mod identity;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::e2e::demo_pki::pki::url_encode as urlencode;
use common::e2e::{Fixture, MemorySink};
use edge_mtls::{
    ConnectionStatus, DenyListSettings, Edge, ForwardedSettings, HeaderProfile, MtlsConfig,
    ReasonCode, ValidationMode,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn wait_listening(port: u16, what: &str, log: &Path) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "{what} is not listening on 127.0.0.1:{port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn need(binary: &str) {
    let found = std::process::Command::new(binary)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "`{binary}` is not installed (.ci/run installs it with apt-get)"
    );
}

/// What curl saw: the HTTP status (0 when there was none) and the body.
struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

async fn curl(args: &[&str], url: &str) -> Reply {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    Reply {
        status: code.trim().parse().unwrap_or(0),
        body: body.to_string(),
    }
}

/// curl through the proxy on `port` as `cert`/`key`.
async fn via_proxy(fx: &Fixture, port: u16, cert: &Path, key: &Path) -> Reply {
    let root = fx.pki.root();
    let args = [
        "--cacert",
        root.to_str().unwrap(),
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    curl(&args, &format!("https://127.0.0.1:{port}/")).await
}

/// The client certificates of the matrix: the demo's valid, revoked and
/// expired clients, and a client of a CA the trust store does not hold.
struct Clients {
    dir: tempfile::TempDir,
}

impl Clients {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let foreign = common::Pki::new(1);
        let stranger = foreign.client("stranger", &common::LeafOptions::default());
        std::fs::write(dir.path().join("stranger.pem"), stranger.chain_pem()).expect("write");
        std::fs::write(dir.path().join("stranger.key"), stranger.key_pem()).expect("write");
        Self { dir }
    }

    fn files(&self, fx: &Fixture, name: &str) -> (PathBuf, PathBuf) {
        if name == "stranger" {
            (
                self.dir.path().join("stranger.pem"),
                self.dir.path().join("stranger.key"),
            )
        } else {
            (
                fx.pki.path(&format!("{name}.pem")),
                fx.pki.path(&format!("{name}.key")),
            )
        }
    }
}

/// The direct path: the same trust store, deny list and headers, the
/// client's TLS terminated by the edge itself. Returns its answer for
/// `my_client`.
async fn direct_identity(fx: &Fixture) -> Value {
    let sink = Arc::new(MemorySink::default());
    let edge = fx
        .builder(ValidationMode::Required, &sink)
        .header_profiles([HeaderProfile::CloudFront])
        .build()
        .expect("direct edge");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(edge_mtls::axum::serve(listener, edge, identity::router()));
    let (cert, key) = (fx.pki.path("my_client.pem"), fx.pki.path("my_client.key"));
    via_proxy(fx, addr.port(), &cert, &key).await.json()
}

/// The identity fields a forwarded answer must share with the direct one.
fn assert_same_identity(forwarded: &Value, direct: &Value, label: &str) {
    for field in [
        "verified",
        "subject",
        "issuer",
        "serialNumber",
        "sha256",
        "headers",
    ] {
        assert_eq!(forwarded[field], direct[field], "{label}: {field} differs");
    }
    assert_eq!(
        forwarded["headers"]["cloudfront-viewer-cert-present"], "1",
        "{label}"
    );
}

/// A client talking to the app directly, forging the dialect's header.
async fn forge(app: SocketAddr, header: &str, value: &str) -> Reply {
    curl(
        &[
            "--interface",
            "127.0.0.1",
            "-H",
            &format!("{header}: {value}"),
        ],
        &format!("http://{app}/"),
    )
    .await
}

#[tokio::test]
async fn nginx_forwards_ssl_client_escaped_cert_to_the_behind_proxy_example() {
    need("nginx");
    let fx = Fixture::new();
    let clients = Clients::new();
    let direct = direct_identity(&fx).await;

    // The example app, a real process, logging JSON lines on stdout.
    let example = quickstart::build_example("behind_proxy");
    let mut app: Child = Command::new(example)
        .args([
            "--dialect",
            "pem-header:X-SSL-Client-Cert",
            "--trusted-proxy",
            "127.0.0.2/32",
        ])
        .arg("--ca")
        .arg(fx.pki.trust_store())
        .arg("--deny-list")
        .arg(fx.pki.revoked_serials())
        .args(["--addr", "127.0.0.1:0", "--log", "stdout"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the behind_proxy example");
    let mut lines = BufReader::new(app.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the example starts")
        .expect("stdout")
        .expect("a first line");
    let app_addr: SocketAddr = first
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line `{first}`"))
        .parse()
        .expect("address");
    let log: Arc<Mutex<Vec<Value>>> = Arc::default();
    let collected = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(record) = serde_json::from_str::<Value>(&line) {
                collected.lock().unwrap().push(record);
            }
        }
    });

    // nginx: TLS with the client certificate requested, not verified.
    // `optional_no_ca` still answers 400 itself for a certificate that
    // fails a check other than trust (an expired one): `error_page 495`
    // hands those to the app too, which decides and logs why.
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    let port = free_port();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n  \
         fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n  \
         server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {server};\n    ssl_certificate_key {key};\n    \
         ssl_verify_client optional_no_ca;\n    error_page 495 = @app;\n    \
         location / {{ try_files /nonexistent @app; }}\n    location @app {{\n      proxy_pass http://{app_addr};\n      \
         proxy_bind 127.0.0.2;\n      proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;\n      \
         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    }}\n  }}\n}}\n",
        server = fx.pki.path("server.pem").display(),
        key = fx.pki.path("server.key").display(),
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).expect("write nginx.conf");
    let error_log = dir.path().join("error.log");
    let _nginx = Command::new("nginx")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .arg("-e")
        .arg(&error_log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start nginx");
    wait_listening(port, "nginx", &error_log).await;

    let (cert, key) = clients.files(&fx, "my_client");
    let valid = via_proxy(&fx, port, &cert, &key).await;
    assert_eq!(valid.status, 200, "{}", valid.body);
    let json = valid.json();
    assert_same_identity(&json, &direct, "nginx");
    assert_eq!(json["forwardedBy"], "127.0.0.2");
    assert_eq!(json["clientIp"], "127.0.0.1");

    for (name, reason) in [
        ("revoked_client", "ClientCertRevoked"),
        ("expired_client", "ClientCertExpired"),
        ("stranger", "ClientCertUntrusted"),
    ] {
        let (cert, key) = clients.files(&fx, name);
        let reply = via_proxy(&fx, port, &cert, &key).await;
        assert_eq!(reply.status, 403, "{name}: {}", reply.body);
        assert!(reply.body.is_empty(), "{name}: a refusal carries no detail");
        let record = wait_record(&log, |r| {
            r["connectionStatus"] == format!("Failed:{reason}")
        })
        .await;
        assert_eq!(record["forwarded"], true, "{name}");
        assert_eq!(record["proxyIp"], "127.0.0.2", "{name}");
    }

    // Straight to the app, forging the header nginx sets: not believed.
    let leaf = std::fs::read_to_string(fx.pki.path("my_client.pem")).expect("PEM");
    let forged = forge(app_addr, "X-SSL-Client-Cert", &urlencode(&leaf)).await;
    assert_eq!(forged.status, 403);
    let record = wait_record(&log, |r| {
        r["connectionStatus"] == "Failed:ClientCertMissing"
            && r["connectionStatusDetail"]
                .as_str()
                .unwrap_or("")
                .contains("127.0.0.1 is not a trusted proxy")
    })
    .await;
    assert_eq!(record["forwarded"], false);
}

#[tokio::test]
async fn haproxy_forwards_ssl_c_der_base64_to_serve_forwarded() {
    need("haproxy");
    let fx = Fixture::new();
    let clients = Clients::new();
    let direct = direct_identity(&fx).await;

    let sink = Arc::new(MemorySink::default());
    let edge = app_edge(&fx, "der-header:X-SSL-Client-Der", &sink);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let app_addr = listener.local_addr().expect("address");
    tokio::spawn(edge_mtls::axum::serve_forwarded(
        listener,
        edge,
        identity::router(),
    ));

    // HAProxy: `verify optional` needs a ca-file; ignoring every CA and
    // certificate error makes it forward any client certificate unverified
    // (nginx's optional_no_ca).
    let dir = tempfile::tempdir().expect("tempdir");
    let crt = dir.path().join("server-with-key.pem");
    let mut pem = std::fs::read_to_string(fx.pki.path("server.pem")).expect("server.pem");
    pem.push_str(&std::fs::read_to_string(fx.pki.path("server.key")).expect("server.key"));
    std::fs::write(&crt, pem).expect("write");
    let port = free_port();
    let cfg = format!(
        "global\n  maxconn 100\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
         frontend fe\n  bind 127.0.0.1:{port} ssl crt {crt} verify optional ca-file {ca} ca-ignore-err all crt-ignore-err all\n  \
         http-request set-header X-SSL-Client-Der %[ssl_c_der,base64]\n  option forwardfor\n  default_backend app\n\
         backend app\n  server app {app_addr} source 127.0.0.2\n",
        crt = crt.display(),
        ca = fx.pki.root().display(),
    );
    std::fs::write(dir.path().join("haproxy.cfg"), cfg).expect("write haproxy.cfg");
    let out_log = dir.path().join("haproxy.out");
    let _haproxy = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(dir.path().join("haproxy.cfg"))
        .stdout(std::fs::File::create(&out_log).expect("log file"))
        .stderr(std::fs::File::create(dir.path().join("haproxy.err")).expect("log file"))
        .kill_on_drop(true)
        .spawn()
        .expect("start haproxy");
    wait_listening(port, "haproxy", &dir.path().join("haproxy.err")).await;

    let (cert, key) = clients.files(&fx, "my_client");
    let valid = via_proxy(&fx, port, &cert, &key).await;
    assert_eq!(valid.status, 200, "{}", valid.body);
    let json = valid.json();
    assert_same_identity(&json, &direct, "haproxy");
    assert_eq!(json["forwardedBy"], "127.0.0.2");

    for (name, reason) in [
        ("revoked_client", ReasonCode::ClientCertRevoked),
        ("expired_client", ReasonCode::ClientCertExpired),
        ("stranger", ReasonCode::ClientCertUntrusted),
    ] {
        let (cert, key) = clients.files(&fx, name);
        let reply = via_proxy(&fx, port, &cert, &key).await;
        assert_eq!(reply.status, 403, "{name}: {}", reply.body);
        let record = sink.wait_for(1).await.pop().expect("record");
        assert_eq!(
            record.connection_status,
            ConnectionStatus::Failed(reason),
            "{name}: {record:?}"
        );
        assert!(record.forwarded);
        assert_eq!(record.proxy_ip, Some("127.0.0.2".parse().unwrap()));
    }

    // Straight to the app with a forged header, in three spellings.
    let der = rustls::pki_types::CertificateDer::from_pem_file(fx.pki.path("my_client.pem"))
        .expect("certificate");
    use base64::Engine as _;
    use rustls::pki_types::pem::PemObject as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    for header in ["X-SSL-Client-Der", "x-ssl-client-der", "X_SSL_Client_Der"] {
        let forged = forge(app_addr, header, &b64).await;
        assert_eq!(forged.status, 403, "{header}");
        let record = sink.records().pop().expect("record");
        assert_eq!(
            record.connection_status,
            ConnectionStatus::Failed(ReasonCode::ClientCertMissing),
            "{header}: {record:?}"
        );
        assert!(!record.forwarded);
    }
}

/// The app behind the proxy: trusts 127.0.0.2 only; the demo trust store,
/// deny list and CloudFront headers.
fn app_edge(fx: &Fixture, dialect: &str, sink: &Arc<MemorySink>) -> Edge {
    let mut b = MtlsConfig::builder()
        .distribution_id("behind-proxy")
        .trust_store_file(fx.pki.trust_store())
        .header_profiles([HeaderProfile::CloudFront])
        .log_sink(sink.clone())
        .forwarded(ForwardedSettings {
            dialect: dialect.into(),
            trusted_proxies: vec!["127.0.0.2/32".into()],
            ..ForwardedSettings::default()
        });
    b.settings().revocation.deny_list = Some(DenyListSettings {
        kvs_json: vec![fx.pki.revoked_serials()],
        ..DenyListSettings::default()
    });
    b.build().expect("app edge")
}

async fn wait_record(log: &Arc<Mutex<Vec<Value>>>, matches: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..400 {
        if let Some(r) = log.lock().unwrap().iter().find(|r| matches(r)) {
            return r.clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no such record in {:#?}", log.lock().unwrap());
}
