//! Reading the files a configuration names, bounded before allocation.
//!
//! A CA bundle, a CRL, a key or a deny list named by mistake as `/dev/zero`,
//! a FIFO or a multi-gigabyte file must fail at once with the file's name,
//! not allocate without bound. Every file the crate reads goes through
//! [`read_bounded`]: it refuses anything but a regular file before opening
//! it (opening a FIFO without a writer would block), compares the size with
//! the limit before reading, and reads at most `limit + 1` bytes in case the
//! file grows meanwhile.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a file could not be read.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum FileInputError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The path names a directory, a FIFO, a device or a socket where a
    /// regular file is expected.
    #[error("{path}: not a regular file ({kind})")]
    NotARegularFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file is larger than the limit for what it holds.
    #[error("{path}: larger than the limit of {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
}

/// Reads the regular file at `path`, refusing it unread when it is not a
/// regular file or holds more than `limit` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, FileInputError> {
    let io = |source| FileInputError::Io {
        path: path.to_path_buf(),
        source,
    };
    check_regular(path, &std::fs::metadata(path).map_err(io)?, limit)?;
    let file = File::open(path).map_err(io)?;
    // The path may have been replaced between the two looks.
    check_regular(path, &file.metadata().map_err(io)?, limit)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(FileInputError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

fn check_regular(path: &Path, meta: &std::fs::Metadata, limit: u64) -> Result<(), FileInputError> {
    let file_type = meta.file_type();
    if !file_type.is_file() {
        return Err(FileInputError::NotARegularFile {
            path: path.to_path_buf(),
            kind: kind_of(&file_type),
        });
    }
    if meta.len() > limit {
        return Err(FileInputError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(())
}

fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_bounded(&path, 10).unwrap(), b"0123456789");
        let e = read_bounded(&path, 9).unwrap_err();
        assert!(
            matches!(e, FileInputError::TooLarge { limit: 9, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("ca.pem"), "{e}");
    }

    #[test]
    fn devices_directories_and_huge_sparse_files_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_bounded(dir.path(), 1 << 20).unwrap_err();
        assert!(
            e.to_string().ends_with("not a regular file (a directory)"),
            "{e}"
        );
        #[cfg(unix)]
        {
            let e = read_bounded(Path::new("/dev/zero"), 1 << 20).unwrap_err();
            assert_eq!(
                e.to_string(),
                "/dev/zero: not a regular file (a character device)"
            );
        }
        let sparse = dir.path().join("sparse.pem");
        File::create(&sparse).unwrap().set_len(1 << 30).unwrap();
        let e = read_bounded(&sparse, 1 << 20).unwrap_err();
        assert!(matches!(e, FileInputError::TooLarge { .. }), "{e}");
        let e = read_bounded(&dir.path().join("missing.pem"), 1).unwrap_err();
        assert!(matches!(e, FileInputError::Io { .. }), "{e}");
    }
}
