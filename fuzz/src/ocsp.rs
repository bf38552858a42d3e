//! Fixtures and seeds of the `ocsp_response` target: a CA, two client
//! certificates and two would-be delegated responders (one with
//! id-kp-OCSPSigning, one without), all from fixed keys, and OCSP responses
//! about them built with `x509-ocsp` and signed with those keys.
//!
//! Input: byte 0 selects the certificate asked about (bits 0–1: leaf, other
//! leaf, the delegated responder, leaf) and the time (bit 2: three days
//! after [`NOW_SECS`], when every seed's nextUpdate has passed); the rest is
//! the DER OCSPResponse.

use std::sync::OnceLock;
use std::time::Duration;

use ::der::asn1::{BitString, ObjectIdentifier, OctetString};
use ::der::{DateTime, Decode, Encode};
use edge_mtls::{CertPosition, CertToCheck, OcspSource, ParsedCertificate};
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber, SigningKey,
};
use rustls_pki_types::UnixTime;
use sha1::{Digest, Sha1};
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{
    BasicOcspResponse, CertId, OcspGeneralizedTime, OcspResponse, ResponderId, ResponseData,
    RevokedInfo, SingleResponse,
};

use crate::fixtures::{fixtures, NOW_SECS};
use crate::keys;

/// The certificates and keys of the target.
pub struct OcspFixtures {
    /// The issuing CA.
    pub ca: Vec<u8>,
    /// A client certificate (serial 0x1001).
    pub leaf: Vec<u8>,
    /// Another client certificate (serial 0x1002).
    pub other_leaf: Vec<u8>,
    /// A delegated responder certificate with id-kp-OCSPSigning.
    pub responder: Vec<u8>,
    /// A certificate of the CA without id-kp-OCSPSigning.
    pub rogue: Vec<u8>,
    ca_key: KeyPair,
    responder_key: KeyPair,
    rogue_key: KeyPair,
    /// The source whose pure verifier is fuzzed.
    pub source: OcspSource,
    /// `ca`, `leaf`, `other_leaf` and `responder`, parsed as the validator
    /// hands certificates to revocation sources.
    parsed: [ParsedCertificate; 4],
}

static OCSP: OnceLock<OcspFixtures> = OnceLock::new();

use crate::fixtures::dn;

fn key(pem: &str) -> KeyPair {
    KeyPair::from_pem(pem).expect("fixture key")
}

