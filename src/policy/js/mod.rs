//! CloudFront connection functions in JavaScript (feature `js`).
//!
//! A [`JsFunction`] runs a CloudFront connection function unmodified: a
//! top-level `connectionHandler(connection)` (plain or `async`), optionally
//! after `import cf from 'cloudfront'`, deciding with `connection.allow()` /
//! `connection.deny()` and attaching `connection.logCustomData(text)`.
//!
//! The engine is QuickJS-NG (rquickjs). The source is checked against the
//! code limit and compiled once to bytecode when it is loaded, inside an
//! instance function (its `import … from 'cloudfront'` lines moved in front,
//! lines and columns kept), so that every call gets fresh top-level
//! bindings from one module instance. Each worker thread keeps one runtime
//! per function. Calls run in a *realm*: a context whose built-ins and
//! global object are deeply frozen before any function code runs, so a call
//! cannot leave a global, a patched prototype or any other state behind;
//! the connection object is fresh and frozen for every call. A realm serves
//! up to 16,384 calls and is discarded with its runtime after any failure or
//! when a call leaves promise jobs queued. Writing to a frozen built-in or
//! to `globalThis` throws a `TypeError` (the code is strict, as module code
//! is). A source that cannot be wrapped (an `import` or `export` beyond
//! leading `cloudfront` imports) runs as its own module, one instance per
//! call, in realms of 64 calls. [`JsFunction::fresh_context_per_call`] gives
//! every call a new, unfrozen context instead (about 100 µs more per call).
//!
//! A call is bounded by [`JsLimits`]: a deadline on the thread's CPU time
//! (with a wall-clock backstop) checked by the engine's interrupt handler
//! and by the job loop, a memory limit and a stack limit. `async` handlers
//! are driven to completion on the calling thread: `cf.kvs()` answers from the store's local snapshot
//! ([`KeyValueStore::value_local`]), so a call never waits on I/O and never
//! yields to the async executor.
//!
//! The context holds ECMAScript built-ins only, without `eval` or
//! `new Function`: no `fetch`, `require`, `process`, timers, files or
//! network. `console.log` goes to `tracing` (target `edge_mtls::policy::js`)
//! and into [`JsRun::logs`].
//!
//! The connection object is CloudFront's ([`Connection`]'s serde form),
//! deeply frozen, with `clientCertInfo` as an alias of the leaf for older
//! examples. `sha256Fingerprint` is upper-case colon hex by default (as in
//! CloudFront's OCSP documentation); [`FingerprintFormat`] selects plain hex
//! or base64url instead.

mod cloudfront;
mod engine;
mod error;
mod frozen;
mod object;

use core::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Connection, ConnectionPolicy, Decision, PolicyError, Verdict};
use crate::revocation::kvs::KeyValueStore;

pub use error::{JsError, JsLoadError};

/// The most a connection object given as JSON may hold (CloudFront's
/// TestConnectionFunction limit).
pub const MAX_CONNECTION_JSON_BYTES: usize = 40_960;

/// Limits on a connection function (CloudFront's by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JsLimits {
    /// Time per call, in microseconds (default 5,000: 5 ms) of the calling
    /// thread's CPU time, so that a call the scheduler preempts is not cut
    /// short by the wait; the wall clock stops it anyway at 10 times the
    /// limit (at least 50 ms). For a connection's verdict, the first tenth
    /// of the limit is counted on the wall clock and the CPU clock (a system
    /// call) is read only by a call that runs longer: only a call preempted
    /// within its first tenth is charged for the wait.
    pub time_us: u64,
    /// Memory of the function's runtime, in bytes (default 2 MiB).
    pub memory_bytes: usize,
    /// Size of the function's source, in bytes (default 10 KiB); a larger
    /// function is refused when it is loaded.
    pub code_bytes: usize,
    /// Native stack the engine may use, in bytes (default 256 KiB).
    pub stack_bytes: usize,
}

impl Default for JsLimits {
    fn default() -> Self {
        Self {
            time_us: 5_000,
            memory_bytes: 2 << 20,
            code_bytes: 10 << 10,
            stack_bytes: 256 << 10,
        }
    }
}

impl JsLimits {
    /// The time limit as a [`Duration`].
    pub fn time(&self) -> Duration {
        Duration::from_micros(self.time_us)
    }
}

/// How `sha256Fingerprint` is written in the connection object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FingerprintFormat {
    /// `AB:CD:EF:…` (default; CloudFront's OCSP documentation).
    #[default]
    ColonHex,
    /// `abcdef…`, lower case without separators.
    Hex,
    /// Unpadded base64url of the 32 bytes.
    Base64Url,
}

/// What one call of a connection function did (CloudFront's
/// TestConnectionFunction output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsRun {
    /// `connection.allow()` / `connection.deny()`, or `None` (which denies).
    pub decision: Option<Decision>,
    /// `connection.logCustomData(…)`, cut to 800 bytes.
    pub custom_data: Option<String>,
    /// `console.log` lines (at most 64 of at most 1,024 bytes each).
    pub logs: Vec<String>,
    /// Why the call failed (the connection is then denied with
    /// `ConnectionFunctionError`).
    pub error: Option<JsError>,
    /// Wall-clock time of the call.
    pub elapsed: Duration,
    /// This thread's CPU time in the call (what the time limit measures;
    /// the wall-clock time where the platform has no thread CPU clock).
    pub cpu_time: Duration,
    /// The time limit the call ran under.
    pub limit: Duration,
}

impl JsRun {
    /// The CPU time as a percentage of the time limit (CloudFront's
    /// "compute utilization").
    pub fn compute_utilization(&self) -> u32 {
        let limit = self.limit.as_nanos().max(1);
        u32::try_from(self.cpu_time.as_nanos().saturating_mul(100) / limit).unwrap_or(u32::MAX)
    }

