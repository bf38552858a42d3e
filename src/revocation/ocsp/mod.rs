//! OCSP (RFC 6960, with the RFC 5019 lightweight profile's GET): the
//! [`OcspSource`] revocation source and its HTTP seam, [`OcspTransport`].
//!
//! CloudFront's behaviour is the model: the responder comes from each
//! certificate's authorityInfoAccess, answers are cached about 30 minutes,
//! and (optionally) every certificate must carry an OCSP URL. Whether an
//! undetermined answer denies (hard-fail, CloudFront's default) is decided
//! by the checker composing sources.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use edge_mtls::{FailurePolicy, OcspSource, RevocationChecker, RevocationScope};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
//! let ocsp = OcspSource::builder(provider)
//!     .request_timeout(Duration::from_secs(2)) // one HTTP exchange
//!     .deadline(Duration::from_secs(4)) // a whole check
//!     .cache_ttl(Duration::from_secs(30 * 60)) // CloudFront's cache time
//!     .build()?;
//! // CloudFront's behaviour: leaf and intermediates (never the root), and an
//! // undetermined status denies. `FailurePolicy::SoftFail` lets `Unknown`
//! // and unreachable responders through.
//! let checker = RevocationChecker::builder()
//!     .source_with_policy(Arc::new(ocsp), FailurePolicy::HardFail)
//!     .scope(RevocationScope::WholeChain)
//!     .build()?;
//! # let _ = checker;
//! # Ok(())
//! # }
//! ```
//!
//! A delegated responder's own revocation status is not checked (most
//! carry id-pkix-ocsp-nocheck, and checking it would need the responder it
//! speaks for).
//!
//! | file | concept |
//! |---|---|
//! | `source.rs` | [`OcspSource`]: cache, single-flight, deadline |
//! | `builder.rs` | [`OcspSourceBuilder`] and its defaults |
//! | `cert_id.rs` | the CertID: request content and cache key |
//! | `request.rs` | request encoding (`x509-ocsp`), GET URLs |
//! | `response.rs` | response parsing and verification |
//! | `responder.rs` | who may sign a response |
//! | `cache.rs` | the answer cache |
//! | `single_flight.rs` | one request per certificate at a time |
//! | `transport.rs`, `hyper_transport.rs` | HTTP |
//! | `error.rs` | [`OcspError`], [`OcspBuildError`] |

mod builder;
mod cache;
mod cert_id;
mod error;
#[cfg(feature = "ocsp-http")]
mod hyper_transport;
mod request;
mod responder;
mod response;
mod single_flight;
mod source;
mod transport;

#[cfg(test)]
mod tests;

pub use builder::OcspSourceBuilder;
pub use cert_id::CertIdHash;
pub use error::{OcspBuildError, OcspError};
#[cfg(feature = "ocsp-http")]
pub use hyper_transport::HyperTransport;
pub use response::OcspAnswer;
pub use source::OcspSource;
pub use transport::{OcspTransport, TransportError};
