//! Connection logs: one record per connection attempt, success or failure.
//!
//! [`ConnectionLogRecord`] carries CloudFront's connection-log fields; the
//! [`format`](mod@format) functions render it as JSON lines, W3C extended or ALB's
//! space-separated layout; a [`QueueSink`] writes records on a background
//! thread behind a bounded queue so logging never blocks a handshake (drops
//! are counted); [`ReasonCounters`] counts outcomes per reason code.

mod counters;
pub mod format;
mod record;
mod sink;

pub use counters::{CountersSnapshot, ReasonCounters};
pub use format::LogFormat;
pub use record::{ConnectionId, ConnectionLogRecord, ConnectionStatus};
pub use sink::{ConnectionLogSink, LogShutdownError, QueueSink};
