//! Distinguished names as text: RFC 2253 / RFC 4514 strings.
//!
//! Used in error messages, headers (`CloudFront-Viewer-Cert-Subject`) and
//! logs. The attribute short names follow OpenSSL's `-nameopt RFC2253`
//! output, so the strings match what operators see from the `openssl` CLI.

use std::borrow::Cow;

use crate::x509::der::{tag, DerCursor};

/// Short names for attribute types, by encoded OID contents.
const SHORT_NAMES: &[(&[u8], &str)] = &[
    (&[0x55, 0x04, 0x03], "CN"),
    (&[0x55, 0x04, 0x04], "SN"),
    (&[0x55, 0x04, 0x05], "serialNumber"),
    (&[0x55, 0x04, 0x06], "C"),
    (&[0x55, 0x04, 0x07], "L"),
    (&[0x55, 0x04, 0x08], "ST"),
    (&[0x55, 0x04, 0x09], "street"),
    (&[0x55, 0x04, 0x0a], "O"),
    (&[0x55, 0x04, 0x0b], "OU"),
    (&[0x55, 0x04, 0x0c], "title"),
    (&[0x55, 0x04, 0x2a], "GN"),
    (&[0x55, 0x04, 0x2b], "initials"),
    (&[0x55, 0x04, 0x2e], "dnQualifier"),
    (&[0x55, 0x04, 0x41], "pseudonym"),
    (&[0x55, 0x04, 0x61], "organizationIdentifier"),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19],
        "DC",
    ),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01],
        "UID",
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01],
        "emailAddress",
    ),
];

/// Formats a DER-encoded Name in RFC 2253 order (last RDN first), e.g.
/// `CN=client,OU=rootCA,O=mTLS,L=Seattle,ST=Washington,C=US`.
///
/// Returns `None` when the encoding is malformed.
pub fn rfc2253(name_der: &[u8]) -> Option<String> {
    format(name_der, true, ",")
}

/// Formats a DER-encoded Name in CloudFront's connection-log style: RDNs in
/// encoded order joined by `, ` (`C=US, ST=WA, O=Example, CN=client`).
pub fn log_style(name_der: &[u8]) -> Option<String> {
    format(name_der, false, ", ")
}

/// Formats a DER-encoded Name as CloudFront's connection object does:
/// RFC 2253 order joined by `, ` (`CN=client.example.com, O=Example Org`).
#[cfg(test)]
pub(crate) fn connection_style(name_der: &[u8]) -> Option<String> {
    format(name_der, true, ", ")
}

/// [`rfc2253`]'s text of a Name in CloudFront's connection-object style
/// (what `connection_style` formats from the DER): the same attributes,
/// the RDNs joined by `, ` instead of `,`. A `,` inside a value is always
/// escaped (`\,`), and an escape is a backslash and the character after
/// it, so every unescaped `,` separates RDNs.
pub(crate) fn connection_style_of(rfc2253: &str) -> String {
    let mut out = String::with_capacity(rfc2253.len() + 16);
    let mut chars = rfc2253.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                out.extend(chars.next());
            }
            ',' => out.push_str(", "),
            c => out.push(c),
        }
    }
    out
}

/// The commonName values of a DER-encoded Name, decoded to text; `None` when
/// the Name is malformed or a commonName is not a readable string.
pub(crate) fn common_names(name_der: &[u8]) -> Option<Vec<String>> {
    const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
    let mut out = Vec::new();
    for rdn in rdns(name_der)? {
        for (oid, (tag, value, _)) in rdn {
            if oid == COMMON_NAME {
                out.push(decode_string(tag, value)?.into_owned());
            }
        }
    }
    Some(out)
}

fn format(name_der: &[u8], reverse: bool, separator: &str) -> Option<String> {
    let mut rdns = rdns(name_der)?;
    if reverse {
        rdns.reverse();
    }
    let mut out = String::with_capacity(name_der.len());
    for (i, rdn) in rdns.iter().enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        for (j, (oid, value)) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            push_attribute(&mut out, oid, *value);
        }
    }
    Some(out)
}

