//! The X.509 layer every other module builds on: a bounded DER reader
//! ([`der`]), certificates parsed once into borrowed views ([`cert`],
//! [`extensions`]), names ([`name`], [`subject_name`]), serial numbers
//! ([`serial`]), the signature and key policy ([`signature`]), the
//! structure rules a certificate may break with their sources
//! ([`profile`]), and the textual forms headers and logs show
//! ([`fields`], [`info`]).
//!
//! Nothing here knows about trust stores, validation, revocation or
//! connections; those modules import this one, never the reverse.

pub(crate) mod cert;
pub(crate) mod der;
pub(crate) mod extensions;
pub(crate) mod fields;
pub(crate) mod info;
pub(crate) mod name;
pub(crate) mod parsed;
pub(crate) mod profile;
pub(crate) mod serial;
pub(crate) mod signature;
pub(crate) mod subject_name;

use core::fmt;

/// A key purpose the leaf must allow (extendedKeyUsage, RFC 5280 §4.2.1.12).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyPurpose {
    /// `id-kp-clientAuth` (the default for client certificates).
    ClientAuth,
    /// `id-kp-serverAuth`.
    ServerAuth,
    /// Another purpose, as encoded OID contents.
    Other(const_oid::ObjectIdentifier),
}

impl KeyPurpose {
    /// Reads the `eku` setting: `client_auth`, `server_auth`, a dotted OID,
    /// or `any` (no requirement, `Some(None)`); `None` when unreadable.
    pub fn parse_setting(text: &str) -> Option<Option<Self>> {
        match text {
            "client_auth" => Some(Some(Self::ClientAuth)),
            "server_auth" => Some(Some(Self::ServerAuth)),
            "any" | "none" => Some(None),
            oid => const_oid::ObjectIdentifier::new(oid)
                .ok()
                .map(|o| Some(Self::Other(o))),
        }
    }

    pub(crate) fn oid_bytes(&self) -> &[u8] {
        match self {
            Self::ClientAuth => extensions::oid::KP_CLIENT_AUTH,
            Self::ServerAuth => extensions::oid::KP_SERVER_AUTH,
            Self::Other(o) => o.as_bytes(),
        }
    }
}

impl fmt::Display for KeyPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientAuth => f.write_str("clientAuth (1.3.6.1.5.5.7.3.2)"),
            Self::ServerAuth => f.write_str("serverAuth (1.3.6.1.5.5.7.3.1)"),
            Self::Other(o) => write!(f, "{o}"),
        }
    }
}
