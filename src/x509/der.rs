//! A zero-copy, strict DER walker.
//!
//! Certificates are read on the handshake path, so the parser borrows every
//! field from the input instead of building owned trees. Only definite,
//! minimally encoded lengths and low tag numbers are accepted (X.690 §10.1),
//! and tags stay raw octets so unusual string types (UniversalString,
//! GeneralString) in names never make a certificate unreadable.

/// Raw identifier octets of the universal tags used here.
pub(crate) mod tag {
    pub(crate) const BOOLEAN: u8 = 0x01;
    pub(crate) const INTEGER: u8 = 0x02;
    pub(crate) const BIT_STRING: u8 = 0x03;
    pub(crate) const OCTET_STRING: u8 = 0x04;
    pub(crate) const OID: u8 = 0x06;
    pub(crate) const UTF8_STRING: u8 = 0x0c;
    pub(crate) const NUMERIC_STRING: u8 = 0x12;
    pub(crate) const PRINTABLE_STRING: u8 = 0x13;
    pub(crate) const TELETEX_STRING: u8 = 0x14;
    pub(crate) const IA5_STRING: u8 = 0x16;
    pub(crate) const UTC_TIME: u8 = 0x17;
    pub(crate) const GENERALIZED_TIME: u8 = 0x18;
    pub(crate) const VISIBLE_STRING: u8 = 0x1a;
    pub(crate) const UNIVERSAL_STRING: u8 = 0x1c;
    pub(crate) const BMP_STRING: u8 = 0x1e;
    pub(crate) const SEQUENCE: u8 = 0x30;
    pub(crate) const SET: u8 = 0x31;
}

/// One tag-length-value element borrowed from the input.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    /// The identifier octet.
    pub(crate) tag: u8,
    /// The contents octets.
    pub(crate) value: &'a [u8],
    /// The whole encoding, header included.
    pub(crate) full: &'a [u8],
}

/// A cursor over a run of DER elements.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DerCursor<'a> {
    rest: &'a [u8],
}

/// A DER structure error: which field was being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DerError(pub(crate) &'static str);

impl<'a> DerCursor<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Reads the next element, whatever its tag.
    pub(crate) fn any(&mut self, what: &'static str) -> Result<Tlv<'a>, DerError> {
        let err = DerError(what);
        let (&tag, after_tag) = self.rest.split_first().ok_or(err)?;
        if tag & 0x1f == 0x1f {
            return Err(err); // high-tag-number form: never used in X.509
        }
        let (&first, mut after_len) = after_tag.split_first().ok_or(err)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(err); // indefinite or absurd length
            }
            let bytes = after_len.get(..n).ok_or(err)?;
            after_len = after_len.get(n..).ok_or(err)?;
            if bytes.first() == Some(&0) {
                return Err(err); // not minimal
            }
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 {
                return Err(err); // should have used the short form
            }
            len
        };
        let value = after_len.get(..len).ok_or(err)?;
        let header_len = self.rest.len() - after_len.len();
        let full = self.rest.get(..header_len + len).ok_or(err)?;
        self.rest = after_len.get(len..).ok_or(err)?;
        Ok(Tlv { tag, value, full })
    }

    /// Reads the next element and requires `tag`.
    pub(crate) fn expect(&mut self, tag: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
        let tlv = self.any(what)?;
        if tlv.tag != tag {
            return Err(DerError(what));
        }
        Ok(tlv)
    }

    /// Reads the next element only when it carries `tag`.
    pub(crate) fn optional(
        &mut self,
        tag: u8,
        what: &'static str,
    ) -> Result<Option<Tlv<'a>>, DerError> {
        match self.rest.first() {
            Some(t) if *t == tag => self.any(what).map(Some),
            _ => Ok(None),
        }
    }

    /// Requires that every byte was consumed.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), DerError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DerError(what))
        }
    }
}

/// Reads exactly one element spanning all of `input`.
pub(crate) fn single<'a>(
    input: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<Tlv<'a>, DerError> {
    let mut cursor = DerCursor::new(input);
    let tlv = cursor.expect(tag, what)?;
    cursor.finish(what)?;
    Ok(tlv)
}

/// The contents of a BIT STRING with no unused bits (keys and signatures).
pub(crate) fn bit_string_octets<'a>(
    tlv: Tlv<'a>,
    what: &'static str,
) -> Result<&'a [u8], DerError> {
    match tlv.value.split_first() {
        Some((0, rest)) => Ok(rest),
        _ => Err(DerError(what)),
    }
}

/// A context-specific tag `[n]`, primitive or constructed.
pub(crate) const fn context(n: u8, constructed: bool) -> u8 {
    0x80 | if constructed { 0x20 } else { 0 } | (n & 0x1f)
}

/// Why a certificate could not be parsed; the `&'static str` names the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CertParseError(pub(crate) &'static str);

impl From<DerError> for CertParseError {
    fn from(e: DerError) -> Self {
        Self(e.0)
    }
}

/// Whether an INTEGER's content octets are minimally encoded (X.690
/// §8.3.2): not empty, no redundant leading `00` or `FF` octet.
pub(crate) fn check_integer_encoding(bytes: &[u8]) -> Option<()> {
    match bytes {
        [] => None,
        [0x00, next, ..] if next & 0x80 == 0 => None,
        [0xff, next, ..] if next & 0x80 != 0 => None,
        _ => Some(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_minimal_lengths() {
        assert!(DerCursor::new(&[0x04, 0x81, 0x01, 0x00]).any("x").is_err());
        assert!(DerCursor::new(&[0x04, 0x80, 0x00, 0x00]).any("x").is_err());
        assert!(DerCursor::new(&[0x04, 0x82, 0x00, 0x81]).any("x").is_err());
        let t = DerCursor::new(&[0x04, 0x01, 0xaa]).any("x").unwrap();
        assert_eq!((t.tag, t.value), (0x04, &[0xaa][..]));
    }
}
