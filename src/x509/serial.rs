//! Certificate serial numbers: one canonical form for every way people write them.
//!
//! A serial is a DER INTEGER (RFC 5280 §4.1.2.2). Tools print it in many
//! shapes: CloudFront writes the DER octets in lowercase hex separated by
//! colons, sign byte included (`00:a7:30:9e`); ALB and `openssl x509 -serial`
//! write uppercase hex of the number without separators or sign byte
//! (`A7309E`); OpenSSL's `index.txt` writes negative serials with a minus sign
//! (`-05`). [`SerialNumber`] holds the canonical DER contents (minimal two's
//! complement) so every spelling of one number compares equal, in O(1) after
//! parsing.

use super::fields::serial_cloudfront;
use core::fmt;

/// The longest serial accepted from text or a CRL, in octets.
///
/// RFC 5280 allows 20; some CAs exceed it by a byte or two, so the guard is
/// generous while still bounding the work on hostile input.
pub const MAX_SERIAL_OCTETS: usize = 64;

/// A certificate serial number in canonical form: the minimal two's-complement
/// octets of the DER INTEGER (sign byte included when the top bit would
/// otherwise make a positive number negative).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SerialNumber {
    octets: Box<[u8]>,
}

/// Why a text serial could not be read.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SerialParseError {
    /// Nothing but separators or whitespace.
    #[error("empty serial number")]
    Empty,
    /// A character that is not a hex digit, `:` or a leading `-`/`0x`.
    #[error("{character:?} is not a hex digit")]
    NotHex {
        /// The offending character.
        character: char,
    },
    /// More than [`MAX_SERIAL_OCTETS`] octets.
    #[error("serial number longer than {MAX_SERIAL_OCTETS} octets")]
    TooLong,
}

impl SerialNumber {
    /// The serial of DER INTEGER contents, made minimal when they are not.
    ///
    /// Returns `None` for empty or over-long contents.
    pub fn from_der_contents(contents: &[u8]) -> Option<Self> {
        if contents.is_empty() || contents.len() > MAX_SERIAL_OCTETS + 1 {
            return None;
        }
        Some(Self {
            octets: minimal(contents).into(),
        })
    }

