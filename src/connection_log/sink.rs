//! Where records go: the sink trait and a non-blocking queue sink.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::format::LogFormat;
use super::output::{LogOutput, StreamOutput};
use super::rotation::{RotatingFiles, Rotation};
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
    /// Records taken from the queue but lost to write errors.
    unwritten: AtomicU64,
    /// Records written and flushed.
    written: AtomicU64,
    /// Records the output holds, neither written nor lost yet.
    pending: AtomicU64,
    /// Set by the writer when it has stopped (what `shutdown` waits for).
    finished: Mutex<bool>,
    finished_signal: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while formatting cannot leave the queue inconsistent.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A sink that formats and writes records on a background thread.
///
/// The thread writes to a [`LogOutput`]: one stream ([`new`](Self::new),
/// [`to_file`](Self::to_file), [`to_stdout`](Self::to_stdout)), rotating
/// files in a directory ([`to_dir`](Self::to_dir)), or an output of the
/// application's own ([`with_output`](Self::with_output)).
///
/// `submit` only enqueues into a bounded queue; when the queue is full (a slow
/// or stuck writer) the record is dropped and counted, so a handshake is never
/// delayed by logging. The writer drains the queue every 20 ms, or at once
/// when it is half full, so a submit never wakes a thread and a record is
/// written at most about 20 ms after it was submitted.
/// [`shutdown`](Self::shutdown) writes everything queued,
/// flushes and stops the thread.
///
/// The output may fail or stall; the sink survives it. A write error (a
/// full disk, a closed pipe) loses the records being written — counted in
/// [`unwritten`](Self::unwritten) — and is reported once through `tracing`;
/// the writer retries with a backoff (50 ms doubling to 2 s) and reports
/// again when the output recovers. A writer blocked in `write(2)` (a pipe
/// nobody reads) cannot be interrupted: `shutdown` waits at most its
/// deadline (default 5 s), then returns an error saying how many records
/// were not written, and the process can exit.
pub struct QueueSink {
    shared: Arc<Shared>,
    dropped: AtomicU64,
    /// Whether records are being dropped (the full queue was reported).
    dropping: std::sync::atomic::AtomicBool,
    counters: Arc<ReasonCounters>,
    worker: Mutex<Option<JoinHandle<()>>>,
    shutdown_deadline: Duration,
}

/// Why [`QueueSink::shutdown`] could not write everything out; carried
/// inside the `io::Error` it returns.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogShutdownError {
    /// The output did not take the remaining records within the deadline
    /// (a stalled reader); the writer thread is left behind.
    #[error("connection log: {unwritten} record(s) not written within the {deadline:?} shutdown deadline (the output is not accepting writes)")]
    DeadlineExceeded {
        /// Records still queued or being written.
        unwritten: u64,
        /// The deadline.
        deadline: Duration,
    },
    /// The writer thread panicked.
    #[error("connection log: the writer thread panicked")]
    WriterPanicked,
}