type Rdn<'a> = Vec<(&'a [u8], (u8, &'a [u8], &'a [u8]))>;

fn rdns(name_der: &[u8]) -> Option<Vec<Rdn<'_>>> {
    let seq = crate::x509::der::single(name_der, tag::SEQUENCE, "Name").ok()?;
    let mut out = Vec::new();
    let mut c = DerCursor::new(seq.value);
    while !c.is_empty() {
        let set = c.expect(tag::SET, "RDN").ok()?;
        let mut atvs = DerCursor::new(set.value);
        let mut rdn = Vec::new();
        while !atvs.is_empty() {
            let atv = atvs.expect(tag::SEQUENCE, "AttributeTypeAndValue").ok()?;
            let mut f = DerCursor::new(atv.value);
            let oid = f.expect(tag::OID, "type").ok()?.value;
            let v = f.any("value").ok()?;
            f.finish("AttributeTypeAndValue").ok()?;
            rdn.push((oid, (v.tag, v.value, v.full)));
        }
        if rdn.is_empty() {
            return None;
        }
        out.push(rdn);
    }
    Some(out)
}

fn push_attribute(out: &mut String, oid: &[u8], (tag, value, full): (u8, &[u8], &[u8])) {
    let short = SHORT_NAMES.iter().find(|(o, _)| *o == oid).map(|(_, n)| *n);
    let text = decode_string(tag, value);
    match (short, text) {
        (Some(name), Some(text)) => {
            out.push_str(name);
            out.push('=');
            escape_into(out, &text);
        }
        (name, _) => {
            // RFC 4514 §2.4: an unknown type or non-string value is `OID=#<hex of the BER>`.
            match name {
                Some(n) if text_is_possible(tag) => out.push_str(n),
                _ => out.push_str(&dotted(oid)),
            }
            out.push_str("=#");
            for b in full {
                out.push_str(&format!("{b:02x}"));
            }
        }
    }
}

fn text_is_possible(tag: u8) -> bool {
    decode_string(tag, &[]).is_some()
}

fn dotted(oid: &[u8]) -> String {
    der::asn1::ObjectIdentifier::from_bytes(oid)
        .map(|o| o.to_string())
        .unwrap_or_else(|_| "0.0".to_string())
}

/// Decodes the directory string types to text.
fn decode_string(tag: u8, value: &[u8]) -> Option<Cow<'_, str>> {
    match tag {
        tag::UTF8_STRING => core::str::from_utf8(value).ok().map(Cow::Borrowed),
        tag::PRINTABLE_STRING | tag::IA5_STRING | tag::VISIBLE_STRING | tag::NUMERIC_STRING => {
            // ASCII is UTF-8.
            let ascii = value.is_ascii().then(|| core::str::from_utf8(value).ok());
            ascii.flatten().map(Cow::Borrowed)
        }
        // T.61 in theory; Latin-1 in practice (as OpenSSL treats it).
        tag::TELETEX_STRING => Some(Cow::Owned(value.iter().map(|b| char::from(*b)).collect())),
        tag::BMP_STRING => {
            if value.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = value
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok().map(Cow::Owned)
        }
        tag::UNIVERSAL_STRING => {
            // UniversalString (UCS-4).
            if value.len() % 4 != 0 {
                return None;
            }
            value
                .chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect::<Option<String>>()
                .map(Cow::Owned)
        }
        _ => None,
    }
}

/// RFC 4514 §2.4 escaping.
fn escape_into(out: &mut String, value: &str) {
    let last = value.chars().count().saturating_sub(1);
    for (i, ch) in value.chars().enumerate() {
        match ch {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => {
                out.push('\\');
                out.push(ch);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            // Control characters as `\XX` hex pairs: legal in RFC 4514 and
            // keeps the string usable as an HTTP header value.
            c if c.is_control() && (c as u32) < 0x80 => {
                out.push_str(&format!("\\{:02X}", c as u32));
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_specials() {
        let mut s = String::new();
        escape_into(&mut s, "#a, b+c ");
        assert_eq!(s, "\\#a\\, b\\+c\\ ");
    }
}
