//! The connection object a policy sees (CloudFront connection functions).

use core::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use rustls_pki_types::CertificateDer;
use serde::ser::SerializeStruct as _;
use serde::{Serialize, Serializer};

use crate::chain_validator::ClientCertInfo;
use crate::revocation::RevocationStatus;
use crate::x509::fields::{hex_lower, hex_upper_colon, iso8601, san_openssl, serial_cloudfront};
use crate::x509::name::connection_style_of;
use crate::x509::parsed::ParsedCertificate;

/// `validity` of a certificate object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Validity {
    /// ISO 8601 UTC.
    pub not_before: String,
    /// ISO 8601 UTC.
    pub not_after: String,
}

/// One certificate as CloudFront describes it to a connection function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CertificateObject {
    /// `00:a7:30:9e:…`.
    pub serial_number: String,
    /// `CN=Intermediate CA, O=Example Org`.
    pub issuer: String,
    /// `CN=client.example.com, O=Example Org`.
    pub subject: String,
    /// Validity dates.
    pub validity: Validity,
    /// `AB:CD:…`, SHA-256 of the DER.
    pub sha256_fingerprint: String,
    /// The OCSP responder URL, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocsp_endpoint: Option<String>,
    /// `DNS:a.example,URI:spiffe://…,IP Address:10.0.0.1,email:x@y`.
    pub san: String,
    /// SubjectPublicKeyInfo DER, hex.
    pub spki: String,
    /// subjectAltName extension value DER, hex (empty when absent).
    pub san_hex: String,
}

impl CertificateObject {
    /// Describes a parsed certificate.
    pub fn new(info: &ClientCertInfo) -> Self {
        Self {
            serial_number: serial_cloudfront(&info.serial),
            issuer: connection_style_of(&info.issuer),
            subject: connection_style_of(&info.subject),
            validity: Validity {
                not_before: iso8601(info.not_before),
                not_after: iso8601(info.not_after),
            },
            sha256_fingerprint: hex_upper_colon(&info.sha256),
            ocsp_endpoint: info.ocsp_url.clone(),
            san: san_openssl(&info.subject_alt_names),
            spki: hex_lower(&info.spki),
            san_hex: info
                .subject_alt_name_der
                .as_deref()
                .map(hex_lower)
                .unwrap_or_default(),
        }
    }
}

/// `clientCertificate.certificates`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Certificates {
    /// The leaf.
    pub leaf: CertificateObject,
    /// The intermediates the client sent, in order.
    pub intermediates: Vec<CertificateObject>,
}

/// `clientCertificate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClientCertificate {
    /// The presented certificates.
    pub certificates: Certificates,
    /// Revocation results, when revocation checking is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_status: Option<RevocationStatus>,
}

/// What a connection policy is asked about (CloudFront's field names).
///
/// The CloudFront certificate objects (`clientCertificate`) are formatted on
/// first use — by [`Connection::client_certificate`] or when the connection
/// is serialized — so a policy that only looks at the parsed [`leaf`]
/// (every built-in [`Matcher`](super::Matcher)) never pays for them.
///
/// [`leaf`]: Connection::leaf
#[derive(Clone)]
pub struct Connection {
    /// The client's address.
    pub client_ip: IpAddr,
    /// The SNI host name.
    pub endpoint: Option<String>,
    /// The listener id.
    pub distribution_id: String,
    /// The connection id (as in the connection log).
    pub connection_id: String,
    /// The parsed leaf, for Rust policies (not serialized).
    pub leaf: Option<Arc<ClientCertInfo>>,
    /// What the client sent, leaf first (empty without a certificate).
    presented: Arc<[CertificateDer<'static>]>,
    /// The intermediates of the verified path, parsed by the validator
    /// (`None`: the presented ones are parsed when asked for).
    parsed_intermediates: Option<Vec<ParsedCertificate>>,
    revocation_status: Option<RevocationStatus>,
    client_certificate: OnceLock<Option<ClientCertificate>>,
}

impl Connection {
    /// A connection without a client certificate.
    pub fn without_certificate(
        client_ip: IpAddr,
        distribution_id: &str,
        connection_id: &str,
    ) -> Self {
        Self {
            client_ip,
            endpoint: None,
            distribution_id: distribution_id.to_string(),
            connection_id: connection_id.to_string(),
            leaf: None,
            presented: Arc::from(Vec::new()),
            parsed_intermediates: None,
            revocation_status: None,
            client_certificate: OnceLock::new(),
        }
    }

