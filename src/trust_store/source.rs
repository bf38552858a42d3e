//! Where CA bundles come from.

use std::fmt;
use std::path::PathBuf;

use super::{TrustStoreError, TrustStoreLimits};
use crate::file_input::read_bounded;

/// A place CA bundles are read from: bytes, a file, a directory, or a
/// remote store implemented by the application.
pub trait TrustStoreSource: Send + Sync + fmt::Debug {
    /// Reads every bundle as `(name, bytes)`; the name appears in errors.
    fn bundles(&self) -> Result<Vec<(String, Vec<u8>)>, TrustStoreError>;
}

/// A bundle held in memory.
#[derive(Clone, Debug)]
pub struct BytesSource {
    name: String,
    bytes: Vec<u8>,
}

impl BytesSource {
    /// A named in-memory bundle.
    pub fn new(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            bytes: bytes.into(),
        }
    }
}

impl TrustStoreSource for BytesSource {
    fn bundles(&self) -> Result<Vec<(String, Vec<u8>)>, TrustStoreError> {
        Ok(vec![(self.name.clone(), self.bytes.clone())])
    }
}

/// A bundle file (PEM or DER).
#[derive(Clone, Debug)]
pub struct FileSource {
    path: PathBuf,
}

impl FileSource {
    /// The file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl TrustStoreSource for FileSource {
    fn bundles(&self) -> Result<Vec<(String, Vec<u8>)>, TrustStoreError> {
        // Bounded before allocation by the default bundle limit; the
        // builder compares the configured limit afterwards.
        let limit = u64::try_from(TrustStoreLimits::default().max_bundle_bytes).unwrap_or(u64::MAX);
        let bytes = read_bounded(&self.path, limit)?;
        Ok(vec![(self.path.display().to_string(), bytes)])
    }
}

/// Every `.pem`, `.crt`, `.cer` and `.der` file of a directory, in name order.
#[derive(Clone, Debug)]
pub struct DirectorySource {
    path: PathBuf,
}

impl DirectorySource {
    /// The directory at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl TrustStoreSource for DirectorySource {
    fn bundles(&self) -> Result<Vec<(String, Vec<u8>)>, TrustStoreError> {
        let io = |source| TrustStoreError::Io {
            path: self.path.clone(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.path).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let wanted = path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                matches!(
                    e.to_ascii_lowercase().as_str(),
                    "pem" | "crt" | "cer" | "der"
                )
            });
            if wanted && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut out = Vec::with_capacity(files.len());
        for path in files {
            out.extend(FileSource::new(path).bundles()?);
        }
        Ok(out)
    }
}
