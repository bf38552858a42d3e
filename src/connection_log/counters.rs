//! Per-outcome counters for metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use super::ConnectionStatus;
use crate::reason::ReasonCode;

/// Lock-free counts of connection outcomes, one per reason code.
#[derive(Debug, Default)]
pub struct ReasonCounters {
    success: AtomicU64,
    failed: [AtomicU64; ReasonCode::ALL.len()],
}

/// A point-in-time copy of [`ReasonCounters`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CountersSnapshot {
    /// Successful connections.
    pub success: u64,
    /// Failed connections per reason code (codes with a zero count omitted).
    pub failed: Vec<(ReasonCode, u64)>,
}

impl CountersSnapshot {
    /// The count for one reason code.
    pub fn failed(&self, code: ReasonCode) -> u64 {
        self.failed
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(0, |(_, n)| *n)
    }
}

impl ReasonCounters {
    /// Counts one outcome (and forwards it to `metrics` with that feature).
    pub fn record(&self, status: ConnectionStatus) {
        match status {
            ConnectionStatus::Success => {
                self.success.fetch_add(1, Ordering::Relaxed);
            }
            ConnectionStatus::Failed(code) => {
                if let Some(slot) = ReasonCode::ALL
                    .iter()
                    .position(|c| *c == code)
                    .and_then(|i| self.failed.get(i))
                {
                    slot.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        #[cfg(feature = "metrics")]
        {
            let label = match status {
                ConnectionStatus::Success => "Success",
                ConnectionStatus::Failed(code) => code.as_str(),
            };
            metrics::counter!("edge_mtls_connections_total", "status" => label).increment(1);
        }
    }

    /// The current counts.
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            success: self.success.load(Ordering::Relaxed),
            failed: ReasonCode::ALL
                .iter()
                .zip(&self.failed)
                .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}
