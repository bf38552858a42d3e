//! Removing client-sent copies of certificate headers (spoofing protection).
//!
//! A client must never be able to pose as verified by sending
//! `CloudFront-Viewer-Cert-Present: 1` itself. Every header any profile could
//! emit is removed from every request, in every mode, whether or not a
//! certificate was presented. Names are compared case-insensitively and with
//! `_` read as `-`, because some servers and CGI-style gateways fold the two.

use http::header::{HeaderMap, HeaderName};

/// Exact names any built-in profile can emit (lowercase, `-` form).
const RESERVED_NAMES: &[&str] = &[
    "x-amzn-mtls-clientcert",
    "x-amzn-tls-version",
    "x-amzn-tls-cipher-suite",
    "client-cert",
    "client-cert-chain",
    "x-forwarded-client-cert",
];

/// Prefixes whose whole families are reserved.
const RESERVED_PREFIXES: &[&str] = &["cloudfront-viewer-cert-", "x-amzn-mtls-clientcert-"];

/// Names and prefixes a particular configuration adds (renames, connection
/// id header, custom prefixes), already lowercase in `-` form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reserved {
    pub(crate) names: Vec<String>,
    pub(crate) prefixes: Vec<String>,
}

impl Reserved {
    /// Whether one of these names or prefixes begins with `byte`.
    fn starts_with_byte(&self, byte: u8) -> bool {
        self.names
            .iter()
            .chain(&self.prefixes)
            .any(|n| n.as_bytes().first() == Some(&byte))
    }
}

/// Whether `name` (any case, `_` or `-`) is a header a built-in profile emits.
pub fn is_reserved_header(name: &str) -> bool {
    is_reserved_with(name, &Reserved::default())
}

pub(crate) fn is_reserved_with(name: &str, extra: &Reserved) -> bool {
    let folded;
    let name = if name.bytes().any(|b| b == b'_' || b.is_ascii_uppercase()) {
        folded = name.to_ascii_lowercase().replace('_', "-");
        folded.as_str()
    } else {
        name
    };
    RESERVED_NAMES.contains(&name)
        || RESERVED_PREFIXES.iter().any(|p| name.starts_with(p))
        || extra.names.iter().any(|n| n == name)
        || extra.prefixes.iter().any(|p| name.starts_with(p.as_str()))
}

/// Removes every header a built-in profile could emit.
pub fn sanitize(headers: &mut HeaderMap) {
    sanitize_with(headers, &Reserved::default());
}

pub(crate) fn sanitize_with(headers: &mut HeaderMap, extra: &Reserved) {
    // Collected first: a HeaderMap cannot be mutated while its keys are borrowed.
    let mut doomed: Vec<HeaderName> = Vec::new();
    for name in headers.keys() {
        // Most request headers start with a letter no reserved name starts
        // with: one byte decides (`_` folds to `-`, case is already lower).
        let first = match name.as_str().as_bytes().first() {
            Some(b'_') => b'-',
            Some(b) => *b,
            None => continue,
        };
        if !matches!(first, b'c' | b'x') && !extra.starts_with_byte(first) {
            continue;
        }
        if is_reserved_with(name.as_str(), extra) {
            doomed.push(name.clone());
        }
    }
    for name in doomed {
        headers.remove(&name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sanitize_with` skips names whose first byte no reserved name has:
    /// every built-in name and prefix must start with `c` or `x`.
    #[test]
    fn built_in_names_start_with_the_bytes_the_fast_path_checks() {
        for name in RESERVED_NAMES.iter().chain(RESERVED_PREFIXES) {
            assert!(matches!(name.as_bytes()[0], b'c' | b'x'), "{name}");
        }
    }

    #[test]
    fn custom_names_are_removed_whatever_their_first_byte() {
        let extra = Reserved {
            names: vec!["my-identity".into()],
            prefixes: vec!["_edge-".into(), "-edge-".into()],
        };
        let mut map = HeaderMap::new();
        for name in [
            "my-identity",
            "my_identity",
            "-edge-x",
            "host",
            "x-forwarded-client-cert",
        ] {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_static("v"),
            );
        }
        sanitize_with(&mut map, &extra);
        let left: Vec<&str> = map.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["host"]);
    }

    #[test]
    fn underscore_and_case_variants_are_reserved() {
        assert!(is_reserved_header("X_Forwarded_Client_Cert"));
        assert!(is_reserved_header("cloudfront_viewer_cert_present"));
        assert!(is_reserved_header("CLIENT-CERT"));
        assert!(!is_reserved_header("cloudfront-viewer-country"));
        assert!(!is_reserved_header("content-type"));
    }
}
