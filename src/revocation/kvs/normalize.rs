//! Key normalisation: one spelling per serial number.
//!
//! Serial-only keys collide across CAs, so a key may be scoped by its issuer:
//! `<issuer id>/<serial>`, where the issuer id is the lowercase hex SHA-256
//! of the issuing CA certificate's SubjectPublicKeyInfo (64 hex digits; with
//! OpenSSL: `openssl x509 -in ca.pem -noout -pubkey | openssl pkey -pubin
//! -outform DER | openssl dgst -sha256`).

use std::borrow::Cow;

use crate::revocation::SerialNumber;

/// How a store compares keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeyNormalization {
    /// Byte-for-byte, as CloudFront KeyValueStore does.
    #[default]
    Exact,
    /// Keys that are serial numbers (optionally `issuer/serial`) compare by
    /// number: any case, with or without `:` separators, with or without
    /// the leading `00` sign byte, so `ABC123`, `ab:c1:23` and `00abc123` are
    /// one key (stored as CloudFront's spelling without colons, `00abc123`).
    /// Other keys (not hex) are kept as opaque strings compared after
    /// trimming and ASCII-lowercasing; they never match a certificate.
    SerialNumbers,
}

/// Length of an issuer id in hex digits (SHA-256).
pub(crate) const ISSUER_ID_HEX: usize = 64;

/// The key `key` is stored and looked up under in a store with `mode`.
pub fn normalize_key(mode: KeyNormalization, key: &str) -> Cow<'_, str> {
    match mode {
        KeyNormalization::Exact => Cow::Borrowed(key),
        KeyNormalization::SerialNumbers => normalize_serial_key(key),
    }
}

/// Whether `key` names a serial number (possibly issuer-scoped) rather
/// than an opaque string.
pub(crate) fn is_serial_key(key: &str) -> bool {
    let serial = match key.split_once('/') {
        Some((issuer, serial)) if is_issuer_id(issuer) => serial,
        Some(_) => return false,
        None => key,
    };
    SerialNumber::parse(serial).is_ok()
}

fn normalize_serial_key(key: &str) -> Cow<'_, str> {
    let trimmed = key.trim();
    if is_canonical(trimmed) {
        return Cow::Borrowed(trimmed);
    }
    if let Some((issuer, serial)) = trimmed.split_once('/') {
        if is_issuer_id(issuer) {
            if let Ok(s) = SerialNumber::parse(serial) {
                return Cow::Owned(format!("{}/{}", issuer.to_ascii_lowercase(), s.to_key()));
            }
        }
    } else if let Ok(s) = SerialNumber::parse(trimmed) {
        return Cow::Owned(s.to_key());
    }
    // Lowercasing cannot turn a non-serial into a serial (hex digits and the
    // `0x` prefix are case-blind), so this is idempotent.
    Cow::Owned(trimmed.to_ascii_lowercase())
}

fn is_issuer_id(s: &str) -> bool {
    s.len() == ISSUER_ID_HEX && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Already in canonical form: lowercase hex, even length, minimal sign
/// octets; optionally after a lowercase issuer id and `/`. The hot path
/// (keys the deny list computes) takes this branch and allocates nothing.
fn is_canonical(key: &str) -> bool {
    let serial = match key.split_once('/') {
        Some((issuer, serial)) => {
            if issuer.len() != ISSUER_ID_HEX || !issuer.bytes().all(is_lower_hex) {
                return false;
            }
            serial
        }
        None => key,
    };
    // Positive serials only (negative ones are spelt `-<magnitude>` and take
    // the slow path): the first octet is below 0x80 and a 00 sign octet is
    // there only when the next octet needs it.
    let b = serial.as_bytes();
    if b.is_empty() || b.len() % 2 != 0 || !b.iter().copied().all(is_lower_hex) {
        return false;
    }
    match b {
        [first, ..] if *first >= b'8' => false,
        [b'0', b'0', c, ..] if *c < b'8' => false,
        _ => true,
    }
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(key: &str) -> String {
        normalize_key(KeyNormalization::SerialNumbers, key).into_owned()
    }

    #[test]
    fn serial_spellings_collapse() {
        assert_eq!(n("ABC123DEF456"), "00abc123def456");
        assert_eq!(n("00:ab:c1:23:de:f4:56"), "00abc123def456");
        assert_eq!(n("00abc123def456"), "00abc123def456");
        assert_eq!(n("01"), "01");
        assert_eq!(n("0001"), "01");
        assert_eq!(n("7f"), "7f");
        assert_eq!(n("ff85"), "00ff85");
        assert_eq!(n("85"), "0085");
        assert_eq!(n("-7b"), "-7b");
        assert_eq!(n("-007B"), "-7b");
    }

    #[test]
    fn canonical_keys_are_borrowed() {
        for k in ["00abc123", "01", "00ff85", "7f00", "00"] {
            assert!(matches!(
                normalize_key(KeyNormalization::SerialNumbers, k),
                Cow::Borrowed(_)
            ));
        }
        assert!(!is_canonical("0001"));
        assert!(!is_canonical("ff85"));
        assert!(!is_canonical("85"));
        assert!(!is_canonical("ABC1"));
    }

    #[test]
    fn opaque_keys() {
        assert_eq!(n("789XYZ012GHI"), "789xyz012ghi");
        assert_eq!(n("78:9X:YZ"), "78:9x:yz");
        // Idempotent even where removing separators would make a serial.
        assert_eq!(n("0:x1"), "0:x1");
        assert_eq!(n(&n("0:x1")), "0:x1");
        assert!(!is_serial_key("789XYZ012GHI"));
        assert!(is_serial_key("ABC123DEF456"));
    }

    #[test]
    fn issuer_scoped_keys() {
        let issuer = "AB".repeat(32);
        let key = format!("{issuer}/A7:30:9E");
        assert_eq!(n(&key), format!("{}/00a7309e", "ab".repeat(32)));
        assert!(is_serial_key(&key));
        assert!(!is_serial_key("short/01"));
    }

    #[test]
    fn exact_mode_is_untouched() {
        assert_eq!(normalize_key(KeyNormalization::Exact, "AB:CD"), "AB:CD");
    }
}