    /// Reads a serial written as text.
    ///
    /// Accepted: hex digits in any case, optionally separated by `:` (or
    /// spaces), an optional `0x` prefix, and an optional leading `-` for the
    /// negative serials OpenSSL writes that way. The hex digits are the
    /// magnitude of the number, so `A7309E`, `a7:30:9e`, `00A7309E` and
    /// `00:a7:30:9e` are all the positive serial whose DER contents are
    /// `00 a7 30 9e`.
    pub fn parse(text: &str) -> Result<Self, SerialParseError> {
        let mut s = text.trim();
        let negative = if let Some(rest) = s.strip_prefix('-') {
            s = rest;
            true
        } else {
            false
        };
        if let Some(rest) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            s = rest;
        }
        let mut nibbles: Vec<u8> = Vec::with_capacity(s.len());
        for c in s.chars() {
            if c == ':' || c == ' ' {
                continue;
            }
            let v = c
                .to_digit(16)
                .ok_or(SerialParseError::NotHex { character: c })?;
            // to_digit(16) < 16, so the conversion cannot fail.
            nibbles.push(u8::try_from(v).unwrap_or(0));
            if nibbles.len() > 2 * (MAX_SERIAL_OCTETS + 1) {
                return Err(SerialParseError::TooLong);
            }
        }
        if nibbles.is_empty() {
            return Err(SerialParseError::Empty);
        }
        // Big-endian magnitude octets; an odd count gets a leading zero nibble.
        let mut magnitude = Vec::with_capacity(nibbles.len() / 2 + 1);
        let mut iter = nibbles.iter();
        if nibbles.len() % 2 == 1 {
            magnitude.push(*iter.next().unwrap_or(&0));
        }
        while let (Some(hi), Some(lo)) = (iter.next(), iter.next()) {
            magnitude.push((hi << 4) | lo);
        }
        let start = magnitude
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(magnitude.len());
        let magnitude = magnitude.get(start..).unwrap_or_default();
        if magnitude.len() > MAX_SERIAL_OCTETS {
            return Err(SerialParseError::TooLong);
        }
        Ok(Self::from_magnitude(
            magnitude,
            negative && !magnitude.is_empty(),
        ))
    }

    /// The serial of a (non-negative or negated) magnitude.
    fn from_magnitude(magnitude: &[u8], negative: bool) -> Self {
        let mut octets = Vec::with_capacity(magnitude.len() + 1);
        octets.push(0);
        octets.extend_from_slice(magnitude);
        if negative {
            // Two's complement: invert and add one.
            for b in octets.iter_mut() {
                *b = !*b;
            }
            for b in octets.iter_mut().rev() {
                let (sum, carry) = b.overflowing_add(1);
                *b = sum;
                if !carry {
                    break;
                }
            }
        }
        Self {
            octets: minimal(&octets).into(),
        }
    }

    /// The canonical DER INTEGER contents.
    pub fn as_bytes(&self) -> &[u8] {
        &self.octets
    }

    /// Whether the serial is negative (non-conforming, but found in the wild;
    /// ALB cannot revoke these, this crate can).
    pub fn is_negative(&self) -> bool {
        self.octets.first().is_some_and(|b| b & 0x80 != 0)
    }

    /// CloudFront's spelling: lowercase hex octets separated by `:`, sign
    /// byte included (`00:a7:30:9e`).
    pub fn to_cloudfront(&self) -> String {
        serial_cloudfront(&self.octets)
    }

    /// The deny-list key. For a positive serial: lowercase hex of the
    /// canonical octets without separators (`00a7309e`), exactly what
    /// CloudFront's KeyValueStore recipe computes with
    /// `serialNumber.replaceAll(":", "")`. For a negative serial: `-` and the
    /// magnitude (`-05`), as OpenSSL writes it, so that [`parse`](Self::parse)
    /// of a key always gives back the same key.
    pub fn to_key(&self) -> String {
        let mut out = String::with_capacity(self.octets.len() * 2 + 1);
        if self.is_negative() {
            out.push('-');
            push_hex(&mut out, &self.magnitude());
        } else {
            push_hex(&mut out, &self.octets);
        }
        out
    }

    /// The absolute value's octets, without leading zeros (at least one octet).
    fn magnitude(&self) -> Vec<u8> {
        let mut octets = self.octets.to_vec();
        if self.is_negative() {
            for b in octets.iter_mut() {
                *b = !*b;
            }
            for b in octets.iter_mut().rev() {
                let (sum, carry) = b.overflowing_add(1);
                *b = sum;
                if !carry {
                    break;
                }
            }
        }
        let start = octets
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(octets.len().saturating_sub(1));
        octets.split_off(start)
    }

    /// The same number read as unsigned: a negative serial's octets taken as
    /// a positive magnitude (what a tool that ignores the sign prints).
    pub(crate) fn as_unsigned(&self) -> Option<Self> {
        self.is_negative()
            .then(|| Self::from_magnitude(&self.octets, false))
    }
}

impl fmt::Debug for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SerialNumber({})", self.to_cloudfront())
    }
}

impl fmt::Display for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_cloudfront())
    }
}

