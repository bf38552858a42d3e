//! Shared code of the edge-mtls fuzz targets: generated fixtures, the input
//! encodings, an independent DER reader, the webpki differential oracle,
//! OCSP fixtures and seed-corpus generation.

pub mod der;
pub mod differential;
pub mod fixtures;
pub mod input;
mod keys;
#[path = "../../testkit/pki.rs"]
mod pki;
pub mod ocsp;
pub mod revocation;
pub mod seeds;
pub mod tree;
