//! Completing the files a crashed process left: a line file is cut after
//! its last whole line, a Parquet file after its last whole row group (whose
//! footer was saved beside it), then each is renamed to its final name.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::format::LogFormat;
use super::output::to_u64;
use super::rotation::{sidecar, SIDECAR_TAG};

/// What [`recover_dir`] did.
#[derive(Default)]
pub(crate) struct RecoveryReport {
    /// Files completed and renamed.
    pub(crate) completed: usize,
    /// Files without a whole record, removed.
    pub(crate) removed: usize,
    /// The first file that could not be completed, and why.
    pub(crate) error: Option<io::Error>,
}

/// Completes the `.<name>.tmp` files under `dir` (Hive paths are five
/// levels deep) and removes orphaned sidecars.
pub(crate) fn recover_dir(dir: &Path, report: &mut RecoveryReport) {
    recover_below(dir, 0, report);
}

fn recover_below(dir: &Path, depth: usize, report: &mut RecoveryReport) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if depth < 5 {
                recover_below(&path, depth + 1, report);
            }
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(final_name) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp"))
            .filter(|n| is_log_file_name(n))
        else {
            continue;
        };
        match recover_file(&path, &dir.join(final_name)) {
            Ok(true) => report.completed += 1,
            Ok(false) => report.removed += 1,
            Err(e) => {
                report.error.get_or_insert(e);
            }
        }
    }
    // Sidecars whose file was completed or removed.
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(final_name) = name
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(".footer"))
                .filter(|n| is_log_file_name(n))
            {
                if !dir.join(format!(".{final_name}.tmp")).exists() {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }
}

/// Whether `name` is one this output gives its files:
/// `<id>.<YYYY-MM-DD-HH-MM-SS>.<seq>.<ext>`, `<ext>` one of the formats'.
fn is_log_file_name(name: &str) -> bool {
    let extension = [
        LogFormat::JsonLines,
        LogFormat::W3c,
        LogFormat::Alb,
        LogFormat::Parquet,
    ]
    .iter()
    .find_map(|f| name.strip_suffix(&format!(".{}", f.file_extension())));
    let Some(rest) = extension else {
        return false;
    };
    let mut parts = rest.rsplit('.');
    let seq = parts.next().unwrap_or_default();
    let stamp = parts.next().unwrap_or_default();
    let id = parts.next().unwrap_or_default();
    !id.is_empty()
        && !seq.is_empty()
        && seq.bytes().all(|b| b.is_ascii_digit())
        && stamp.len() == "YYYY-MM-DD-HH-MM-SS".len()
        && stamp.bytes().all(|b| b.is_ascii_digit() || b == b'-')
}

/// Completes one leftover file; `Ok(true)` when it was renamed to `path`,
/// `Ok(false)` when it held no whole record and was removed.
fn recover_file(tmp: &Path, path: &Path) -> io::Result<bool> {
    let whole = if path.to_string_lossy().ends_with(".parquet") {
        recover_parquet(tmp, &sidecar(path))?
    } else {
        recover_lines(tmp)?
    };
    if !whole {
        fs::remove_file(tmp)?;
        let _ = fs::remove_file(sidecar(path));
        return Ok(false);
    }
    if path.exists() {
        // Never replace a complete file; leave both for the operator.
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists beside its leftover", path.display()),
        ));
    }
    fs::rename(tmp, path)?;
    let _ = fs::remove_file(sidecar(path));
    Ok(true)
}

/// Cuts a line file after its last newline; whether a record remains (a
/// W3C file holding only its header does not count).
fn recover_lines(tmp: &Path) -> io::Result<bool> {
    let mut file = File::options().read(true).write(true).open(tmp)?;
    let len = file.metadata()?.len();
    // Read backwards until a newline.
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut cut = 0;
    while end > 0 {
        let size = usize::try_from(end.min(to_u64(chunk.len()))).unwrap_or(chunk.len());
        let from = end - to_u64(size);
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut chunk[..size])?;
        if let Some(i) = chunk[..size].iter().rposition(|b| *b == b'\n') {
            cut = from + to_u64(i) + 1;
            break;
        }
        end = from;
    }
    file.set_len(cut)?;
    if cut == 0 {
        return Ok(false);
    }
    // A W3C file: is there a line that is not a directive?
    file.seek(SeekFrom::Start(0))?;
    let mut head = vec![0u8; usize::try_from(cut.min(8 * 1024)).unwrap_or(8 * 1024)];
    file.read_exact(&mut head)?;
    let records = head
        .split(|b| *b == b'\n')
        .any(|line| !line.is_empty() && !line.starts_with(b"#"));
    Ok(records || cut > 8 * 1024)
}

/// Cuts a Parquet file after its last whole row group and appends the
/// footer saved for it; whether a row group remains.
fn recover_parquet(tmp: &Path, sidecar: &Path) -> io::Result<bool> {
    let saved = match fs::read(sidecar) {
        Ok(saved) => saved,
        // No row group was completed.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let (Some(tag), Some(len), Some(footer)) = (saved.get(..8), saved.get(8..16), saved.get(16..))
    else {
        return Ok(false);
    };
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(len);
    let data_len = u64::from_le_bytes(len_bytes);
    let mut file = File::options().read(true).write(true).open(tmp)?;
    if tag != SIDECAR_TAG || file.metadata()?.len() < data_len || footer.len() < 8 {
        return Ok(false);
    }
    file.set_len(data_len)?;
    file.seek(SeekFrom::Start(data_len))?;
    file.write_all(footer)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_outputs_names_are_recovered() {
        assert!(is_log_file_name("E2X.2026-12-03-11-00-00.0000.jsonl"));
        assert!(is_log_file_name("E2X.2026-12-03-11-00-00.12345.parquet"));
        assert!(is_log_file_name("a.b.2026-12-03-11-00-00.0001.w3c.log"));
        assert!(!is_log_file_name("notes.log"));
        assert!(!is_log_file_name("E2X.2026-12-03.0000.jsonl"));
        assert!(!is_log_file_name(".2026-12-03-11-00-00.0000.jsonl"));
        assert!(!is_log_file_name("E2X.2026-12-03-11-00-00.x.alb.log"));
    }
}
