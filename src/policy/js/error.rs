//! Why a connection function could not be loaded or did not complete.

use std::path::PathBuf;
use std::time::Duration;

/// A connection function that cannot be loaded.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JsLoadError {
    /// The file could not be read.
    #[error("connection function {}: {kind}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        kind: std::io::ErrorKind,
    },
    /// The source is larger than the code limit.
    #[error("connection function {name} is {bytes} bytes, more than the code limit of {limit}")]
    TooLarge {
        /// The file or name.
        name: String,
        /// Its size.
        bytes: u64,
        /// `JsLimits::code_bytes`.
        limit: usize,
    },
    /// The source is not UTF-8.
    #[error("connection function {name} is not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 {
        /// The file or name.
        name: String,
        /// The first invalid byte.
        offset: usize,
    },
    /// The source does not parse, imports a module other than `cloudfront`,
    /// or its top-level code fails.
    #[error("connection function {name}: {message}")]
    Syntax {
        /// The file or name.
        name: String,
        /// The engine's message (with line and column).
        message: String,
    },
    /// The source has no top-level `connectionHandler` function.
    #[error("connection function {name} defines no top-level connectionHandler function")]
    NoHandler {
        /// The file or name.
        name: String,
    },
    /// The engine could not be started within the memory limit.
    #[error("connection function {name}: the engine could not start within {memory_bytes} bytes")]
    Engine {
        /// The file or name.
        name: String,
        /// `JsLimits::memory_bytes`.
        memory_bytes: usize,
    },
}

/// A call of a connection function that did not complete; the connection is
/// denied with `ConnectionFunctionError`.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JsError {
    /// The call ran past its time limit and was interrupted.
    #[error("connection function interrupted after {}µs of CPU time (limit {}µs)", elapsed.as_micros(), limit.as_micros())]
    Timeout {
        /// The limit.
        limit: Duration,
        /// The CPU time it had used when it was stopped.
        elapsed: Duration,
    },
    /// The function ran out of memory.
    #[error("connection function exceeded its memory limit of {limit} bytes")]
    OutOfMemory {
        /// `JsLimits::memory_bytes`.
        limit: usize,
    },
    /// The function exceeded its stack limit (deep recursion).
    #[error("connection function exceeded its stack limit of {limit} bytes")]
    StackOverflow {
        /// `JsLimits::stack_bytes`.
        limit: usize,
    },
    /// The function threw (or its promise rejected) and did not catch it.
    #[error("connection function threw {name}: {message}")]
    Uncaught {
        /// The error's `name` (`TypeError`, …), or the thrown value's type.
        name: String,
        /// Its `message` (at most 1,024 bytes).
        message: String,
        /// Its `stack`, when it has one (at most 1,024 bytes).
        stack: Option<String>,
    },
    /// The handler's promise is still pending with nothing left to run.
    #[error("connection function returned a promise that never settles")]
    NeverSettled,
    /// The connection object given as JSON is larger than allowed.
    #[error("connection object of {bytes} bytes exceeds {limit}")]
    ConnectionTooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The connection object given as JSON is not a JSON object.
    #[error("connection object is not a JSON object: {detail}")]
    InvalidConnection {
        /// The parser's message.
        detail: String,
    },
    /// The engine failed outside the function (context creation, module
    /// linking).
    #[error("connection function engine error: {detail}")]
    Engine {
        /// What failed.
        detail: String,
    },
}
