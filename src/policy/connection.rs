//! The connection object a policy sees (CloudFront connection functions).

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::cert_fields::{hex_lower, hex_upper_colon, iso8601, san_openssl, serial_cloudfront};
use crate::chain_validator::ClientCertInfo;
use crate::distinguished_name::connection_style;
use crate::revocation::RevocationStatus;

/// `validity` of a certificate object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Validity {
    /// ISO 8601 UTC.
    pub not_before: String,
    /// ISO 8601 UTC.
    pub not_after: String,
}

/// One certificate as CloudFront describes it to a connection function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
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
            issuer: connection_style(&info.issuer_der).unwrap_or_else(|| info.issuer.clone()),
            subject: connection_style(&info.subject_der).unwrap_or_else(|| info.subject.clone()),
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
pub struct Certificates {
    /// The leaf.
    pub leaf: CertificateObject,
    /// The intermediates the client sent, in order.
    pub intermediates: Vec<CertificateObject>,
}

/// `clientCertificate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCertificate {
    /// The presented certificates.
    pub certificates: Certificates,
    /// Revocation results, when revocation checking is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_status: Option<RevocationStatus>,
}

/// What a connection policy is asked about (CloudFront's field names).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// `null` when no certificate was presented.
    pub client_certificate: Option<ClientCertificate>,
    /// The client's address.
    pub client_ip: IpAddr,
    /// The SNI host name.
    pub endpoint: Option<String>,
    /// The listener id.
    pub distribution_id: String,
    /// The connection id (as in the connection log).
    pub connection_id: String,
    /// The parsed leaf, for Rust policies (not serialized).
    #[serde(skip)]
    pub leaf: Option<Arc<ClientCertInfo>>,
}

impl Connection {
    /// A connection without a client certificate.
    pub fn without_certificate(
        client_ip: IpAddr,
        distribution_id: &str,
        connection_id: &str,
    ) -> Self {
        Self {
            client_certificate: None,
            client_ip,
            endpoint: None,
            distribution_id: distribution_id.to_string(),
            connection_id: connection_id.to_string(),
            leaf: None,
        }
    }

    /// Adds the presented chain (leaf first); certificates that cannot be
    /// parsed are left out of `intermediates`.
    pub fn with_chain(
        mut self,
        leaf: Arc<ClientCertInfo>,
        intermediates: &[impl AsRef<[u8]>],
    ) -> Self {
        self.client_certificate = Some(ClientCertificate {
            certificates: Certificates {
                leaf: CertificateObject::new(&leaf),
                intermediates: intermediates
                    .iter()
                    .filter_map(|c| ClientCertInfo::from_der(c.as_ref()))
                    .map(|i| CertificateObject::new(&i))
                    .collect(),
            },
            revocation_status: None,
        });
        self.leaf = Some(leaf);
        self
    }

    /// Attaches revocation results.
    pub fn with_revocation_status(mut self, status: RevocationStatus) -> Self {
        if let Some(cc) = &mut self.client_certificate {
            cc.revocation_status = Some(status);
        }
        self
    }

    /// Sets the SNI host name.
    pub fn with_endpoint(mut self, sni: Option<String>) -> Self {
        self.endpoint = sni;
        self
    }
}
