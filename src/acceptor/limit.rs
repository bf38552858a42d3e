//! Admission: the `max_connections` cap and the accept loop's backoff when
//! `accept` itself fails.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What an accept loop does when `accept` fails (EMFILE, ENFILE, ENOBUFS):
/// waits 10 ms, doubling up to 1 s while the failures last, and reports the
/// failure once through `tracing` when it starts and once when it ends.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct AcceptBackoff {
    failures: u64,
    pause: Duration,
}

impl AcceptBackoff {
    /// An `accept` failed: how long to wait before the next one.
    pub fn failed(&mut self, error: &std::io::Error) -> Duration {
        if self.failures == 0 {
            tracing::warn!("accept failed ({error}); new connections wait until it recovers");
        }
        self.failures += 1;
        self.pause = (self.pause * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
        self.pause
    }

    /// An `accept` succeeded.
    pub fn recovered(&mut self) {
        if self.failures > 0 {
            tracing::warn!(
                "accept works again after {} failed attempt(s)",
                self.failures
            );
        }
        self.failures = 0;
        self.pause = Duration::ZERO;
    }
}

/// The number of connections a listener serves at once, and its limit.
#[derive(Debug)]
pub(super) struct ConnectionCount {
    pub(super) open: AtomicUsize,
    /// 0: no limit.
    pub(super) max: usize,
}

/// One connection counted in a [`ConnectionCount`]; released on drop.
#[derive(Debug)]
pub(super) struct ConnectionSlot(Arc<ConnectionCount>);

impl ConnectionSlot {
    /// A slot, or `None` when `max` connections are open already.
    pub(super) fn take(count: &Arc<ConnectionCount>) -> Option<Self> {
        let admitted = count
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (count.max == 0 || open < count.max).then_some(open + 1)
            })
            .is_ok();
        admitted.then(|| Self(count.clone()))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnectionCount {
    /// A count with `max` connections at most (0: no limit).
    pub(super) fn new(max: usize) -> Self {
        Self {
            open: AtomicUsize::new(0),
            max,
        }
    }
}
