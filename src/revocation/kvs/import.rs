//! Imports: CloudFront's KeyValueStore JSON and plain-text serial lists.
//!
//! KVS JSON is what `aws cloudfront create-key-value-store --import-source`
//! takes: `{"data":[{"key":"ABC123DEF456","value":""},...]}`. A text list is
//! one serial per line; `#` starts a comment; blank lines are ignored.
//!
//! Keys that are not hex (the CloudFront documentation's own example has
//! `789XYZ012GHI`) are accepted from KVS JSON as opaque keys — CloudFront
//! accepts any key — and listed in the [`ImportReport`] so a typo is visible;
//! they can never match a certificate. [`ImportOptions::strict`] rejects them
//! instead, naming the entry. Text lists are serial lists: a line that is not
//! a serial is always an error naming the line.

use std::borrow::Cow;

use serde::Deserialize;

use super::normalize::is_serial_key;
use super::{ImportLocation, KeyNormalization, KvsError, MemoryKeyValueStore};
use crate::revocation::SerialNumber;

/// How an import behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportOptions {
    /// Reject keys that are not serial numbers (default: keep them as opaque keys).
    pub strict: bool,
    /// Replace the store's content instead of adding to it (default: add).
    pub replace: bool,
    /// Largest accepted input, in bytes (default 256 MiB).
    pub max_input_bytes: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            strict: false,
            replace: false,
            max_input_bytes: 256 * 1024 * 1024,
        }
    }
}

impl ImportOptions {
    /// Strict: every key must be a serial number.
    pub fn strict() -> Self {
        Self {
            strict: true,
            ..Self::default()
        }
    }
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportReport {
    /// Entries read.
    pub entries: usize,
    /// Entries that named a key already named earlier in the same input
    /// (after normalisation); the later value wins.
    pub duplicates: usize,
    /// Keys kept as opaque strings because they are not serial numbers (the
    /// first 100, as written).
    pub opaque_keys: Vec<String>,
    /// How many opaque keys there were in all.
    pub opaque_key_count: usize,
}

const OPAQUE_LISTED: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KvsJson<'a> {
    #[serde(borrow)]
    data: Vec<KvsJsonEntry<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KvsJsonEntry<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow, default)]
    value: Cow<'a, str>,
}

impl MemoryKeyValueStore {
    /// Imports CloudFront KeyValueStore JSON. All or nothing: any error
    /// leaves the store unchanged.
    pub fn import_kvs_json(
        &self,
        json: &[u8],
        options: ImportOptions,
    ) -> Result<ImportReport, KvsError> {
        check_size(json.len(), options)?;
        let parsed: KvsJson<'_> =
            serde_json::from_slice(json).map_err(|e| KvsError::InvalidJson {
                detail: e.to_string(),
            })?;
        let entries = parsed
            .data
            .iter()
            .enumerate()
            .map(|(i, e)| (ImportLocation::Entry(i), e.key.as_ref(), e.value.as_ref()));
        self.import_entries(entries, parsed.data.len(), options, options.strict)
    }

    /// Imports a plain-text serial list (one serial or `issuer/serial` per
    /// line, `#` comments). All or nothing.
    pub fn import_serial_list(
        &self,
        text: &[u8],
        options: ImportOptions,
    ) -> Result<ImportReport, KvsError> {
        check_size(text.len(), options)?;
        let text = String::from_utf8_lossy(text);
        let lines: Vec<(ImportLocation, &str)> = text
            .lines()
            .enumerate()
            .filter_map(|(i, line)| {
                let content = line.split('#').next().unwrap_or_default().trim();
                (!content.is_empty()).then_some((ImportLocation::Line(i + 1), content))
            })
            .collect();
        let count = lines.len();
        self.import_entries(
            lines.into_iter().map(|(loc, key)| (loc, key, "")),
            count,
            options,
            true,
        )
    }