/// The shared OCSP fixtures, generated on first use.
pub fn ocsp_fixtures() -> &'static OcspFixtures {
    OCSP.get_or_init(|| {
        let ca_key = key(keys::INTER_5B);
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = dn("Fuzz OCSP CA");
        ca_params.serial_number = Some(SerialNumber::from(0x0c));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).expect("CA").der().to_vec();
        let issuer = Issuer::from_params(&ca_params, &ca_key);

        let issue = |cn: &str, serial: u64, key: &KeyPair, eku| {
            let mut p = CertificateParams::default();
            p.distinguished_name = dn(cn);
            p.serial_number = Some(SerialNumber::from(serial));
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![eku];
            p.use_authority_key_identifier_extension = true;
            p.signed_by(key, &issuer).expect("cert").der().to_vec()
        };
        let leaf = issue(
            "client",
            0x1001,
            &key(keys::LEAF_1),
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let other_leaf = issue(
            "other client",
            0x1002,
            &key(keys::LEAF_2),
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let responder_key = key(keys::INTER_6);
        let responder = issue(
            "Fuzz OCSP Responder",
            0x2001,
            &responder_key,
            ExtendedKeyUsagePurpose::OcspSigning,
        );
        let rogue_key = key(keys::LEAF_6);
        let rogue = issue(
            "Not A Responder",
            0x2002,
            &rogue_key,
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let source = OcspSource::builder(fixtures().provider.clone())
            .max_age_without_next_update(Some(Duration::from_secs(24 * 3600)))
            .build()
            .expect("source");
        let parse = |der: &Vec<u8>| ParsedCertificate::from_der(der.clone()).expect("fixture");
        let parsed = [
            parse(&ca),
            parse(&leaf),
            parse(&other_leaf),
            parse(&responder),
        ];
        OcspFixtures {
            parsed,
            ca,
            leaf,
            other_leaf,
            responder,
            rogue,
            ca_key,
            responder_key,
            rogue_key,
            source,
        }
    })
}

/// What the selector byte asks about.
pub fn decode(data: &[u8]) -> Option<(CertToCheck<'static>, UnixTime, &[u8])> {
    let (&selector, response) = data.split_first()?;
    let f = ocsp_fixtures();
    let [ca, leaf, other_leaf, responder] = &f.parsed;
    let cert = match selector & 0x03 {
        1 => other_leaf,
        2 => responder,
        _ => leaf,
    };
    let secs = if selector & 0x04 != 0 {
        NOW_SECS + 3 * 24 * 3600
    } else {
        NOW_SECS
    };
    let check = CertToCheck {
        cert,
        issuer: ca,
        position: CertPosition::Leaf,
    };
    Some((
        check,
        UnixTime::since_unix_epoch(Duration::from_secs(secs)),
        response,
    ))
}

fn time(secs: u64) -> OcspGeneralizedTime {
    DateTime::from_unix_duration(Duration::from_secs(secs))
        .expect("time")
        .into()
}

fn cert(der: &[u8]) -> x509_cert::Certificate {
    x509_cert::Certificate::from_der(der).expect("fixture certificate")
}

/// Who signs a seed and how `responderID` names it.
#[derive(Clone, Copy)]
enum Signer {
    IssuerByName,
    IssuerByKey,
    Responder,
    Rogue,
}

struct Seed {
    status: x509_ocsp::CertStatus,
    about: Vec<u64>,
    sha256: bool,
    next_update: Option<u64>,
    signer: Signer,
    nonce: bool,
    critical_single_extension: bool,
}

impl Default for Seed {
    fn default() -> Self {
        Self {
            status: x509_ocsp::CertStatus::good(),
            about: vec![0x1001],
            sha256: false,
            next_update: Some(NOW_SECS + 3600),
            signer: Signer::IssuerByName,
            nonce: false,
            critical_single_extension: false,
        }
    }
}

fn build(f: &OcspFixtures, seed: Seed) -> Vec<u8> {
    let ca = cert(&f.ca);
    let (signer_cert, signer_key) = match seed.signer {
        Signer::IssuerByName | Signer::IssuerByKey => (None, &f.ca_key),
        Signer::Responder => (Some(cert(&f.responder)), &f.responder_key),
        Signer::Rogue => (Some(cert(&f.rogue)), &f.rogue_key),
    };
    let responder_id = match (&signer_cert, seed.signer) {
        (Some(c), _) => ResponderId::ByName(c.tbs_certificate.subject.clone()),
        (None, Signer::IssuerByKey) => {
            let key = ca
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes();
            ResponderId::ByKey(OctetString::new(Sha1::digest(key).to_vec()).expect("hash"))
        }
        (None, _) => ResponderId::ByName(ca.tbs_certificate.subject.clone()),
    };
    let responses = seed
        .about
        .iter()
        .map(|serial| {
            let serial = x509_cert::serial_number::SerialNumber::from(*serial);
            let cert_id = if seed.sha256 {
                CertId::from_issuer::<sha2::Sha256>(&ca, serial)
            } else {
                CertId::from_issuer::<Sha1>(&ca, serial)
            }
            .expect("CertID");
            let single_extensions = seed.critical_single_extension.then(|| {
                vec![x509_cert::ext::Extension {
                    extn_id: ObjectIdentifier::new_unwrap("1.3.6.1.4.1.55555.9"),
                    critical: true,
                    extn_value: OctetString::new(vec![5, 0]).expect("value"),
                }]
            });
            SingleResponse {
                cert_id,
                cert_status: seed.status,
                this_update: time(NOW_SECS - 3600),
                next_update: seed.next_update.map(time),
                single_extensions,
            }
        })
        .collect();
    let response_extensions = seed.nonce.then(|| {
        let nonce = OctetString::new(vec![0x5a; 16]).expect("nonce");
        vec![x509_cert::ext::Extension {
            extn_id: ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2"),
            critical: false,
            extn_value: OctetString::new(nonce.to_der().expect("nonce")).expect("value"),
        }]
    });
    let tbs = ResponseData {
        version: x509_ocsp::Version::V1,
        responder_id,
        produced_at: time(NOW_SECS - 60),
        responses,
        response_extensions,
    };
    let signature = signer_key.sign(&tbs.to_der().expect("tbs")).expect("sign");
    let basic = BasicOcspResponse {
        tbs_response_data: tbs,
        // ecdsa-with-SHA256: every fixture key is P-256.
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2"),
            parameters: None,
        },
        signature: BitString::from_bytes(&signature).expect("signature"),
        certs: signer_cert.map(|c| vec![c]),
    };
    OcspResponse::successful(basic)
        .expect("response")
        .to_der()
        .expect("encode")
}

