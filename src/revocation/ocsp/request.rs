//! Encoding OCSP requests (RFC 6960 §4.1) with `x509-ocsp`, and the GET
//! form of RFC 6960 Appendix A.1.

use base64::Engine;
use der::asn1::{Null, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::builder::OcspRequestBuilder;
use x509_ocsp::ext::Nonce;
use x509_ocsp::{CertId, Request, Version};

use super::cert_id::CertIdKey;
use super::error::OcspError;

/// RFC 5019 §5: use GET when the encoded request is shorter than 255 bytes
/// (responders and caches behind CDNs answer GETs from cache).
pub(crate) const MAX_GET_ENCODED_LEN: usize = 255;

/// An encoded request and what its response must echo.
#[derive(Clone, Debug)]
pub(crate) struct EncodedRequest {
    /// The DER OCSPRequest.
    pub(crate) der: Vec<u8>,
    /// The nonce extension's extnValue contents as sent (the DER of the
    /// nonce OCTET STRING), when a nonce was sent.
    pub(crate) nonce_value: Option<Vec<u8>>,
}

/// The INTEGER encoding of serialNumber `contents` (at most
/// [`MAX_SERIAL_LEN`](super::cert_id::MAX_SERIAL_LEN) octets: short-form length).
fn integer_tlv(contents: &[u8]) -> Result<Vec<u8>, OcspError> {
    let len = u8::try_from(contents.len())
        .ok()
        .filter(|l| *l < 0x80)
        .ok_or_else(|| OcspError::RequestEncoding("serial number too long".into()))?;
    let mut tlv = Vec::with_capacity(contents.len() + 2);
    tlv.extend_from_slice(&[0x02, len]);
    tlv.extend_from_slice(contents);
    Ok(tlv)
}

/// Encodes a one-certificate request for `key`.
pub(crate) fn encode_request(
    key: &CertIdKey,
    nonce: Option<&[u8]>,
) -> Result<EncodedRequest, OcspError> {
    let encoding = |e: der::Error| OcspError::RequestEncoding(e.to_string());
    let cert_id = CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::from_bytes(key.hash.oid())
                .map_err(|e| OcspError::RequestEncoding(format!("hash algorithm OID: {e}")))?,
            parameters: Some(Null.into()),
        },
        issuer_name_hash: OctetString::new(key.name_hash()).map_err(encoding)?,
        issuer_key_hash: OctetString::new(key.key_hash()).map_err(encoding)?,
        serial_number: SerialNumber::from_der(&integer_tlv(&key.serial)?).map_err(encoding)?,
    };
    let mut builder = OcspRequestBuilder::new(Version::V1).with_request(Request::new(cert_id));
    let mut nonce_value = None;
    if let Some(bytes) = nonce {
        let nonce = Nonce::new(bytes.to_vec()).map_err(encoding)?;
        nonce_value = Some(nonce.0.to_der().map_err(encoding)?);
        builder = builder
            .with_extension(nonce)
            .map_err(|e| OcspError::RequestEncoding(e.to_string()))?;
    }
    let der = builder.build().to_der().map_err(encoding)?;
    Ok(EncodedRequest { der, nonce_value })
}

/// The GET URL for `der` under `base` (RFC 6960 A.1: the URL-encoded base64
/// of the DER appended as a path segment), or `None` when it would be too
/// long for GET.
pub(crate) fn get_url(base: &str, der: &[u8]) -> Option<String> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut segment = String::with_capacity(b64.len() + 16);
    for c in b64.chars() {
        // RFC 3986 reserved characters of the base64 alphabet.
        match c {
            '+' => segment.push_str("%2B"),
            '/' => segment.push_str("%2F"),
            '=' => segment.push_str("%3D"),
            c => segment.push(c),
        }
    }
    if segment.len() >= MAX_GET_ENCODED_LEN {
        return None;
    }
    let sep = if base.ends_with('/') { "" } else { "/" };
    Some(format!("{base}{sep}{segment}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::ocsp::cert_id::CertIdHash;

    fn key() -> CertIdKey {
        CertIdKey {
            hash: CertIdHash::Sha1,
            issuer_name_hash: [0x11; 32],
            issuer_key_hash: [0x22; 32],
            serial: vec![0x01].into(),
        }
    }

    #[test]
    fn encodes_a_sha1_request() {
        let req = encode_request(&key(), None).unwrap();
        let decoded = x509_ocsp::OcspRequest::from_der(&req.der).unwrap();
        let one = &decoded.tbs_request.request_list[0].req_cert;
        assert_eq!(one.issuer_name_hash.as_bytes(), &[0x11; 20]);
        assert_eq!(one.issuer_key_hash.as_bytes(), &[0x22; 20]);
        assert_eq!(one.serial_number.as_bytes(), &[0x01]);
        assert_eq!(one.hash_algorithm.oid.to_string(), "1.3.14.3.2.26");
        assert!(decoded.tbs_request.request_extensions.is_none());
        assert!(req.nonce_value.is_none());
    }

    #[test]
    fn encodes_the_nonce_as_an_octet_string_extension() {
        let req = encode_request(&key(), Some(&[7; 16])).unwrap();
        let decoded = x509_ocsp::OcspRequest::from_der(&req.der).unwrap();
        let exts = decoded.tbs_request.request_extensions.unwrap();
        assert_eq!(exts[0].extn_id.to_string(), "1.3.6.1.5.5.7.48.1.2");
        let value = req.nonce_value.unwrap();
        assert_eq!(exts[0].extn_value.as_bytes(), value.as_slice());
        assert_eq!(&value[..2], &[0x04, 16]);
    }

    #[test]
    fn get_urls_escape_base64_and_respect_the_length_limit() {
        let url = get_url("http://ocsp.example/", &[0xfb, 0xff, 0xfe]).unwrap();
        assert_eq!(url, "http://ocsp.example/%2B%2F%2F%2B");
        let url = get_url("http://ocsp.example", &[0x00]).unwrap();
        assert_eq!(url, "http://ocsp.example/AA%3D%3D");
        assert!(get_url("http://o", &[0u8; 200]).is_none());
    }
}
