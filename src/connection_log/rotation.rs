//! Rotating log files in a directory, in any format, laid out like
//! CloudFront's log delivery.
//!
//! A file is written under a hidden temporary name and renamed when it is
//! complete, so a reader listing the directory never sees half a file;
//! files left by a crashed process are completed (or removed) when the next
//! output starts in the same directory.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::format::{w3c_header, write_record, LogFormat};
use super::output::{to_u64, write_some, LogOutput, Progress};
use super::recovery::{recover_dir, RecoveryReport};
use super::ConnectionLogRecord;

/// When a file is completed and the next one started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// Files cover aligned UTC intervals of this length (whole seconds, at
    /// least one): with one hour, 11:00 to 12:00. A record goes to the file
    /// of its `eventTimestamp`'s interval; a file whose interval has ended
    /// is completed within about a second even when no record follows.
    pub interval: Duration,
    /// A file is completed before it passes this size. Line formats count
    /// exact bytes (a single record larger than the limit gets a file of its
    /// own); Parquet counts its row groups before compression, so its files
    /// end below the limit.
    pub max_bytes: u64,
    /// Hive-style directories, as CloudFront delivers logs:
    /// `distributionid=<id>/year=YYYY/month=MM/day=DD/hour=HH/`. With it, a
    /// file never spans two hours.
    pub hive: bool,
    /// Parquet: records per row group. A row group is held in memory until
    /// it is full (or [`row_group_max_age`](Self::row_group_max_age) old),
    /// then written; this bounds both memory and what a crash loses.
    pub row_group_rows: usize,
    /// Parquet: a row group is written when its first record is this old,
    /// so a quiet server does not keep records in memory for long.
    pub row_group_max_age: Duration,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(3_600),
            max_bytes: 128 * 1024 * 1024,
            hive: false,
            row_group_rows: 10_000,
            row_group_max_age: Duration::from_secs(60),
        }
    }
}

/// How long after an interval's end a file is completed when no record
/// arrives: records reach the writer within tens of milliseconds of their
/// timestamp, so one second keeps the late ones in their interval's file.
const GRACE_MS: u64 = 1_000;

/// Rotating files in a directory: a [`LogOutput`] for
/// [`QueueSink`](super::QueueSink).
///
/// # Layout
///
/// ```text
/// <dir>/[distributionid=<id>/year=YYYY/month=MM/day=DD/hour=HH/]<id>.<YYYY-MM-DD-HH-MM-SS>.<seq>.<ext>
/// ```
///
/// `<id>` is the record's `distributionId` (characters other than ASCII
/// letters, digits, `-` and `_` become `_`), the time is the first record's
/// (UTC), `<seq>` a counter that keeps names unique, `<ext>` `jsonl`,
/// `w3c.log`, `alb.log` or `parquet`. Each distribution id has its own
/// files. While a file is written it is `.<name>.tmp` in the same directory:
/// hidden, so Athena, Spark and Hive (which skip names starting with `.`)
/// and globs such as `*.parquet` never read it. It is renamed to its name
/// when it is complete: at rotation, at [`finish`](LogOutput::finish)
/// (`QueueSink::shutdown`), or after a write error.
///
/// # Crashes
///
/// A process killed mid-write (`kill -9`, out of memory) leaves the open
/// file as `.<name>.tmp`. The next output started on the directory
/// completes it: a line file is cut after its last whole line; a Parquet
/// file keeps its written row groups (after each one a copy of the footer
/// is saved beside it as `.<name>.footer`) and gets that footer. So a crash
/// loses the records still queued (at most the queue's capacity) and, for
/// Parquet, the open row group (at most
/// [`row_group_rows`](Rotation::row_group_rows) records, or
/// [`row_group_max_age`](Rotation::row_group_max_age) of traffic). Files
/// are not synced to disk: this holds for a process crash, not a power
/// loss. One process writes to a directory at a time.
pub struct RotatingFiles {
    dir: PathBuf,
    format: LogFormat,
    rotation: Rotation,
    interval_ms: u64,
    /// One open file per distribution id (a listener has a handful).
    open: Vec<OpenFile>,
    seq: u64,
    recovered: bool,
}