/// Seeds: every status, both CertID hashes, both responderID forms,
/// delegated and rogue responders, extensions, several SingleResponses,
/// responder errors, and stale / mismatched selections.
pub fn seeds() -> Vec<Vec<u8>> {
    let f = ocsp_fixtures();
    let with = |selector: u8, response: Vec<u8>| {
        let mut v = vec![selector];
        v.extend(response);
        v
    };
    let revoked = x509_ocsp::CertStatus::revoked(RevokedInfo {
        revocation_time: time(NOW_SECS - 7200),
        revocation_reason: Some(x509_cert::ext::pkix::CrlReason::KeyCompromise),
    });
    let seeds = [
        (0, Seed::default()),
        (
            0,
            Seed {
                signer: Signer::IssuerByKey,
                ..Seed::default()
            },
        ),
        (
            0,
            Seed {
                status: revoked,
                ..Seed::default()
            },
        ),
        (
            0,
            Seed {
                status: x509_ocsp::CertStatus::unknown(),
                ..Seed::default()
            },
        ),
        (
            0,
            Seed {
                sha256: true,
                ..Seed::default()
            },
        ),
        (
            0,
            Seed {
                signer: Signer::Responder,
                ..Seed::default()
            },
        ),
        (
            0,
            Seed {
                signer: Signer::Rogue,
                ..Seed::default()
            },
        ),
        (
            0,
            Seed {
                next_update: None,
                ..Seed::default()
            },
        ),
        (
            0,
            Seed {
                nonce: true,
                ..Seed::default()
            },
        ),
        (
            0,
            Seed {
                critical_single_extension: true,
                ..Seed::default()
            },
        ),
        (
            1,
            Seed {
                about: vec![0x1001, 0x1002],
                ..Seed::default()
            },
        ),
        (
            2,
            Seed {
                about: vec![0x2001],
                ..Seed::default()
            },
        ),
        (4, Seed::default()),
        (1, Seed::default()),
    ];
    let mut out: Vec<Vec<u8>> = seeds
        .into_iter()
        .map(|(selector, seed)| with(selector, build(f, seed)))
        .collect();
    out.push(with(
        0,
        OcspResponse::try_later().to_der().expect("tryLater"),
    ));
    out.push(with(0, b"not an OCSP response".to_vec()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_mtls::{CertStatus, OcspError};

    /// The seeds reach the outcomes they were written for.
    #[test]
    fn seeds_verify_as_intended() {
        let f = ocsp_fixtures();
        let results: Vec<_> = seeds()
            .iter()
            .map(|s| {
                let (cert, now, response) = decode(s).expect("selector");
                f.source.verify_response(&cert, response, now)
            })
            .collect();
        let status = |i: usize| results[i].clone().map(|a| a.status);
        assert_eq!(status(0), Ok(CertStatus::Good));
        assert_eq!(status(1), Ok(CertStatus::Good));
        assert!(matches!(
            status(2),
            Ok(CertStatus::Revoked {
                reason: Some(1),
                ..
            })
        ));
        assert_eq!(status(3), Ok(CertStatus::Unknown));
        assert_eq!(status(4), Ok(CertStatus::Good));
        assert_eq!(status(5), Ok(CertStatus::Good));
        assert_eq!(status(6), Err(OcspError::ResponderMissingOcspSigning));
        assert_eq!(status(7), Ok(CertStatus::Good));
        assert_eq!(status(8), Ok(CertStatus::Good));
        assert!(matches!(
            status(9),
            Err(OcspError::UnsupportedCriticalExtension { .. })
        ));
        assert_eq!(status(10), Ok(CertStatus::Good));
        assert_eq!(status(11), Ok(CertStatus::Good));
        assert!(matches!(status(12), Err(OcspError::Expired { .. })));
        assert_eq!(status(13), Err(OcspError::CertIdMismatch));
        assert!(matches!(status(14), Err(OcspError::ResponderStatus { .. })));
        assert!(matches!(status(15), Err(OcspError::Malformed(_))));
    }
}
