//! [`DenyListSource`]: revoked serial numbers kept in a [`KeyValueStore`]
//! (CloudFront's KeyValueStore revocation recipe), method `KVS`.
//!
//! A certificate is looked up under its serial (`00a7309e`, CloudFront's
//! spelling without colons) and, because serial-only keys collide across
//! CAs, under `<issuer id>/<serial>` where the issuer id is the SHA-256 of
//! the issuing certificate's SubjectPublicKeyInfo ([`issuer_id`]). Which of
//! the two is consulted is [`IssuerScoping`].
//!
//! A negative serial (non-conforming; ALB cannot revoke these) is looked up
//! as `-<magnitude>` (OpenSSL's spelling) and also under its octets read as
//! an unsigned number (`ff:85` → `00ff85`), so a list written from a tool
//! that ignores the sign still denies it. The second key can only ever deny
//! more, never less.

use std::sync::Arc;

use rustls_pki_types::UnixTime;
use sha2::{Digest, Sha256};

use super::kvs::KeyValueStore;
use super::{
    CertStatus, CertToCheck, RevocationMethod, RevocationSource, SerialNumber, StatusErrorKind,
};
use crate::x509::cert::Cert;
use crate::x509::parsed::ParsedCertificate;
use crate::x509::serial::hex_into;

/// Which deny-list keys are consulted for a certificate.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum IssuerScoping {
    /// Only `<serial>` keys.
    SerialOnly,
    /// Only `<issuer id>/<serial>` keys.
    IssuerOnly,
    /// Both (default): a serial-only entry denies every CA's certificate with
    /// that serial, a scoped entry only its issuer's.
    #[default]
    Both,
}

/// The issuer id of scoped deny-list keys: lowercase hex SHA-256 of the
/// issuer certificate's SubjectPublicKeyInfo, or `None` when `issuer_der`
/// is not a certificate.
pub fn issuer_id(issuer_der: &[u8]) -> Option<String> {
    Some(spki_id(Cert::parse_head(issuer_der).ok()?.spki))
}

/// The issuer id of a parsed issuer certificate.
/// The issuer id of a parsed issuer (its key's hash is computed once per
/// parsed certificate).
fn issuer_id_of(issuer: &ParsedCertificate) -> String {
    let mut buf = [0u8; 64];
    let mut id = String::with_capacity(64 + 1 + KEY_BUF);
    id.push_str(hex_into(issuer.spki_sha256(), &mut buf).unwrap_or_default());
    id
}

fn spki_id(spki: &[u8]) -> String {
    let mut buf = [0u8; 64];
    hex_into(&Sha256::digest(spki), &mut buf)
        .map(str::to_string)
        .unwrap_or_default()
}

/// The scoped key `<issuer id>/<serial>` for a certificate of `issuer_der`.
pub fn scoped_key(issuer_der: &[u8], serial: &SerialNumber) -> Option<String> {
    Some(format!("{}/{}", issuer_id(issuer_der)?, serial.to_key()))
}

/// A revocation source answering from a deny list of serial numbers.
#[derive(Debug, Clone)]
pub struct DenyListSource {
    store: Arc<dyn KeyValueStore>,
    scoping: IssuerScoping,
}

/// Longest key: issuer id, `/`, `-`, and the hex of the longest serial.
const KEY_BUF: usize = 64 + 2 + 2 * (crate::x509::serial::MAX_SERIAL_OCTETS + 1);

impl DenyListSource {
    /// A deny list over `store` (ideally a
    /// [`KeyNormalization::SerialNumbers`](super::kvs::KeyNormalization)
    /// store; an exact store must hold keys spelt as CloudFront's recipe
    /// computes them: lowercase, no colons, sign byte kept).
    pub fn new(store: Arc<dyn KeyValueStore>) -> Self {
        Self {
            store,
            scoping: IssuerScoping::Both,
        }
    }

    /// Which keys are consulted (default: both).
    pub fn issuer_scoping(mut self, scoping: IssuerScoping) -> Self {
        self.scoping = scoping;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn KeyValueStore> {
        &self.store
    }

    /// Calls `probe` with every key of `cert` until it returns `Some`.
    fn probe_keys<T>(
        &self,
        cert: &CertToCheck<'_>,
        mut probe: impl FnMut(&str) -> Option<T>,
    ) -> Result<Option<T>, StatusErrorKind> {
        let serial = cert
            .cert
            .serial()
            .ok_or_else(|| StatusErrorKind::Error("serial number unreadable".into()))?;
        let mut serial_keys: [Option<String>; 2] = [None, None];
        let mut buf = [0u8; KEY_BUF];
        let fast: Option<&str> = if serial.is_negative() {
            serial_keys = [
                Some(serial.to_key()),
                serial.as_unsigned().map(|s| s.to_key()),
            ];
            None
        } else {
            // Positive serials (all conforming ones): the key is the hex of
            // the canonical octets, written without allocating.
            hex_into(serial.as_bytes(), &mut buf)
        };
        let keys = || {
            fast.into_iter()
                .chain(serial_keys.iter().flatten().map(String::as_str))
        };

        if self.scoping != IssuerScoping::IssuerOnly {
            for key in keys() {
                if let Some(v) = probe(key) {
                    return Ok(Some(v));
                }
            }
        }
        if self.scoping != IssuerScoping::SerialOnly {
            let mut scoped = issuer_id_of(cert.issuer);
            scoped.push('/');
            let prefix = scoped.len();
            for key in keys() {
                scoped.truncate(prefix);
                scoped.push_str(key);
                if let Some(v) = probe(&scoped) {
                    return Ok(Some(v));
                }
            }
        }
        Ok(None)
    }
}

/// What a synchronous probe found: a listed key, or a store that cannot
/// answer without I/O.
enum Probe {
    Listed,
    Pending,
}

#[async_trait::async_trait]
impl RevocationSource for DenyListSource {
    fn method(&self) -> RevocationMethod {
        RevocationMethod::DenyList
    }

    /// The store's version: answers depend on nothing else.
    fn data_version(&self) -> Option<u64> {
        self.store.version()
    }

    fn check_now(&self, cert: &CertToCheck<'_>, _now: UnixTime) -> Option<CertStatus> {
        let result = self.probe_keys(cert, |key| match self.store.exists_local(key) {
            Some(true) => Some(Probe::Listed),
            Some(false) => None,
            None => Some(Probe::Pending),
        });
        match result {
            Ok(Some(Probe::Listed)) => Some(CertStatus::Revoked {
                reason: None,
                revoked_at: None,
            }),
            Ok(Some(Probe::Pending)) => None,
            Ok(None) => Some(CertStatus::Good),
            Err(kind) => Some(CertStatus::Error(kind)),
        }
    }

    async fn check(&self, cert: &CertToCheck<'_>, _now: UnixTime) -> CertStatus {
        // Collect the keys synchronously, then ask the store for each.
        let mut keys = Vec::new();
        if let Err(kind) = self.probe_keys(cert, |key| {
            keys.push(key.to_string());
            None::<()>
        }) {
            return CertStatus::Error(kind);
        }
        for key in keys {
            match self.store.exists(&key).await {
                Ok(true) => {
                    return CertStatus::Revoked {
                        reason: None,
                        revoked_at: None,
                    }
                }
                Ok(false) => {}
                Err(e) => return CertStatus::Error(StatusErrorKind::InternalError(e.to_string())),
            }
        }
        CertStatus::Good
    }
}