impl std::fmt::Debug for RotatingFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatingFiles")
            .field("dir", &self.dir)
            .field("format", &self.format)
            .field("rotation", &self.rotation)
            .field("open", &self.open.len())
            .finish()
    }
}

/// The interval (and, with Hive paths, the hour) a time falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    interval: u64,
    hour: u64,
}

impl Bucket {
    fn is_after(self, other: Bucket) -> bool {
        self.interval > other.interval || self.hour > other.hour
    }
}

struct OpenFile {
    distribution_id: String,
    bucket: Bucket,
    tmp: PathBuf,
    path: PathBuf,
    encoder: Box<dyn FileEncoder>,
    touched: bool,
}

impl RotatingFiles {
    /// Runs `step` on every open file (its progress merged into
    /// `progress`) and completes those for which it answers `true`: a file
    /// whose interval ended or whose output failed.
    fn complete_where(
        &mut self,
        progress: &mut Progress,
        mut step: impl FnMut(&mut OpenFile) -> (bool, Progress),
    ) {
        let mut i = 0;
        while i < self.open.len() {
            let (done, step_progress) = step(&mut self.open[i]);
            progress.merge(step_progress);
            if done {
                let file = self.open.swap_remove(i);
                progress.merge(complete(file));
            } else {
                i += 1;
            }
        }
    }

    /// An output writing `format` files under `dir` (created when missing).
    /// Fails when the directory cannot be created, the interval is shorter
    /// than a second, or Parquet is asked for without the `parquet`
    /// feature.
    pub fn new(dir: impl Into<PathBuf>, format: LogFormat, rotation: Rotation) -> io::Result<Self> {
        let dir = dir.into();
        let interval_ms = u64::try_from(rotation.interval.as_millis()).unwrap_or(u64::MAX);
        if interval_ms < 1_000 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the rotation interval must be at least one second",
            ));
        }
        if format == LogFormat::Parquet && !cfg!(feature = "parquet") {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "Parquet needs the crate feature `parquet`",
            ));
        }
        fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            format,
            interval_ms: interval_ms - interval_ms % 1_000,
            rotation,
            open: Vec::new(),
            seq: 0,
            recovered: false,
        })
    }

    fn bucket(&self, millis: u64) -> Bucket {
        Bucket {
            interval: millis / self.interval_ms,
            hour: if self.rotation.hive {
                millis / 3_600_000
            } else {
                0
            },
        }
    }

    /// Completes what a crashed process left, once, before the first write.
    fn recover_once(&mut self) {
        if std::mem::replace(&mut self.recovered, true) {
            return;
        }
        let mut report = RecoveryReport::default();
        recover_dir(&self.dir, &mut report);
        if report.completed + report.removed > 0 {
            tracing::warn!(
                "connection log: completed {} file(s) and removed {} empty one(s) left in {} by an earlier process",
                report.completed,
                report.removed,
                self.dir.display()
            );
        }
        if let Some(e) = report.error {
            tracing::warn!(
                "connection log: cannot complete a file left in {} by an earlier process: {e}",
                self.dir.display()
            );
        }
    }

    /// The index of the open file `record` goes to, completing the file it
    /// replaces and opening a new one when needed.
    fn file_for(
        &mut self,
        record: &ConnectionLogRecord,
        progress: &mut Progress,
    ) -> io::Result<usize> {
        let bucket = self.bucket(record.event_timestamp);
        let max = self.rotation.max_bytes;
        if let Some(i) = self
            .open
            .iter()
            .position(|f| f.distribution_id == record.distribution_id)
        {
            let file = &mut self.open[i];
            if !bucket.is_after(file.bucket) && !file.encoder.would_exceed(record, max) {
                return Ok(i);
            }
            let file = self.open.swap_remove(i);
            progress.merge(complete(file));
        }
        let file = self.create(record, bucket)?;
        self.open.push(file);
        Ok(self.open.len() - 1)
    }

    fn create(&mut self, record: &ConnectionLogRecord, bucket: Bucket) -> io::Result<OpenFile> {
        let id = file_safe(&record.distribution_id);
        let time = civil(record.event_timestamp);
        let mut dir = self.dir.clone();
        if self.rotation.hive {
            dir.push(format!("distributionid={id}"));
            dir.push(format!("year={:04}", time.year));
            dir.push(format!("month={:02}", time.month));
            dir.push(format!("day={:02}", time.day));
            dir.push(format!("hour={:02}", time.hour));
        }
        fs::create_dir_all(&dir)?;
        let stamp = format!(
            "{:04}-{:02}-{:02}-{:02}-{:02}-{:02}",
            time.year, time.month, time.day, time.hour, time.minute, time.second
        );
        // The counter keeps names unique within this process; the checks
        // keep them unique against files already there (a restart within
        // the same second).
        for _ in 0..10_000 {
            let seq = self.seq;
            self.seq += 1;
            let name = format!("{id}.{stamp}.{seq:04}.{}", self.format.file_extension());
            let path = dir.join(&name);
            let tmp = dir.join(format!(".{name}.tmp"));
            if path.exists() {
                continue;
            }
            let file = match File::options().write(true).create_new(true).open(&tmp) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            let encoder = match open_encoder(file, self.format, &self.rotation, sidecar(&path)) {
                Ok(encoder) => encoder,
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    return Err(e);
                }
            };
            return Ok(OpenFile {
                distribution_id: record.distribution_id.clone(),
                bucket,
                tmp,
                path,
                encoder,
                touched: false,
            });
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("no free file name for {id}.{stamp} in {}", dir.display()),
        ))
    }
}