    /// The verdict a policy returns for this run.
    pub fn verdict(&self) -> Result<Verdict, PolicyError> {
        match &self.error {
            Some(e) => Err(PolicyError::Js(e.clone())),
            None => Ok(Verdict {
                decision: self.decision,
                custom_data: self.custom_data.clone(),
            }),
        }
    }
}

/// How many calls a frozen realm serves before it is replaced.
const REALM_CALLS: u32 = 16_384;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A connection function, compiled and ready to run.
///
/// Cheap to clone; implements [`ConnectionPolicy`].
#[derive(Clone)]
pub struct JsFunction {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    name: String,
    bytecode: &'static [(&'static str, &'static [u8])],
    /// Compiled inside an instance function (fresh top-level bindings per
    /// call from one module instance).
    wrapped: bool,
    limits: JsLimits,
    kvs: Option<Arc<dyn KeyValueStore>>,
    fingerprint: FingerprintFormat,
    realm_calls: u32,
}

impl fmt::Debug for JsFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsFunction")
            .field("name", &self.inner.name)
            .field("limits", &self.inner.limits)
            .field("kvs", &self.inner.kvs.is_some())
            .field("fingerprint", &self.inner.fingerprint)
            .finish()
    }
}

impl JsFunction {
    /// Reads and compiles the function in `path` (refusing a file larger
    /// than `limits.code_bytes` before reading it whole).
    pub fn load(path: &Path, limits: JsLimits) -> Result<Self, JsLoadError> {
        let io = |e: std::io::Error| JsLoadError::Io {
            path: path.to_path_buf(),
            kind: e.kind(),
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        let limit = u64::try_from(limits.code_bytes).unwrap_or(u64::MAX);
        if len > limit {
            return Err(JsLoadError::TooLarge {
                name: path.display().to_string(),
                bytes: len,
                limit: limits.code_bytes,
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let source = String::from_utf8(bytes).map_err(|e| JsLoadError::NotUtf8 {
            name: path.display().to_string(),
            offset: e.utf8_error().valid_up_to(),
        })?;
        Self::compile(&path.display().to_string(), &source, limits)
    }

    /// Compiles `source`; `name` appears in errors and stack traces.
    pub fn compile(name: &str, source: &str, limits: JsLimits) -> Result<Self, JsLoadError> {
        if source.len() > limits.code_bytes {
            return Err(JsLoadError::TooLarge {
                name: name.to_string(),
                bytes: u64::try_from(source.len()).unwrap_or(u64::MAX),
                limit: limits.code_bytes,
            });
        }
        let (bytecode, wrapped) = engine::compile(name, source, &limits)?;
        Ok(Self {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                name: name.to_string(),
                bytecode,
                wrapped,
                limits,
                kvs: None,
                fingerprint: FingerprintFormat::default(),
                realm_calls: REALM_CALLS,
            }),
        })
    }

    /// Binds `cf.kvs()` to `store` (without one, `cf.kvs()` calls reject).
    pub fn with_kvs(self, store: Arc<dyn KeyValueStore>) -> Self {
        self.map(|i| i.kvs = Some(store))
    }

    /// How `sha256Fingerprint` is written.
    pub fn fingerprint_format(self, format: FingerprintFormat) -> Self {
        self.map(|i| i.fingerprint = format)
    }

    fn map(self, f: impl FnOnce(&mut Inner)) -> Self {
        let i = &self.inner;
        let mut inner = Inner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: i.name.clone(),
            bytecode: i.bytecode,
            wrapped: i.wrapped,
            limits: i.limits,
            kvs: i.kvs.clone(),
            fingerprint: i.fingerprint,
            realm_calls: i.realm_calls,
        };
        f(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// A fresh context for every call instead of a frozen realm reused for
    /// up to 16,384 calls: nothing is shared between calls at all (and
    /// globals may be written), about 100 µs more per call.
    pub fn fresh_context_per_call(self, yes: bool) -> Self {
        self.map(|i| i.realm_calls = if yes { 1 } else { REALM_CALLS })
    }

    /// The limits the function runs under.
    pub fn limits(&self) -> JsLimits {
        self.inner.limits
    }

    /// Runs the function on `connection`.
    pub fn run(&self, connection: &Connection) -> JsRun {
        engine::run(&self.inner, engine::Input::Connection(connection), true)
    }

    /// Runs the function on a connection object given as JSON (at most
    /// [`MAX_CONNECTION_JSON_BYTES`]), as CloudFront's TestConnectionFunction
    /// does.
    pub fn run_json(&self, connection: &str) -> JsRun {
        if connection.len() > MAX_CONNECTION_JSON_BYTES {
            return engine::failed(
                &self.inner.limits,
                JsError::ConnectionTooLarge {
                    bytes: connection.len(),
                    limit: MAX_CONNECTION_JSON_BYTES,
                },
            );
        }
        engine::run(
            &self.inner,
            engine::Input::Json(connection.to_string()),
            true,
        )
    }
}

#[async_trait::async_trait]
impl ConnectionPolicy for JsFunction {
    async fn evaluate(&self, connection: &Connection) -> Result<Verdict, PolicyError> {
        // The verdict needs no CPU time unless the call failed.
        let run = engine::run(&self.inner, engine::Input::Connection(connection), false);
        if let Some(e) = &run.error {
            tracing::debug!(
                target: "edge_mtls::policy::js",
                connection_id = %connection.connection_id,
                elapsed_us = run.elapsed.as_micros(),
                "connection function failed: {e}"
            );
        }
        run.verdict()
    }
}