    /// Adds the presented chain: the parsed leaf and the certificates sent
    /// after it (copied). Certificates that cannot be parsed are left out of
    /// `intermediates`.
    pub fn with_chain(self, leaf: Arc<ClientCertInfo>, intermediates: &[impl AsRef<[u8]>]) -> Self {
        let presented = std::iter::once(CertificateDer::from(leaf.der.clone()))
            .chain(
                intermediates
                    .iter()
                    .map(|c| CertificateDer::from(c.as_ref().to_vec())),
            )
            .collect();
        self.with_presented(leaf, presented)
    }

    /// Adds the presented chain without copying it: `leaf` is the parsed
    /// form of `presented[0]`, the intermediates are `presented[1..]`.
    pub fn with_presented(
        mut self,
        leaf: Arc<ClientCertInfo>,
        presented: Arc<[CertificateDer<'static>]>,
    ) -> Self {
        self.leaf = Some(leaf);
        self.presented = presented;
        self.parsed_intermediates = None;
        self.client_certificate = OnceLock::new();
        self
    }

    /// Gives the certificate objects' `intermediates` from certificates
    /// parsed already (the verified path's, leaf's issuer first) instead of
    /// parsing what the client sent after its leaf.
    pub fn with_parsed_intermediates(mut self, intermediates: Vec<ParsedCertificate>) -> Self {
        self.parsed_intermediates = Some(intermediates);
        self.client_certificate = OnceLock::new();
        self
    }

    /// Attaches revocation results (shown with the certificate, when one
    /// was presented).
    pub fn with_revocation_status(mut self, status: RevocationStatus) -> Self {
        self.revocation_status = Some(status);
        self.client_certificate = OnceLock::new();
        self
    }

    /// Sets the SNI host name.
    pub fn with_endpoint(mut self, sni: Option<String>) -> Self {
        self.endpoint = sni;
        self
    }

    /// CloudFront's `clientCertificate`: `None` when no certificate was
    /// presented. Formatted on the first call.
    pub fn client_certificate(&self) -> Option<&ClientCertificate> {
        self.client_certificate
            .get_or_init(|| {
                let leaf = self.leaf.as_deref()?;
                Some(ClientCertificate {
                    certificates: Certificates {
                        leaf: CertificateObject::new(leaf),
                        intermediates: match &self.parsed_intermediates {
                            Some(parsed) => parsed
                                .iter()
                                .filter_map(ClientCertInfo::from_parsed)
                                .map(|i| CertificateObject::new(&i))
                                .collect(),
                            None => self
                                .intermediates()
                                .iter()
                                .filter_map(|c| ClientCertInfo::from_der(c))
                                .map(|i| CertificateObject::new(&i))
                                .collect(),
                        },
                    },
                    revocation_status: self.revocation_status.clone(),
                })
            })
            .as_ref()
    }

    /// The certificates the client sent after its leaf, as sent.
    pub fn intermediates(&self) -> &[CertificateDer<'static>] {
        self.presented.get(1..).unwrap_or_default()
    }

    /// The revocation results, when revocation checking is configured.
    pub fn revocation_status(&self) -> Option<&RevocationStatus> {
        self.revocation_status.as_ref()
    }
}

/// One certificate a connection object describes, before it is formatted.
#[cfg_attr(not(feature = "js"), allow(dead_code))]
pub(crate) enum Described<'a> {
    /// The leaf, parsed.
    Leaf(&'a ClientCertInfo),
    /// An intermediate of the verified path, parsed.
    Parsed(&'a ParsedCertificate),
    /// A certificate the client sent after its leaf, as sent.
    Sent(&'a [u8]),
}

#[cfg_attr(not(feature = "js"), allow(dead_code))]
impl Described<'_> {
    /// The certificate's DER.
    pub(crate) fn der(&self) -> &[u8] {
        match self {
            Self::Leaf(info) => &info.der,
            Self::Parsed(parsed) => parsed.der().as_ref(),
            Self::Sent(der) => der,
        }
    }

    /// Its CloudFront certificate object (`None` for a certificate sent
    /// after the leaf that cannot be parsed, which the object leaves out).
    pub(crate) fn object(&self) -> Option<CertificateObject> {
        match self {
            Self::Leaf(info) => Some(CertificateObject::new(info)),
            Self::Parsed(parsed) => {
                ClientCertInfo::from_parsed(parsed).map(|i| CertificateObject::new(&i))
            }
            Self::Sent(der) => ClientCertInfo::from_der(der).map(|i| CertificateObject::new(&i)),
        }
    }
}

#[cfg_attr(not(feature = "js"), allow(dead_code))]
impl Connection {
    /// The certificates `clientCertificate.certificates` describes, leaf
    /// first, unformatted (`None` without a certificate).
    pub(crate) fn described(&self) -> Option<Vec<Described<'_>>> {
        let leaf = self.leaf.as_deref()?;
        let mut out = vec![Described::Leaf(leaf)];
        match &self.parsed_intermediates {
            Some(parsed) => out.extend(parsed.iter().map(Described::Parsed)),
            None => out.extend(
                self.intermediates()
                    .iter()
                    .map(|c| Described::Sent(c.as_ref())),
            ),
        }
        Some(out)
    }
}

impl PartialEq for Connection {
    /// Equal when describing the same connection (whatever has been
    /// formatted so far).
    fn eq(&self, other: &Self) -> bool {
        self.client_ip == other.client_ip
            && self.endpoint == other.endpoint
            && self.distribution_id == other.distribution_id
            && self.connection_id == other.connection_id
            && self.leaf == other.leaf
            && self.intermediates() == other.intermediates()
            && self.revocation_status == other.revocation_status
    }
}

impl Eq for Connection {}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("client_ip", &self.client_ip)
            .field("endpoint", &self.endpoint)
            .field("distribution_id", &self.distribution_id)
            .field("connection_id", &self.connection_id)
            .field("leaf", &self.leaf.as_ref().map(|l| &l.subject))
            .field("intermediates", &self.intermediates().len())
            .field("revocation_status", &self.revocation_status)
            .finish()
    }
}