impl LogOutput for RotatingFiles {
    fn write_batch(&mut self, records: &[ConnectionLogRecord], now: SystemTime) -> Progress {
        self.recover_once();
        let mut progress = Progress::default();
        // A file that cannot be created is not tried again within the batch.
        let mut cannot_create: Vec<&str> = Vec::new();
        for record in records {
            if cannot_create.contains(&record.distribution_id.as_str()) {
                progress.lost += 1;
                continue;
            }
            match self.file_for(record, &mut progress) {
                Ok(i) => {
                    let file = &mut self.open[i];
                    file.encoder.push(record);
                    file.touched = true;
                }
                Err(e) => {
                    progress.merge(Progress::failed(1, e));
                    cannot_create.push(&record.distribution_id);
                }
            }
        }
        // One write per file per batch; a file that fails is completed with
        // what it holds, and later records go to a new one.
        self.complete_where(&mut progress, |file| {
            if !std::mem::take(&mut file.touched) {
                return (false, Progress::default());
            }
            let written = file.encoder.write(now);
            (written.error.is_some(), written)
        });
        progress
    }

    fn tick(&mut self, now: SystemTime) -> Progress {
        self.recover_once();
        let millis = unix_millis(now);
        let current = self.bucket(millis.saturating_sub(GRACE_MS));
        let mut progress = Progress::default();
        self.complete_where(&mut progress, |file| {
            if current.is_after(file.bucket) {
                return (true, Progress::default());
            }
            let upkeep = file.encoder.tick(now);
            (upkeep.error.is_some(), upkeep)
        });
        progress
    }

    fn pending(&self) -> u64 {
        self.open.iter().map(|f| f.encoder.pending()).sum()
    }

    fn finish(&mut self) -> Progress {
        self.recover_once();
        let mut progress = Progress::default();
        for file in self.open.drain(..) {
            progress.merge(complete(file));
        }
        progress
    }
}

/// Writes out what `file` holds, completes it and gives it its name; a file
/// without records is removed instead.
fn complete(file: OpenFile) -> Progress {
    let Completed {
        mut progress,
        records,
        state,
    } = file.encoder.complete();
    let outcome = match state {
        FileState::Complete if records == 0 => fs::remove_file(&file.tmp),
        FileState::Complete => {
            let renamed = fs::rename(&file.tmp, &file.path);
            if renamed.is_ok() {
                tracing::debug!(
                    "connection log: {} complete ({records} record(s))",
                    file.path.display()
                );
                let _ = fs::remove_file(sidecar(&file.path));
            }
            renamed
        }
        // Left for the next start to complete (see `recover_dir`).
        FileState::Leftover => Ok(()),
    };
    if let Err(e) = outcome {
        progress.merge(Progress::failed(0, e));
    }
    progress
}

