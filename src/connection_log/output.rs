//! What a [`QueueSink`](super::QueueSink)'s writer thread writes to: the
//! [`LogOutput`] seam, and [`StreamOutput`], one byte stream (a file,
//! stdout, a pipe) in a line format.

use std::io::{self, Write};
use std::time::SystemTime;

use super::format::{w3c_header, write_record, LogFormat};
use super::ConnectionLogRecord;

/// What one call of a [`LogOutput`] did with the records it holds.
///
/// Every record handed to an output ends up counted exactly once, as
/// `written` or as `lost`, in the call that handled it or a later one (an
/// output may hold records for a while, e.g. Parquet's open row group; see
/// [`LogOutput::pending`]).
#[derive(Debug, Default)]
#[must_use]
#[non_exhaustive]
pub struct Progress {
    /// Records that reached the output (handed to the operating system).
    pub written: u64,
    /// Records lost to `error`.
    pub lost: u64,
    /// The error that stopped the call, if any.
    pub error: Option<io::Error>,
}

impl Progress {
    /// `n` records written.
    pub fn written(n: usize) -> Self {
        Self {
            written: to_u64(n),
            ..Self::default()
        }
    }

    /// `n` records lost to `error`.
    pub fn failed(n: usize, error: io::Error) -> Self {
        Self {
            written: 0,
            lost: to_u64(n),
            error: Some(error),
        }
    }

    /// Adds `other`'s counts; the first error is kept.
    pub fn merge(&mut self, other: Progress) {
        self.written += other.written;
        self.lost += other.lost;
        if self.error.is_none() {
            self.error = other.error;
        }
    }
}

pub(crate) fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Where a [`QueueSink`](super::QueueSink)'s writer thread puts records.
///
/// Only the writer thread calls it, so an implementation needs no locking;
/// a slow call delays logging, never a handshake (the queue in front drops
/// and counts what does not fit). `now` is the writer's wall clock, passed
/// in so rotation can be tested without waiting.
pub trait LogOutput: Send {
    /// Writes `records`, in submission order.
    fn write_batch(&mut self, records: &[ConnectionLogRecord], now: SystemTime) -> Progress;

    /// Called when no record arrived for a while (about every 20 ms): upkeep
    /// that depends on time alone, such as completing the file of an
    /// interval that has ended.
    fn tick(&mut self, now: SystemTime) -> Progress {
        let _ = now;
        Progress::default()
    }

    /// Records held but neither written nor lost yet.
    fn pending(&self) -> u64 {
        0
    }

    /// Writes out what is held and completes the output; called once, when
    /// the sink shuts down.
    fn finish(&mut self) -> Progress;
}

/// One byte stream in a line format (JSON lines, W3C, ALB): a file opened
/// for appending, stdout, a pipe.
///
/// A whole batch is one buffer and one write, so a failed write says
/// exactly which records were lost; a record cut by a failed write is ended
/// with a newline before the next write, so every later record stays on a
/// line of its own.
pub struct StreamOutput<W> {
    writer: W,
    format: LogFormat,
    buf: Vec<u8>,
    line: String,
    ends: Vec<usize>,
    /// A W3C stream starts with its header, written with the first batch.
    header_pending: bool,
    /// A failed write left a record cut in the middle of its line.
    partial_line: bool,
}

impl<W: Write + Send> StreamOutput<W> {
    /// An output writing `format` to `writer`. Parquet is a file format, not
    /// a stream: it is refused with `InvalidInput` (write Parquet with
    /// [`RotatingFiles`](super::RotatingFiles)).
    pub fn new(writer: W, format: LogFormat) -> io::Result<Self> {
        if format == LogFormat::Parquet {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Parquet is written to files: use a rotating directory output",
            ));
        }
        Ok(Self {
            writer,
            format,
            buf: Vec::with_capacity(64 * 1024),
            line: String::with_capacity(1024),
            ends: Vec::new(),
            header_pending: format == LogFormat::W3c,
            partial_line: false,
        })
    }
}

impl<W: Write + Send> LogOutput for StreamOutput<W> {
    fn write_batch(&mut self, records: &[ConnectionLogRecord], _now: SystemTime) -> Progress {
        // `ends` marks where each record stops, so a short write tells
        // exactly which were written.
        self.buf.clear();
        if self.partial_line {
            self.buf.push(b'\n');
        }
        let newline = self.buf.len();
        if self.header_pending {
            self.buf.extend_from_slice(w3c_header().as_bytes());
        }
        let header = self.buf.len();
        self.ends.clear();
        for record in records {
            self.line.clear();
            write_record(&mut self.line, record, self.format);
            self.buf.extend_from_slice(self.line.as_bytes());
            self.ends.push(self.buf.len());
        }
        let (sent, result) = write_some(&mut self.writer, &self.buf);
        let result = result.and_then(|()| self.writer.flush());
        let written = self.ends.iter().filter(|end| **end <= sent).count();
        if sent > 0 {
            self.partial_line = !(sent == newline || sent == header || self.ends.contains(&sent));
            self.header_pending &= sent < header;
        }
        self.buf.clear();
        match result {
            Ok(()) => Progress::written(written),
            Err(e) => Progress {
                written: to_u64(written),
                lost: to_u64(self.ends.len() - written),
                error: Some(e),
            },
        }
    }

    fn finish(&mut self) -> Progress {
        match self.writer.flush() {
            Ok(()) => Progress::default(),
            Err(e) => Progress::failed(0, e),
        }
    }
}

/// Writes as much of `bytes` as the output takes; returns how many bytes it
/// took and the error that stopped it.
pub(crate) fn write_some(writer: &mut impl Write, bytes: &[u8]) -> (usize, io::Result<()>) {
    let mut sent = 0;
    while sent < bytes.len() {
        match writer.write(&bytes[sent..]) {
            Ok(0) => return (sent, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (sent, Err(e)),
        }
    }
    (sent, Ok(()))
}
