//! Strict readers for the encodings certificate headers use: RFC 8941
//! byte sequences and lists of them (RFC 9440 `Client-Cert`,
//! `Client-Cert-Chain`) and percent-encoding (ALB and CloudFront PEM headers).
//!
//! Written from the RFC text rather than with a library, so a header that a
//! lenient parser would accept (missing padding, stray whitespace, a
//! trailing comma) fails the tests.

use base64::Engine as _;

/// RFC 8941 §4.2.7: `sf-binary = ":" *(base64) ":"`, and nothing around it.
pub fn parse_sf_binary(field: &str) -> Result<Vec<u8>, String> {
    let (bytes, rest) = sf_binary_prefix(field)?;
    if rest.is_empty() {
        Ok(bytes)
    } else {
        Err(format!("{rest:?} after the byte sequence in {field:?}"))
    }
}

/// RFC 8941 §4.2.1: a list whose members are all byte sequences, separated
/// by `OWS "," OWS`, without a trailing comma.
pub fn parse_sf_binary_list(field: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut members = Vec::new();
    let mut rest = field;
    loop {
        let (member, after) = sf_binary_prefix(rest)?;
        members.push(member);
        let after = after.trim_start_matches([' ', '\t']);
        if after.is_empty() {
            return Ok(members);
        }
        let after = after
            .strip_prefix(',')
            .ok_or_else(|| format!("expected `,` before {after:?} in {field:?}"))?;
        rest = after.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            return Err(format!("trailing comma in {field:?}"));
        }
    }
}

/// One byte sequence at the start of `input`, and what follows it.
///
/// Stricter than RFC 8941's parser, which tolerates missing `=` padding:
/// RFC 8941 §4.1.8 requires serializers to pad, and this reads what we serialize.
fn sf_binary_prefix(input: &str) -> Result<(Vec<u8>, &str), String> {
    let body = input
        .strip_prefix(':')
        .ok_or_else(|| format!("byte sequence must start with `:`: {input:?}"))?;
    let end = body
        .find(':')
        .ok_or_else(|| format!("unterminated byte sequence: {input:?}"))?;
    let b64 = &body[..end];
    if let Some(bad) = b64
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')))
    {
        return Err(format!("{bad:?} is outside the base64 alphabet"));
    }
    let unpadded = b64.trim_end_matches('=');
    if b64.len() % 4 != 0 || unpadded.contains('=') || b64.len() - unpadded.len() > 2 {
        return Err(format!("not canonically padded base64: {b64:?}"));
    }
    // The standard engine also rejects non-zero trailing bits (non-canonical).
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("base64 {b64:?}: {e}"))?;
    Ok((bytes, &body[end + 1..]))
}

/// Decodes `%XX` escapes (any case); every other byte stands for itself.
/// Fails on a `%` not followed by two hex digits.
pub fn percent_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad escape at byte {i} of {text:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}