/// What completing a file gave.
pub(crate) struct Completed {
    /// Records written or lost while completing.
    pub(crate) progress: Progress,
    /// Records in the completed file.
    pub(crate) records: u64,
    pub(crate) state: FileState,
}

/// Whether a file can take its name.
pub(crate) enum FileState {
    /// The file is whole.
    Complete,
    /// The file could not be completed (a write error while cutting it back
    /// or writing its footer): it stays under its temporary name, with what
    /// the next start needs to complete it.
    Leftover,
}

/// One open file in one format.
pub(crate) trait FileEncoder: Send {
    /// Whether `record` would take the file past `max_bytes`; never when
    /// the file holds no record yet.
    fn would_exceed(&mut self, record: &ConnectionLogRecord, max_bytes: u64) -> bool;
    /// Takes a record; it is written by the next [`write`](Self::write).
    fn push(&mut self, record: &ConnectionLogRecord);
    /// Writes what was pushed (Parquet: what fills a row group).
    fn write(&mut self, now: SystemTime) -> Progress;
    /// Upkeep by time (Parquet: an old row group is written).
    fn tick(&mut self, now: SystemTime) -> Progress {
        let _ = now;
        Progress::default()
    }
    /// Records held, neither written nor lost.
    fn pending(&self) -> u64;
    /// Writes what is held and completes the file's bytes. After a write
    /// error the file is cut back to its last whole state.
    fn complete(self: Box<Self>) -> Completed;
}

fn open_encoder(
    file: File,
    format: LogFormat,
    rotation: &Rotation,
    sidecar: PathBuf,
) -> io::Result<Box<dyn FileEncoder>> {
    match format {
        LogFormat::JsonLines | LogFormat::W3c | LogFormat::Alb => {
            let _ = (rotation, sidecar);
            Ok(Box::new(LineFile::new(file, format)))
        }
        #[cfg(feature = "parquet")]
        LogFormat::Parquet => Ok(Box::new(super::parquet::ParquetFile::new(
            file, rotation, sidecar,
        )?)),
        #[cfg(not(feature = "parquet"))]
        LogFormat::Parquet => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "Parquet needs the crate feature `parquet`",
        )),
    }
}

/// A file of lines (JSON lines, W3C, ALB).
struct LineFile {
    file: File,
    format: LogFormat,
    /// Pushed, not written yet; `ends` marks where each record stops.
    buf: Vec<u8>,
    ends: Vec<usize>,
    /// Where the first record starts in `buf` (after a W3C header).
    start: usize,
    /// Bytes of whole records (and header) in the file.
    len: u64,
    records: u64,
    line: String,
    /// `line` holds the record `would_exceed` just rendered.
    line_ready: bool,
    header_written: bool,
    /// A write failed; the file takes no more.
    broken: bool,
}

impl LineFile {
    fn new(file: File, format: LogFormat) -> Self {
        Self {
            file,
            format,
            buf: Vec::with_capacity(64 * 1024),
            ends: Vec::new(),
            start: 0,
            len: 0,
            records: 0,
            line: String::with_capacity(1024),
            line_ready: false,
            header_written: format != LogFormat::W3c,
            broken: false,
        }
    }

    fn render(&mut self, record: &ConnectionLogRecord) {
        if !std::mem::take(&mut self.line_ready) {
            self.line.clear();
            write_record(&mut self.line, record, self.format);
        }
    }
}

impl FileEncoder for LineFile {
    fn would_exceed(&mut self, record: &ConnectionLogRecord, max_bytes: u64) -> bool {
        self.render(record);
        self.line_ready = true;
        let held = self.records + to_u64(self.ends.len());
        let size = self.len + to_u64(self.buf.len()) + to_u64(self.line.len());
        held > 0 && size > max_bytes
    }

