//! Shared code of the edge-mtls fuzz targets: generated fixtures, the input
//! encodings, an independent DER reader, the webpki differential oracle,
//! OCSP fixtures and seed-corpus generation.

pub mod der;
pub mod differential;
pub mod fixtures;
pub mod input;
mod keys;
pub mod ocsp;
#[path = "../../testkit/pki.rs"]
mod pki;
pub mod revocation;
pub mod seeds;
pub mod tree;
