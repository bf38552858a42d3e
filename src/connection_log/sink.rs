//! Where records go: the sink trait and a non-blocking queue sink.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::format::{w3c_header, write_record, LogFormat};
use super::{ConnectionLogRecord, ReasonCounters};

/// Receives one record per connection attempt. `submit` must never block.
pub trait ConnectionLogSink: Send + Sync + fmt::Debug {
    /// Hands over a record.
    fn submit(&self, record: ConnectionLogRecord);
}

/// How often the writer looks for records when nobody woke it: the most a
/// record waits before it is written (under half a full queue).
const DRAIN_INTERVAL: Duration = Duration::from_millis(20);

/// What the submitters and the writer share.
struct Queue {
    records: VecDeque<ConnectionLogRecord>,
    /// Records the writer took and has not finished writing (they count
    /// against the capacity, so memory stays bounded by it).
    in_flight: usize,
    shutdown: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while formatting cannot leave the queue inconsistent.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A sink that formats and writes records on a background thread.
///
/// `submit` only enqueues into a bounded queue; when the queue is full (a slow
/// or stuck writer) the record is dropped and counted, so a handshake is never
/// delayed by logging. The writer drains the queue every 20 ms, or at once
/// when it is half full, so a submit never wakes a thread and a record is
/// written at most about 20 ms after it was submitted.
/// [`shutdown`](Self::shutdown) writes everything queued,
/// flushes and joins the thread.
pub struct QueueSink {
    shared: Arc<Shared>,
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
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                records: VecDeque::new(),
                in_flight: 0,
                shutdown: false,
            }),
            wake: Condvar::new(),
            capacity: capacity.max(1),
        });
        let worker = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("edge-mtls-connection-log".into())
                .spawn(move || write_loop(&shared, writer, format))?
        };
        Ok(Self {
            shared,
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
        // The writer drains what is queued, then stops.
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_one();
        worker
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("connection-log writer thread panicked")))
    }
}

impl ConnectionLogSink for QueueSink {
    fn submit(&self, record: ConnectionLogRecord) {
        self.counters.record(record.connection_status);
        // No wake-up per record: the writer drains on its own every
        // DRAIN_INTERVAL and is woken only when the queue is half full, so a
        // handshake costs an uncontended lock, not a thread switch.
        let mut queue = self.shared.lock();
        if queue.shutdown || queue.records.len() + queue.in_flight >= self.shared.capacity {
            drop(queue);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        queue.records.push_back(record);
        let wake = queue.records.len() * 2 >= self.shared.capacity;
        drop(queue);
        if wake {
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for QueueSink {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn write_loop(shared: &Shared, writer: impl Write, format: LogFormat) -> io::Result<u64> {
    let mut out = BufWriter::with_capacity(64 * 1024, writer);
    if format == LogFormat::W3c {
        out.write_all(w3c_header().as_bytes())?;
    }
    let mut line = String::with_capacity(1024);
    let mut written = 0u64;
    let mut batch = VecDeque::new();
    loop {
        let stop = {
            let mut queue = shared.lock();
            while queue.records.is_empty() && !queue.shutdown {
                queue = shared
                    .wake
                    .wait_timeout(queue, DRAIN_INTERVAL)
                    .map(|(guard, _)| guard)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            std::mem::swap(&mut queue.records, &mut batch);
            queue.in_flight = batch.len();
            queue.shutdown && batch.is_empty()
        };
        if stop {
            out.flush()?;
            return Ok(written);
        }
        // A whole burst costs one flush.
        for record in batch.drain(..) {
            line.clear();
            write_record(&mut line, &record, format);
            out.write_all(line.as_bytes())?;
            written += 1;
        }
        out.flush()?;
        shared.lock().in_flight = 0;
    }
}
