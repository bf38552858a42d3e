//! PEM or DER: the two ways CRLs are published.

use std::borrow::Cow;

use base64::Engine;

use super::CrlError;

const BEGIN: &str = "-----BEGIN X509 CRL-----";
const END: &str = "-----END X509 CRL-----";

/// The DER of a CRL given as DER or as PEM with exactly one `X509 CRL` block
/// (text around the block, CRLF line ends and stray spaces are fine).
pub(crate) fn crl_der(bytes: &[u8]) -> Result<Cow<'_, [u8]>, CrlError> {
    if bytes.first() == Some(&0x30) {
        return Ok(Cow::Borrowed(bytes));
    }
    let Some(begin) = find(bytes, BEGIN.as_bytes()) else {
        let detail = if find(bytes, b"-----BEGIN ").is_some() {
            "PEM without an `X509 CRL` block".to_string()
        } else {
            "neither DER (a SEQUENCE) nor PEM".to_string()
        };
        return Err(CrlError::NotACrl { detail });
    };
    let body_start = begin + BEGIN.len();
    let rest = bytes.get(body_start..).unwrap_or_default();
    let end = find(rest, END.as_bytes()).ok_or_else(|| CrlError::NotACrl {
        detail: format!("no `{END}` line"),
    })?;
    let after = rest.get(end + END.len()..).unwrap_or_default();
    if find(after, BEGIN.as_bytes()).is_some() {
        return Err(CrlError::NotACrl {
            detail: "more than one CRL in the PEM input; add each separately".into(),
        });
    }
    let body: Vec<u8> = rest
        .get(..end)
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(&body)
        .map(Cow::Owned)
        .map_err(|e| CrlError::NotACrl {
            detail: format!("bad base64 in the PEM block: {e}"),
        })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_and_der() {
        let der = [0x30, 0x00];
        assert_eq!(&*crl_der(&der).unwrap(), &der);
        let pem = "junk\r\n-----BEGIN X509 CRL-----\r\nMAA=\r\n-----END X509 CRL-----\r\n";
        assert_eq!(&*crl_der(pem.as_bytes()).unwrap(), &der);
        let two = format!("{pem}{pem}");
        assert!(crl_der(two.as_bytes()).is_err());
        assert!(crl_der(b"-----BEGIN CERTIFICATE-----\n").is_err());
        assert!(crl_der(b"hello").is_err());
        assert!(crl_der(b"-----BEGIN X509 CRL-----\n!!\n-----END X509 CRL-----").is_err());
    }
}
