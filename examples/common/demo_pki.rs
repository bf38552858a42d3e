//! The demo PKI the examples serve with: a root CA, an intermediate CA, a
//! server certificate for `localhost` / `127.0.0.1`, and three client
//! certificates (valid, revoked through a deny list, expired), written as PEM
//! files under one directory and reused when already there.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};

/// Any error while creating the files.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Where the demo files are.
#[derive(Clone, Debug)]
pub struct DemoPki {
    /// The directory.
    pub dir: PathBuf,
}

impl DemoPki {
    /// A file of the demo PKI.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The trust-store bundle (root and intermediate CA).
    pub fn trust_store(&self) -> PathBuf {
        self.path("trust_store_bundle.pem")
    }

    /// The root CA (what curl's `--cacert` needs to trust the server).
    pub fn root(&self) -> PathBuf {
        self.path("root_ca.pem")
    }

    /// The CloudFront KeyValueStore JSON listing the revoked client's serial.
    pub fn revoked_serials(&self) -> PathBuf {
        self.path("revoked-serials.json")
    }
}

/// The files every run needs.
const FILES: [&str; 12] = [
    "root_ca.pem",
    "intermediate_ca.pem",
    "trust_store_bundle.pem",
    "server.pem",
    "server.key",
    "my_client.pem",
    "my_client.key",
    "revoked_client.pem",
    "revoked_client.key",
    "expired_client.pem",
    "expired_client.key",
    "revoked-serials.json",
];

/// Uses the PKI under `dir`, creating it when the directory does not exist
/// (or is empty). A directory missing some of the files is an error naming
/// them: recreating the PKI would replace the root and invalidate every
/// certificate handed out already. Returns whether it was created.
pub fn ensure(dir: &Path) -> Result<(DemoPki, bool), Error> {
    let pki = DemoPki {
        dir: dir.to_path_buf(),
    };
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("--pki-dir {}: {e}", dir.display()).into()),
        Ok(meta) if !meta.is_dir() => {
            return Err(format!("--pki-dir {}: not a directory", dir.display()).into())
        }
        Ok(_) => {
            let missing: Vec<&str> = FILES
                .iter()
                .copied()
                .filter(|f| !pki.path(f).exists())
                .collect();
            if missing.is_empty() {
                return Ok((pki, false));
            }
            let empty = std::fs::read_dir(dir)?.next().is_none();
            if !empty {
                return Err(format!(
                    "--pki-dir {}: missing {}; remove the directory to create a new demo PKI",
                    dir.display(),
                    missing.join(", ")
                )
                .into());
            }
        }
    }
    create(dir)?;
    Ok((pki, true))
}

// The shared test-PKI blocks (the integration tests reach them through here).
#[path = "../../testkit/pki.rs"]
pub(crate) mod pki;

fn ca_params(cn: &str) -> Result<CertificateParams, Error> {
    let mut p = pki::ca_params(pki::name(Some("US"), Some("edge-mtls demo"), cn), None);
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2040, 1, 1);
    Ok(p)
}

/// A client certificate: leaf PEM followed by the intermediate, as curl sends
/// it with `--cert`.
fn client(
    dir: &Path,
    name: &str,
    serial: u64,
    expired: bool,
    issuer: &CertifiedIssuer<'_, KeyPair>,
) -> Result<(), Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CountryName, "US");
    p.distinguished_name
        .push(DnType::OrganizationName, "edge-mtls demo");
    p.distinguished_name
        .push(DnType::CommonName, name.replace('_', "-"));
    p.subject_alt_names = vec![
        SanType::DnsName(format!("{}.clients.demo.test", name.replace('_', "-")).try_into()?),
        SanType::URI(format!("spiffe://demo.test/client/{name}").try_into()?),
    ];
    p.serial_number = Some(serial.into());
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    if expired {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    } else {
        p.not_before = rcgen::date_time_ymd(2025, 1, 1);
        p.not_after = rcgen::date_time_ymd(2036, 1, 1);
    }
    let key = KeyPair::generate()?;
    let issuer_ref: &Issuer<'_, KeyPair> = issuer;
    let cert = p.signed_by(&key, issuer_ref)?;
    std::fs::write(
        dir.join(format!("{name}.pem")),
        format!("{}{}", cert.pem(), issuer.pem()),
    )?;
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem())?;
    Ok(())
}

/// Serial numbers of the demo client certificates.
pub const VALID_SERIAL: u64 = 0x1001;
/// The revoked client's serial (listed in `revoked-serials.json`).
pub const REVOKED_SERIAL: u64 = 0x1002;
/// The expired client's serial.
pub const EXPIRED_SERIAL: u64 = 0x1003;

fn create(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir)?;
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text);

    let root =
        CertifiedIssuer::self_signed(ca_params("edge-mtls demo root CA")?, KeyPair::generate()?)?;
    let intermediate = CertifiedIssuer::signed_by(
        ca_params("edge-mtls demo intermediate CA")?,
        KeyPair::generate()?,
        &root,
    )?;
    write("root_ca.pem", &root.pem())?;
    write("intermediate_ca.pem", &intermediate.pem())?;
    write(
        "trust_store_bundle.pem",
        &format!("{}{}", root.pem(), intermediate.pem()),
    )?;

    let mut server =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.not_before = rcgen::date_time_ymd(2025, 1, 1);
    server.not_after = rcgen::date_time_ymd(2036, 1, 1);
    server.use_authority_key_identifier_extension = true;
    let server_key = KeyPair::generate()?;
    let server_cert = server.signed_by(&server_key, &intermediate)?;
    write(
        "server.pem",
        &format!("{}{}", server_cert.pem(), intermediate.pem()),
    )?;
    write("server.key", &server_key.serialize_pem())?;

    client(dir, "my_client", VALID_SERIAL, false, &intermediate)?;
    client(dir, "revoked_client", REVOKED_SERIAL, false, &intermediate)?;
    client(dir, "expired_client", EXPIRED_SERIAL, true, &intermediate)?;
    // CloudFront KeyValueStore import format (seed 003), keyed by serial.
    write(
        "revoked-serials.json",
        &format!(
            "{{ \"data\": [ {{ \"key\": \"{REVOKED_SERIAL:X}\", \"value\": \"revoked by the demo\" }} ] }}\n"
        ),
    )?;
    Ok(())
}
