//! Connection policies ("connection functions"): allow or deny a connection
//! once per connection, after chain validation and revocation, before any
//! request is served — also when no certificate was presented.
//!
//! A [`ConnectionPolicy`] returns a [`Verdict`]; [`evaluate`] turns it into a
//! [`PolicyOutcome`] with CloudFront's rules: no decision means deny, an
//! error or a panic means deny with `ConnectionFunctionError`, and custom
//! log data is cut to 800 bytes at a character boundary.

mod builtin;
mod connection;
#[cfg(feature = "js")]
pub(crate) mod js;
mod matcher;

use core::fmt;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt as _;

use crate::reason::ReasonCode;

pub use builtin::{AllOf, AllowAll, AnyOf, FirstMatch, Rule};
pub use connection::{CertificateObject, Certificates, ClientCertificate, Connection, Validity};
pub use matcher::{IpNet, IpNetParseError, Matcher, NamePattern};

/// The most custom log data a policy may attach (CloudFront's limit).
pub const MAX_CUSTOM_DATA_BYTES: usize = 800;

/// Allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// `connection.allow()`.
    Allow,
    /// `connection.deny()`.
    Deny,
}

/// What a policy returns: a decision (or none) and optional log data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// `None` when the policy made no decision (which denies).
    pub decision: Option<Decision>,
    /// `connection.logCustomData(…)`.
    pub custom_data: Option<String>,
}

impl Verdict {
    /// Allow.
    pub fn allow() -> Self {
        Self {
            decision: Some(Decision::Allow),
            custom_data: None,
        }
    }

    /// Deny.
    pub fn deny() -> Self {
        Self {
            decision: Some(Decision::Deny),
            custom_data: None,
        }
    }

    /// No decision (a combinator moves on; at the top it denies).
    pub fn none() -> Self {
        Self::default()
    }

    /// Attaches custom log data.
    pub fn with_custom_data(mut self, data: impl Into<String>) -> Self {
        self.custom_data = Some(data.into());
        self
    }
}

/// A policy failure; the connection is denied with `ConnectionFunctionError`.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The policy reported an error.
    #[error("connection policy failed: {0}")]
    Failed(String),
    /// A lookup the policy depends on failed (e.g. the deny-list store).
    #[error("connection policy lookup failed: {0}")]
    Lookup(String),
    /// A JavaScript connection function did not complete.
    #[cfg(feature = "js")]
    #[error(transparent)]
    Js(js::JsError),
}

/// Decides whether a connection may proceed.
#[async_trait::async_trait]
pub trait ConnectionPolicy: Send + Sync + fmt::Debug {
    /// Evaluates one connection.
    async fn evaluate(&self, connection: &Connection) -> Result<Verdict, PolicyError>;
}

/// The final word on a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyOutcome {
    /// Serve the connection.
    Allowed {
        /// Custom log data, at most 800 bytes.
        custom_data: Option<String>,
    },
    /// Close the connection.
    Denied {
        /// `ConnectionFunctionDenied` or `ConnectionFunctionError`.
        reason: ReasonCode,
        /// Custom log data, at most 800 bytes.
        custom_data: Option<String>,
        /// What failed, for errors and panics.
        detail: Option<String>,
    },
}

impl PolicyOutcome {
    /// Whether the connection may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }
}

/// Runs `policy` on `connection`, catching panics, and applies the rules:
/// no decision denies, errors and panics deny with `ConnectionFunctionError`.
pub async fn evaluate(policy: &dyn ConnectionPolicy, connection: &Connection) -> PolicyOutcome {
    let result = AssertUnwindSafe(policy.evaluate(connection))
        .catch_unwind()
        .await;
    match result {
        Ok(Ok(verdict)) => {
            let custom_data = verdict.custom_data.map(truncate_custom_data);
            match verdict.decision {
                Some(Decision::Allow) => PolicyOutcome::Allowed { custom_data },
                Some(Decision::Deny) => PolicyOutcome::Denied {
                    reason: ReasonCode::ConnectionFunctionDenied,
                    custom_data,
                    detail: None,
                },
                None => PolicyOutcome::Denied {
                    reason: ReasonCode::ConnectionFunctionDenied,
                    custom_data,
                    detail: Some("the connection policy made no decision".into()),
                },
            }
        }
        Ok(Err(e)) => PolicyOutcome::Denied {
            reason: ReasonCode::ConnectionFunctionError,
            custom_data: None,
            detail: Some(e.to_string()),
        },
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".into());
            PolicyOutcome::Denied {
                reason: ReasonCode::ConnectionFunctionError,
                custom_data: None,
                detail: Some(format!("connection policy panicked: {message}")),
            }
        }
    }
}

/// Cuts `data` to [`MAX_CUSTOM_DATA_BYTES`] at a UTF-8 character boundary.
pub fn truncate_custom_data(mut data: String) -> String {
    if data.len() > MAX_CUSTOM_DATA_BYTES {
        let mut end = MAX_CUSTOM_DATA_BYTES;
        while !data.is_char_boundary(end) {
            end -= 1;
        }
        data.truncate(end);
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_data_is_cut_at_a_character_boundary() {
        let s = "é".repeat(500); // 1000 bytes
        let cut = truncate_custom_data(s);
        assert_eq!(cut.len(), 800);
        let s = format!("a{}", "é".repeat(500)); // 1001 bytes, boundary at odd offsets
        let cut = truncate_custom_data(s);
        assert_eq!(cut.len(), 799);
        assert!(cut.is_char_boundary(cut.len()));
    }
}