impl fmt::Debug for QueueSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueSink")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl QueueSink {
    /// A sink writing `format` to `writer`, queueing at most `capacity`
    /// records. Parquet is refused (`InvalidInput`): it is written to files,
    /// with [`to_dir`](Self::to_dir).
    pub fn new(
        writer: impl Write + Send + 'static,
        format: LogFormat,
        capacity: usize,
    ) -> io::Result<Self> {
        Self::with_output(StreamOutput::new(writer, format)?, capacity)
    }

    /// A sink writing rotating files under `dir` (created when missing):
    /// see [`RotatingFiles`] for the layout, the rotation and what a crash
    /// loses.
    pub fn to_dir(
        dir: impl Into<PathBuf>,
        format: LogFormat,
        rotation: Rotation,
        capacity: usize,
    ) -> io::Result<Self> {
        Self::with_output(RotatingFiles::new(dir, format, rotation)?, capacity)
    }

    /// A sink whose writer thread drives `output`, queueing at most
    /// `capacity` records.
    pub fn with_output(output: impl LogOutput + 'static, capacity: usize) -> io::Result<Self> {
        let mut output = output;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                records: VecDeque::new(),
                in_flight: 0,
                shutdown: false,
            }),
            wake: Condvar::new(),
            capacity: capacity.max(1),
            unwritten: AtomicU64::new(0),
            written: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            finished: Mutex::new(false),
            finished_signal: Condvar::new(),
        });
        let worker = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("edge-mtls-connection-log".into())
                .spawn(move || {
                    write_loop(&shared, &mut output);
                    let mut finished = shared.finished.lock().unwrap_or_else(|p| p.into_inner());
                    *finished = true;
                    shared.finished_signal.notify_all();
                })?
        };
        Ok(Self {
            shared,
            dropped: AtomicU64::new(0),
            dropping: std::sync::atomic::AtomicBool::new(false),
            counters: Arc::new(ReasonCounters::default()),
            worker: Mutex::new(Some(worker)),
            shutdown_deadline: Duration::from_secs(5),
        })
    }

    /// How long [`shutdown`](Self::shutdown) waits for the output to take
    /// the remaining records (default 5 s).
    pub fn with_shutdown_deadline(mut self, deadline: Duration) -> Self {
        self.shutdown_deadline = deadline;
        self
    }

    /// A sink appending to the file at `path` (created when missing).
    pub fn to_file(path: impl AsRef<Path>, format: LogFormat, capacity: usize) -> io::Result<Self> {
        // Refused before the file is created.
        StreamOutput::new(io::sink(), format)?;
        let file = File::options().create(true).append(true).open(path)?;
        Self::new(file, format, capacity)
    }

    /// A sink writing to the process's standard output. On Unix it writes
    /// to a duplicate of the descriptor, past std's line buffer, so each
    /// batch is one `write(2)` and a failed write says exactly which records
    /// were lost (std's buffer would keep half a record for later).
    pub fn to_stdout(format: LogFormat, capacity: usize) -> io::Result<Self> {
        #[cfg(unix)]
        {
            use std::os::fd::AsFd;
            let fd = io::stdout().as_fd().try_clone_to_owned()?;
            Self::new(File::from(fd), format, capacity)
        }
        #[cfg(not(unix))]
        {
            Self::new(io::stdout(), format, capacity)
        }
    }

    /// [`to_stdout`](Self::to_stdout) for standard error.
    pub fn to_stderr(format: LogFormat, capacity: usize) -> io::Result<Self> {
        #[cfg(unix)]
        {
            use std::os::fd::AsFd;
            let fd = io::stderr().as_fd().try_clone_to_owned()?;
            Self::new(File::from(fd), format, capacity)
        }
        #[cfg(not(unix))]
        {
            Self::new(io::stderr(), format, capacity)
        }
    }

    /// Records dropped because the queue was full or the sink shut down.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records taken for writing but lost to write errors of the output.
    pub fn unwritten(&self) -> u64 {
        self.shared.unwritten.load(Ordering::Relaxed)
    }

    /// Records written to the output.
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Outcome counters of every submitted record (dropped ones included).
    pub fn counters(&self) -> &Arc<ReasonCounters> {
        &self.counters
    }

    /// Writes out everything queued, flushes (a rotating output completes
    /// and renames its open files), stops the thread; returns the number of
    /// records written since the sink was made. Later submissions
    /// are dropped. When the output does not take the records within the
    /// deadline, returns an error of kind `TimedOut` carrying a
    /// [`LogShutdownError`] with the count.
    pub fn shutdown(&self) -> io::Result<u64> {
        let worker = match self.worker.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let Some(worker) = worker else {
            return Ok(self.written());
        };
        // The writer drains what is queued, then stops.
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_one();
        let finished = self
            .shared
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (finished, _) = self
            .shared
            .finished_signal
            .wait_timeout_while(finished, self.shutdown_deadline, |done| !*done)
            .unwrap_or_else(|p| p.into_inner());
        if !*finished {
            drop(finished);
            let queue = self.shared.lock();
            let unwritten = u64::try_from(queue.records.len() + queue.in_flight)
                .unwrap_or(u64::MAX)
                .saturating_add(self.shared.pending.load(Ordering::Relaxed));
            // The thread stays blocked in the output; it is detached.
            drop(worker);
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                LogShutdownError::DeadlineExceeded {
                    unwritten,
                    deadline: self.shutdown_deadline,
                },
            ));
        }
        drop(finished);
        worker
            .join()
            .map_err(|_| io::Error::other(LogShutdownError::WriterPanicked))?;
        Ok(self.written())
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
            let shutting_down = queue.shutdown;
            drop(queue);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            // Reported once per episode, not per record.
            if !shutting_down && !self.dropping.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "connection log: the queue is full ({} records); records are dropped and counted until the output catches up",
                    self.shared.capacity
                );
            }
            return;
        }
        // A load first: the steady state writes nothing shared.
        if self.dropping.load(Ordering::Relaxed) && self.dropping.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                "connection log: the queue takes records again; {} dropped so far",
                self.dropped.load(Ordering::Relaxed)
            );
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

/// The first wait after a failed write; doubled on each failure up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The writer thread: drains the queue into `output`, counts what was
/// written and lost, reports a failing output once (and once more when it
/// recovers) and backs off while it fails.
fn write_loop(shared: &Shared, output: &mut dyn LogOutput) {
    let mut batch = VecDeque::new();
    let mut failing: Option<io::ErrorKind> = None;
    let mut backoff = FIRST_BACKOFF;
    let mut lost_while_failing = 0u64;
    loop {
        let stop = {
            let mut queue = shared.lock();
            if queue.records.is_empty() && !queue.shutdown {
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
        let now = SystemTime::now();
        let progress = if stop {
            output.finish()
        } else if batch.is_empty() {
            output.tick(now)
        } else {
            output.write_batch(batch.make_contiguous(), now)
        };
        batch.clear();
        shared.pending.store(output.pending(), Ordering::Relaxed);
        shared.lock().in_flight = 0;
        shared
            .written
            .fetch_add(progress.written, Ordering::Relaxed);
        shared.unwritten.fetch_add(progress.lost, Ordering::Relaxed);
        match progress.error {
            None => {
                // Only records that got through show that the output works
                // again (a call may also just buffer them).
                if progress.written > 0 {
                    if failing.take().is_some() {
                        tracing::warn!(
                            "connection log: the output accepts writes again; {lost_while_failing} record(s) were not written"
                        );
                        lost_while_failing = 0;
                    }
                    backoff = FIRST_BACKOFF;
                }
            }
            Some(e) => {
                lost_while_failing += progress.lost;
                if failing != Some(e.kind()) {
                    tracing::error!(
                        "connection log: cannot write ({e}); records are counted as unwritten until the output recovers"
                    );
                    failing = Some(e.kind());
                }
                if !stop {
                    // Back off, but stay ready for shutdown.
                    let queue = shared.lock();
                    if !queue.shutdown {
                        let _ = shared.wake.wait_timeout(queue, backoff);
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        if stop {
            return;
        }
    }
}
