//! Connection logs: one record per connection attempt, success or failure.
//!
//! [`ConnectionLogRecord`] carries CloudFront's connection-log fields; the
//! [`format`](mod@format) functions render it as JSON lines, W3C extended or ALB's
//! space-separated layout (and, with the `parquet` feature, Parquet files);
//! a [`QueueSink`] writes records on a background thread behind a bounded
//! queue so logging never blocks a handshake (drops are counted), to a
//! stream or to [`RotatingFiles`] in a directory; [`ReasonCounters`] counts
//! outcomes per reason code.

mod counters;
pub(crate) mod format;
mod output;
#[cfg(feature = "parquet")]
mod parquet;
mod record;
mod recovery;
mod rotation;
mod sink;

pub use counters::{CountersSnapshot, ReasonCounters};
pub use format::LogFormat;
pub use output::{LogOutput, Progress, StreamOutput};
#[cfg(feature = "parquet")]
pub use parquet::parquet_schema;
pub(crate) use record::RandomPool;
pub use record::{ConnectionId, ConnectionLogRecord, ConnectionStatus};
pub use rotation::{RotatingFiles, Rotation};
pub use sink::{ConnectionLogSink, LogShutdownError, QueueSink};