impl core::str::FromStr for SerialNumber {
    type Err = SerialParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Strips redundant sign octets (X.690 §8.3.2) so equal numbers compare equal.
fn minimal(mut octets: &[u8]) -> &[u8] {
    while let [first, second, ..] = octets {
        let redundant =
            (*first == 0x00 && second & 0x80 == 0) || (*first == 0xff && second & 0x80 != 0);
        if !redundant {
            break;
        }
        octets = octets.get(1..).unwrap_or_default();
    }
    octets
}

pub(crate) fn push_hex(out: &mut String, octets: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in octets {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// Writes the lowercase hex of `octets` into `buf`, returning the text, or
/// `None` when `buf` is too small (the hot path's allocation-free variant).
pub(crate) fn hex_into<'b>(octets: &[u8], buf: &'b mut [u8]) -> Option<&'b str> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let out = buf.get_mut(..octets.len() * 2)?;
    for (pair, b) in out.chunks_exact_mut(2).zip(octets) {
        if let [hi, lo] = pair {
            *hi = DIGITS[usize::from(b >> 4)];
            *lo = DIGITS[usize::from(b & 0x0f)];
        }
    }
    core::str::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        SerialNumber::parse(s).unwrap().to_key()
    }

    #[test]
    fn every_spelling_of_one_serial_is_equal() {
        for s in [
            "A7309E",
            "a7309e",
            "a7:30:9e",
            "00:a7:30:9e",
            "00A7309E",
            "0x00a7309e",
            "0000a7309e",
            " A7:30:9E ",
        ] {
            assert_eq!(key(s), "00a7309e", "{s}");
        }
        assert_eq!(key("01"), "01");
        assert_eq!(key("1"), "01");
        assert_eq!(key("7f"), "7f");
        assert_eq!(key("80"), "0080");
        assert_eq!(key("0"), "00");
    }

    #[test]
    fn negative_serials() {
        assert_eq!(key("-5"), "-05");
        assert_eq!(key("-05"), "-05");
        assert_eq!(key("-80"), "-80");
        assert_eq!(key("-81"), "-81");
        assert_eq!(key("-0"), "00");
        assert_eq!(
            SerialNumber::parse("-81").unwrap().as_bytes(),
            &[0xff, 0x7f]
        );
        assert_eq!(SerialNumber::parse("-80").unwrap().as_bytes(), &[0x80]);
        let neg = SerialNumber::from_der_contents(&[0xfb]).unwrap();
        assert!(neg.is_negative());
        assert_eq!(neg.to_cloudfront(), "fb");
        assert_eq!(key(&neg.to_key()), neg.to_key());
        assert_eq!(neg, SerialNumber::parse("-5").unwrap());
        assert_eq!(neg.as_unsigned().unwrap().to_key(), "00fb");
    }

    #[test]
    fn der_contents_are_made_minimal() {
        let s = SerialNumber::from_der_contents(&[0x00, 0x00, 0x7f]).unwrap();
        assert_eq!(s.as_bytes(), &[0x7f]);
        let s = SerialNumber::from_der_contents(&[0xff, 0xff, 0x85]).unwrap();
        assert_eq!(s.as_bytes(), &[0x85]);
        assert!(SerialNumber::from_der_contents(&[]).is_none());
    }

    #[test]
    fn cloudfront_spelling() {
        let s = SerialNumber::parse("A7309E737B3E63BDB7C07EBFD5C986").unwrap();
        assert_eq!(
            s.to_cloudfront(),
            "00:a7:30:9e:73:7b:3e:63:bd:b7:c0:7e:bf:d5:c9:86"
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(SerialNumber::parse(""), Err(SerialParseError::Empty));
        assert_eq!(SerialNumber::parse("::"), Err(SerialParseError::Empty));
        assert_eq!(
            SerialNumber::parse("789XYZ012GHI"),
            Err(SerialParseError::NotHex { character: 'X' })
        );
        assert_eq!(
            SerialNumber::parse(&"ab".repeat(70)),
            Err(SerialParseError::TooLong)
        );
    }

    #[test]
    fn hex_into_buffer() {
        let mut buf = [0u8; 8];
        assert_eq!(hex_into(&[0x00, 0xa7], &mut buf), Some("00a7"));
        assert_eq!(hex_into(&[0; 5], &mut buf), None);
    }
}