    fn push(&mut self, record: &ConnectionLogRecord) {
        self.render(record);
        if self.buf.is_empty() && !self.header_written {
            self.buf.extend_from_slice(w3c_header().as_bytes());
            self.start = self.buf.len();
        }
        self.buf.extend_from_slice(self.line.as_bytes());
        self.ends.push(self.buf.len());
    }

    fn write(&mut self, _now: SystemTime) -> Progress {
        if self.ends.is_empty() {
            return Progress::default();
        }
        let held = self.ends.len();
        if self.broken {
            self.buf.clear();
            self.ends.clear();
            return Progress::failed(held, io::Error::other("the file failed before"));
        }
        let (sent, result) = write_some(&mut self.file, &self.buf);
        let written = self.ends.iter().filter(|end| **end <= sent).count();
        // The file's whole part: the last record that got through (or the
        // header alone).
        let whole = match written {
            0 if sent >= self.start && self.start > 0 => self.start,
            0 => 0,
            n => self.ends[n - 1],
        };
        self.len += to_u64(whole);
        self.records += to_u64(written);
        if whole >= self.start && self.start > 0 {
            self.header_written = true;
        }
        self.buf.clear();
        self.ends.clear();
        self.start = 0;
        match result {
            Ok(()) => Progress::written(written),
            Err(e) => {
                self.broken = true;
                Progress {
                    written: to_u64(written),
                    lost: to_u64(held - written),
                    error: Some(e),
                }
            }
        }
    }

    fn pending(&self) -> u64 {
        to_u64(self.ends.len())
    }

    fn complete(mut self: Box<Self>) -> Completed {
        let mut progress = self.write(SystemTime::now());
        let mut state = FileState::Complete;
        if self.broken {
            // Cut the record the failed write left half-written.
            if let Err(e) = self.file.set_len(self.len) {
                progress.merge(Progress::failed(0, e));
                state = FileState::Leftover;
            }
        }
        Completed {
            progress,
            records: self.records,
            state,
        }
    }
}

/// Where a Parquet file's latest footer is kept while it is written.
pub(crate) fn sidecar(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{}.footer", name.unwrap_or_default()))
}

/// The first bytes of a footer sidecar: this tag, then the length of the
/// data the footer describes (u64, little-endian), then the footer.
pub(crate) const SIDECAR_TAG: &[u8; 8] = b"EMTLSPQ1";

/// A distribution id as a file-name and directory part.
fn file_safe(id: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() {
        "_".into()
    } else {
        safe
    }
}

pub(crate) fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

struct Civil {
    year: u64,
    month: u64,
    day: u64,
    hour: u64,
    minute: u64,
    second: u64,
}

/// UTC calendar fields of a Unix time in milliseconds (proleptic
/// Gregorian, days-from-civil inverted).
fn civil(millis: u64) -> Civil {
    let secs = millis / 1_000;
    let days = secs / 86_400;
    let rest = secs % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: rest / 3_600,
        minute: rest % 3_600 / 60,
        second: rest % 60,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_instants() {
        let c = civil(0);
        assert_eq!((c.year, c.month, c.day, c.hour), (1970, 1, 1, 0));
        // 2026-12-03T11:05:09.250Z
        let c = civil(1_796_295_909_250);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (2026, 12, 3, 11, 5, 9)
        );
        // 2024-02-29T23:59:59Z, a leap day.
        let c = civil(1_709_251_199_000);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (2024, 2, 29, 23, 59, 59)
        );
        // Far beyond any real clock: no overflow.
        let _ = civil(u64::MAX);
    }

    #[test]
    fn distribution_ids_become_safe_names() {
        assert_eq!(file_safe("E2EXAMPLE"), "E2EXAMPLE");
        assert_eq!(file_safe("../etc/passwd"), "___etc_passwd");
        assert_eq!(file_safe(""), "_");
        assert_eq!(file_safe("a b/ü"), "a_b__");
    }
}