impl Serialize for Connection {
    /// CloudFront's connection object (the parsed leaf is not part of it).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Connection", 5)?;
        s.serialize_field("clientCertificate", &self.client_certificate())?;
        s.serialize_field("clientIp", &self.client_ip)?;
        s.serialize_field("endpoint", &self.endpoint)?;
        s.serialize_field("distributionId", &self.distribution_id)?;
        s.serialize_field("connectionId", &self.connection_id)?;
        s.end()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::revocation::{CertStatus, CertificateRevocationStatus, RevocationMethod};
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};

    /// A leaf and the intermediate that issued it.
    pub(crate) fn chain() -> (Vec<u8>, Vec<u8>) {
        let (mut leaves, intermediate) = leaves_of_one_intermediate(1);
        (leaves.remove(0), intermediate)
    }

    /// `count` different client leaves (`client-N.example.com`) issued by
    /// one intermediate, and the intermediate.
    pub(crate) fn leaves_of_one_intermediate(count: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Intermediate CA");
        let intermediate = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::from_params(&ca, &ca_key);
        let leaves = (0..count)
            .map(|i| {
                let name = match i {
                    0 => "client.example.com".to_string(),
                    _ => format!("client-{i}.example.com"),
                };
                let mut leaf = CertificateParams::new(vec![name.clone()]).unwrap();
                leaf.subject_alt_names.push(SanType::URI(
                    "spiffe://example.com/client".try_into().unwrap(),
                ));
                leaf.distinguished_name
                    .push(rcgen::DnType::CommonName, name);
                let leaf = leaf
                    .signed_by(&KeyPair::generate().unwrap(), &issuer)
                    .unwrap();
                leaf.der().to_vec()
            })
            .collect();
        (leaves, intermediate.der().to_vec())
    }

    #[test]
    fn connection_style_names_are_the_rfc2253_ones_with_spaces() {
        use crate::x509::name::connection_style;
        let awkward = [
            "client.example.com",
            "a, b",
            "x+y=z",
            "back\\slash, then comma",
            "#leading hash",
            " spaces at both ends ",
            "quote \" and <angle> ; semicolon",
            "control \u{1} character",
            "ünïcödé, too",
        ];
        for value in awkward {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            use rcgen::DnType::{CommonName, CountryName, OrganizationName};
            for (kind, text) in [
                (CountryName, "US"),
                (OrganizationName, value),
                (CommonName, value),
            ] {
                params.distinguished_name.push(kind, text);
            }
            let cert = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
            let info = ClientCertInfo::from_der(cert.der()).unwrap();
            let object = CertificateObject::new(&info);
            assert_eq!(
                Some(object.subject.clone()),
                connection_style(&info.subject_der),
                "{value:?}"
            );
            assert_eq!(Some(object.issuer), connection_style(&info.issuer_der));
            // Three RDNs: the RFC 2253 text differs by its separators.
            assert_ne!(object.subject, info.subject);
        }
    }

    fn connection() -> Connection {
        Connection::without_certificate("203.0.113.42".parse().unwrap(), "E1", "id-1")
            .with_endpoint(Some("api.example.com".into()))
    }

    /// A leaf found good by a deny list.
    pub(crate) fn good_status() -> RevocationStatus {
        RevocationStatus::from_entries(
            CertificateRevocationStatus::new(
                RevocationMethod::DenyList,
                &CertStatus::Good,
                "01".into(),
            ),
            Vec::new(),
        )
    }

    #[test]
    fn serializes_cloudfront_connection_object() {
        let (leaf, intermediate) = chain();
        let info = Arc::new(ClientCertInfo::from_der(&leaf).unwrap());
        let status = good_status();
        let connection = connection()
            .with_chain(
                info.clone(),
                &[intermediate.as_slice(), b"not a certificate"],
            )
            .with_revocation_status(status.clone());
        let expected = serde_json::json!({
            "clientCertificate": {
                "certificates": {
                    "leaf": CertificateObject::new(&info),
                    "intermediates": [
                        CertificateObject::new(&ClientCertInfo::from_der(&intermediate).unwrap())
                    ],
                },
                "revocationStatus": status,
            },
            "clientIp": "203.0.113.42",
            "endpoint": "api.example.com",
            "distributionId": "E1",
            "connectionId": "id-1",
        });
        assert_eq!(serde_json::to_value(&connection).unwrap(), expected);
        let leaf_object = &connection.client_certificate().unwrap().certificates.leaf;
        assert_eq!(leaf_object.subject, "CN=client.example.com");
        assert!(leaf_object
            .san
            .contains("DNS:client.example.com,URI:spiffe://example.com/client"));
        assert_eq!(connection.intermediates().len(), 2);
    }

    #[test]
    fn sharing_the_presented_chain_is_the_same_connection() {
        let (leaf, intermediate) = chain();
        let info = Arc::new(ClientCertInfo::from_der(&leaf).unwrap());
        let copied = connection().with_chain(info.clone(), &[intermediate.as_slice()]);
        let presented: Arc<[CertificateDer<'static>]> =
            Arc::from(vec![leaf.into(), intermediate.into()]);
        let shared = connection().with_presented(info, presented);
        // Formatted on one side only: still equal, and equal once formatted.
        assert!(copied.client_certificate().is_some());
        assert_eq!(copied, shared);
        assert_eq!(copied.client_certificate(), shared.client_certificate());
    }

    #[test]
    fn without_certificate_serializes_null() {
        let status = RevocationStatus::from_entries(
            CertificateRevocationStatus::new(
                RevocationMethod::DenyList,
                &CertStatus::Good,
                String::new(),
            ),
            Vec::new(),
        );
        let connection = connection().with_revocation_status(status);
        assert!(connection.client_certificate().is_none());
        let json = serde_json::to_value(&connection).unwrap();
        assert_eq!(json["clientCertificate"], serde_json::Value::Null);
        assert_eq!(json.as_object().unwrap().len(), 5);
    }
}