    fn import_entries<'k>(
        &self,
        entries: impl Iterator<Item = (ImportLocation, &'k str, &'k str)>,
        count: usize,
        options: ImportOptions,
        strict: bool,
    ) -> Result<ImportReport, KvsError> {
        let serials = self.key_normalization() == KeyNormalization::SerialNumbers;
        let mut report = ImportReport {
            entries: count,
            ..ImportReport::default()
        };
        let mut prepared = Vec::with_capacity(count);
        for (location, key, value) in entries {
            if key.trim().is_empty() {
                return Err(KvsError::EmptyKey {
                    location: Some(location),
                });
            }
            if serials && !is_serial_key(key) {
                if strict {
                    return Err(KvsError::InvalidSerial {
                        location,
                        key: key.to_string(),
                        reason: serial_error(key),
                    });
                }
                report.opaque_key_count += 1;
                if report.opaque_keys.len() < OPAQUE_LISTED {
                    report.opaque_keys.push(key.to_string());
                }
            }
            prepared.push(self.prepare(key, value)?);
        }
        let distinct = {
            let mut keys: Vec<&str> = prepared.iter().map(|(k, _)| k.as_ref()).collect();
            keys.sort_unstable();
            keys.dedup();
            keys.len()
        };
        report.duplicates = prepared.len() - distinct;
        self.apply(prepared, options.replace)?;
        Ok(report)
    }
}

fn check_size(len: usize, options: ImportOptions) -> Result<(), KvsError> {
    if len > options.max_input_bytes {
        return Err(KvsError::InputTooLarge {
            bytes: len,
            limit: options.max_input_bytes,
        });
    }
    Ok(())
}

/// The serial parse error of a key (its serial part when issuer-scoped).
fn serial_error(key: &str) -> crate::revocation::SerialParseError {
    let serial = key.split_once('/').map_or(key, |(_, s)| s);
    match SerialNumber::parse(serial) {
        Err(e) => e,
        // The serial part parses, so the issuer part is what is wrong.
        Ok(_) => crate::revocation::SerialParseError::NotHex {
            character: key.chars().find(|c| !c.is_ascii_hexdigit()).unwrap_or('/'),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::kvs::KeyValueStore;

    const SEED_JSON: &str = r#"{ "data": [ { "key": "ABC123DEF456", "value": "" }, { "key": "789XYZ012GHI", "value": "" } ] }"#;

    #[test]
    fn seed_example_imports_with_one_opaque_key() {
        let s = MemoryKeyValueStore::for_serial_numbers();
        let report = s
            .import_kvs_json(SEED_JSON.as_bytes(), ImportOptions::default())
            .unwrap();
        assert_eq!(report.entries, 2);
        assert_eq!(report.opaque_keys, vec!["789XYZ012GHI".to_string()]);
        assert_eq!(s.exists_local("ab:c1:23:de:f4:56"), Some(true));
        assert_eq!(s.exists_local("789xyz012ghi"), Some(true));
    }

    #[test]
    fn strict_import_names_the_bad_key() {
        let s = MemoryKeyValueStore::for_serial_numbers();
        let err = s
            .import_kvs_json(SEED_JSON.as_bytes(), ImportOptions::strict())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "data[1]: key \"789XYZ012GHI\" is not a serial number: 'X' is not a hex digit"
        );
        assert!(s.is_empty(), "all or nothing");
    }

    #[test]
    fn text_lists() {
        let s = MemoryKeyValueStore::for_serial_numbers();
        let text = b"# revoked 2024-05\n01\n  A7:30:9E  # laptop\n\n00a7309e\n-05\n";
        let report = s
            .import_serial_list(text, ImportOptions::default())
            .unwrap();
        assert_eq!((report.entries, report.duplicates), (4, 1));
        assert_eq!(s.len(), 3);
        let err = s
            .import_serial_list(b"01\nzz\n", ImportOptions::default())
            .unwrap_err();
        assert!(err.to_string().starts_with("line 2: key \"zz\""), "{err}");
    }

    #[test]
    fn malformed_json_is_reported() {
        let s = MemoryKeyValueStore::for_serial_numbers();
        for bad in [&b"{"[..], b"{\"data\":{}}", b"{\"data\":[],\"x\":1}", b"[]"] {
            assert!(matches!(
                s.import_kvs_json(bad, ImportOptions::default()),
                Err(KvsError::InvalidJson { .. })
            ));
        }
    }

    #[test]
    fn replace_and_size_limit() {
        let s = MemoryKeyValueStore::for_serial_numbers();
        s.put("01", "").unwrap();
        let opts = ImportOptions {
            replace: true,
            ..ImportOptions::default()
        };
        s.import_serial_list(b"02\n", opts).unwrap();
        assert_eq!(s.exists_local("01"), Some(false));
        let small = ImportOptions {
            max_input_bytes: 2,
            ..ImportOptions::default()
        };
        assert!(matches!(
            s.import_serial_list(b"0102\n", small),
            Err(KvsError::InputTooLarge { .. })
        ));
    }
}
