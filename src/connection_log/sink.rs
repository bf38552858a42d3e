//! Where records go: the sink trait and a non-blocking queue sink.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::format::{w3c_header, write_record, LogFormat};
use super::{ConnectionLogRecord, ReasonCounters};

/// Receives one record per connection attempt. `submit` must never block.
pub trait ConnectionLogSink: Send + Sync + fmt::Debug {
    /// Hands over a record.
    fn submit(&self, record: ConnectionLogRecord);
}

enum Message {
    Record(Box<ConnectionLogRecord>),
    Shutdown,
}

/// A sink that formats and writes records on a background thread.
///
/// `submit` only enqueues into a bounded queue; when the queue is full (a slow
/// or stuck writer) the record is dropped and counted, so a handshake is never
/// delayed by logging. [`shutdown`](Self::shutdown) writes everything queued,
/// flushes and joins the thread.
pub struct QueueSink {
    tx: SyncSender<Message>,
    dropped: AtomicU64,
    counters: Arc<ReasonCounters>,
    worker: Mutex<Option<JoinHandle<io::Result<u64>>>>,
}

impl fmt::Debug for QueueSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueSink")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl QueueSink {
    /// A sink writing `format` to `writer`, queueing at most `capacity` records.
    pub fn new(
        writer: impl Write + Send + 'static,
        format: LogFormat,
        capacity: usize,
    ) -> io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let worker = std::thread::Builder::new()
            .name("edge-mtls-connection-log".into())
            .spawn(move || write_loop(rx, writer, format))?;
        Ok(Self {
            tx,
            dropped: AtomicU64::new(0),
            counters: Arc::new(ReasonCounters::default()),
            worker: Mutex::new(Some(worker)),
        })
    }

    /// A sink appending to the file at `path` (created when missing).
    pub fn to_file(path: impl AsRef<Path>, format: LogFormat, capacity: usize) -> io::Result<Self> {
        let file = File::options().create(true).append(true).open(path)?;
        Self::new(file, format, capacity)
    }

    /// Records dropped because the queue was full or the sink shut down.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Outcome counters of every submitted record (dropped ones included).
    pub fn counters(&self) -> &Arc<ReasonCounters> {
        &self.counters
    }

    /// Writes out everything queued, flushes, stops the thread; returns the
    /// number of records written. Later submissions are dropped.
    pub fn shutdown(&self) -> io::Result<u64> {
        let worker = match self.worker.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let Some(worker) = worker else {
            return Ok(0);
        };
        // Blocking send: shutdown waits for the queue, by design.
        let _ = self.tx.send(Message::Shutdown);
        worker
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("connection-log writer thread panicked")))
    }
}

impl ConnectionLogSink for QueueSink {
    fn submit(&self, record: ConnectionLogRecord) {
        self.counters.record(record.connection_status);
        match self.tx.try_send(Message::Record(Box::new(record))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for QueueSink {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn write_loop(rx: Receiver<Message>, writer: impl Write, format: LogFormat) -> io::Result<u64> {
    let mut out = BufWriter::with_capacity(64 * 1024, writer);
    if format == LogFormat::W3c {
        out.write_all(w3c_header().as_bytes())?;
    }
    let mut line = String::with_capacity(1024);
    let mut written = 0u64;
    loop {
        // Block for the next message, then drain whatever else is queued
        // before flushing, so a burst costs one flush.
        let Ok(first) = rx.recv() else {
            out.flush()?;
            return Ok(written);
        };
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Record(record) => {
                    line.clear();
                    write_record(&mut line, &record, format);
                    out.write_all(line.as_bytes())?;
                    written += 1;
                }
                Message::Shutdown => {
                    out.flush()?;
                    return Ok(written);
                }
            }
            next = rx.try_recv().ok();
        }
        out.flush()?;
    }
}
