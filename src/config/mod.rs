//! One configuration for every listener.
//!
//! [`MtlsConfig`] is plain data (serde: load it from TOML or JSON) holding
//! everything a listener needs: the mode, the trust store, the validation
//! options, revocation sources, headers, connection logs, handshake timeout,
//! session resumption and per-SNI overrides. [`MtlsConfigBuilder`] adds what
//! cannot live in a file (a connection policy, a log sink, extra revocation
//! sources, a crypto provider, in-memory keys) and [`build`](MtlsConfigBuilder::build)
//! validates everything at once, returning one [`Edge`]: a cheap-to-clone
//! handle that the axum, actix-web, hyper and plain tokio listeners all share.
//!
//! ```toml
//! distribution_id = "E2EXAMPLE"
//! mode = "required"                 # required | optional | passthrough
//! profile = "interop"               # interop (default) | strict
//! max_chain_depth = 4
//! handshake_timeout_ms = 10000
//! resumption = true
//! max_connections = 10000           # 0: no limit
//! release_idle_buffers = true       # idle keep-alive connections hold no HTTP buffers (axum)
//! watch = false                     # reload trust store, CRLs, deny lists on change (feature `watch`)
//!
//! [cache]
//! verified_chains = 4096
//! refused_chains = 1024             # a repeated hostile chain costs a lookup
//! refused_ttl_secs = 60
//!
//! [server]
//! cert_chain = "demo-pki/server.pem"
//! key = "demo-pki/server.key"
//!
//! [trust_store]
//! files = ["demo-pki/ca-bundle.pem"]
//!
//! [revocation.deny_list]
//! kvs_json = ["revoked.json"]        # CloudFront KeyValueStore JSON
//! # redis = "redis://10.0.0.5:6379"  # or one a fleet shares (feature `redis`):
//! # store = "edge-mtls"              #   store name, stream_length, fail_closed_after = "5m"
//!
//! [headers]
//! profiles = ["cloudfront", "rfc9440"]
//! connection_id_header = "X-Edge-Connection-Id"
//!
//! [log]
//! format = "json_lines"              # json_lines | w3c | alb | parquet (feature)
//! target = "stdout"                  # stdout | stderr | off | a file path | dir:DIR
//! rotate = "1h"                      # dir: targets: 30s, 15m, 1h, 1d
//! max_bytes = 134217728              # dir: targets: a file's size limit
//! hive = false                       # dir: targets: distributionid=…/year=…/…/hour=…/
//!
//! # [forwarded]                     # behind a proxy that terminates TLS (no [server] needed)
//! # dialect = "alb_passthrough"      # cloudfront | xfcc | rfc9440 | pem-header:NAME | der-header:NAME
//! # trusted_proxies = ["10.0.0.0/8"]
//!
//! [sni."partners.example.com"]
//! mode = "optional"
//! distribution_id = "E2PARTNERS"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::{NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::acceptor::{MtlsAcceptor, Site};
use crate::chain_validator::{ChainValidator, KeyPurpose, Profile, ValidatorBuildError};
use crate::connection_log::{ConnectionLogSink, LogFormat, QueueSink, Rotation};
use crate::file_input::read_bounded;
use crate::forwarded::{ForwardedDialect, ForwardedLimits, ForwardedVerifier, TrustedProxies};
use crate::header_builder::{HeaderBuilder, HeaderConfigError, HeaderProfile, XfccMode};
use crate::policy::ConnectionPolicy;
use crate::revocation::crl::{CrlSource, MissingCrlPolicy, StalePolicy};
use crate::revocation::generation::{GenerationCrls, GenerationDenyList, RevocationSnapshot};
use crate::revocation::kvs::{ImportOptions, MemoryKeyValueStore};
use crate::revocation::ocsp::OcspSource;
use crate::revocation::{
    DenyListSource, FailurePolicy, IssuerScoping, RevocationChecker, RevocationScope,
    RevocationSource,
};
use crate::rustls_verifier::{MtlsClientVerifier, ValidationMode, VerifierBuildError};
use crate::trust_store::{TrustStore, TrustStoreError, TrustStoreHandle};

mod assemble;
mod builder;
mod edge;
mod error;
mod function;
mod header_profile;
mod reload;
mod settings;

#[allow(unused_imports)]
use assemble::*;
pub use builder::*;
pub use edge::*;
pub use error::*;
use function::file_policy;
pub use reload::*;
pub use settings::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_keeps_every_setting() {
        let text = r#"
            distribution_id = "E2EXAMPLE"
            mode = "optional"
            profile = "strict"
            max_chain_depth = 5
            resumption = false
            [server]
            cert_chain = "s.pem"
            key = "s.key"
            [trust_store]
            files = ["ca.pem"]
            [revocation]
            scope = "leaf_only"
            [revocation.deny_list]
            serials = ["01"]
            [headers]
            profiles = ["cloudfront", "rfc9440", "custom:X-Client-"]
            [log]
            format = "w3c"
            target = "off"
            [sni."*.example.com"]
            mode = "passthrough"
            profile = "interop"
        "#;
        let config = MtlsConfig::from_toml(text).unwrap();
        assert_eq!(config.mode, ValidationMode::Optional);
        assert_eq!(config.profile, Profile::Strict);
        assert_eq!(config.sni["*.example.com"].profile, Some(Profile::Interop));
        assert_eq!(MtlsConfig::default().profile, Profile::Interop);
        assert_eq!(config.max_chain_depth, 5);
        assert!(!config.resumption);
        assert_eq!(config.revocation.scope, RevocationScope::LeafOnly);
        assert_eq!(
            config.headers.profiles,
            vec![
                HeaderProfile::CloudFront,
                HeaderProfile::Rfc9440,
                HeaderProfile::Custom {
                    prefix: "X-Client-".into()
                }
            ]
        );
        assert_eq!(config.log.format, LogFormat::W3c);
        assert_eq!(
            config.sni["*.example.com"].mode,
            Some(ValidationMode::Passthrough)
        );
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(MtlsConfig::from_json(&json).unwrap(), config);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = MtlsConfig::from_toml("mode = \"sometimes\"").unwrap_err();
        assert!(e.to_string().contains("sometimes"), "{e}");
        let e = MtlsConfig::from_toml("profile = \"pedantic\"").unwrap_err();
        assert!(e.to_string().contains("pedantic"), "{e}");
        let e = MtlsConfig::from_toml("max_chain_dept = 3").unwrap_err();
        assert!(e.to_string().contains("max_chain_dept"), "{e}");
        let e = MtlsConfig::from_toml("[headers]\nprofiles = [\"nginx\"]").unwrap_err();
        assert!(
            e.to_string().contains("unknown header profile `nginx`"),
            "{e}"
        );
    }

    #[test]
    fn log_settings_for_rotating_files_are_checked_and_named() {
        assert_eq!(parse_interval("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_interval("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_interval("1h"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_interval("1d"), Ok(Duration::from_secs(86_400)));
        for bad in [
            "",
            "1",
            "h",
            "1.5h",
            "-1h",
            "1w",
            "0s",
            "99999999999999999999d",
        ] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
        let config = MtlsConfig::from_toml(
            "[log]\ntarget = \"dir:logs/\"\nformat = \"parquet\"\nrotate = \"15m\"\nmax_bytes = 1048576\nhive = true\nrow_group_rows = 500\n",
        )
        .unwrap();
        assert_eq!(config.log.format, LogFormat::Parquet);
        assert_eq!(config.log.target, "dir:logs/");
        assert_eq!(config.log.rotate, "15m");
        assert_eq!(config.log.max_bytes, 1_048_576);
        assert!(config.log.hive);
        assert_eq!(config.log.row_group_rows, 500);

        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let settings = |f: &dyn Fn(&mut LogSettings)| {
            let mut s = LogSettings {
                target: format!("dir:{}", dir.display()),
                ..LogSettings::default()
            };
            f(&mut s);
            s
        };
        let named = |s: LogSettings, setting: &str| match open_log(&s) {
            Err(ConfigError::Invalid { setting: got, .. }) => assert_eq!(got, setting),
            Err(other) => panic!("{setting}: {other}"),
            Ok(_) => panic!("{setting}: accepted"),
        };
        named(settings(&|s| s.rotate = "1 hour".into()), "log.rotate");
        named(settings(&|s| s.max_bytes = 0), "log.max_bytes");
        named(settings(&|s| s.target = "dir:".into()), "log.target");
        named(
            settings(&|s| {
                s.format = LogFormat::Parquet;
                s.target = "stdout".into();
            }),
            "log.format",
        );
        #[cfg(not(feature = "parquet"))]
        named(settings(&|s| s.format = LogFormat::Parquet), "log.format");
        let (sink, queue) = open_log(&settings(&|_| {})).unwrap();
        assert!(sink.is_some());
        assert_eq!(queue.unwrap().shutdown().unwrap(), 0);
    }

    #[test]
    fn build_names_the_missing_or_broken_part() {
        let e = MtlsConfig::builder().build().unwrap_err();
        assert!(matches!(e, ConfigError::MissingTrustStore { .. }), "{e}");
        let e = MtlsConfig::builder()
            .trust_store_file("/nonexistent/ca.pem")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        // Devices, FIFOs and oversized files are refused before any read.
        let e = MtlsConfig::builder()
            .trust_store_file("/dev/zero")
            .build()
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("/dev/zero: not a regular file (a character device)"),
            "{e}"
        );
        let e = MtlsConfig::from_file("/dev/zero").unwrap_err();
        assert_eq!(
            e.to_string(),
            "configuration file: /dev/zero: not a regular file (a character device)"
        );
        let mut b = MtlsConfig::builder().mode(ValidationMode::Passthrough);
        b.settings().eku = "clientauth".into();
        b.settings().server = Some(ServerFiles {
            cert_chain: "/nonexistent/s.pem".into(),
            key: "/nonexistent/s.key".into(),
        });
        let e = b.build().unwrap_err();
        assert!(e.to_string().contains("/nonexistent/s.pem"), "{e}");
        let e = MtlsConfig::builder()
            .mode(ValidationMode::Passthrough)
            .build()
            .unwrap_err();
        assert!(matches!(e, ConfigError::MissingServerIdentity), "{e}");
        assert!(check_sni_pattern("a.*.example.com").is_err());
        assert!(check_sni_pattern("*.example.com").is_ok());
        assert_eq!(KeyPurpose::parse_setting("clientauth"), None);
        assert_eq!(
            KeyPurpose::parse_setting("1.3.6.1.5.5.7.3.2"),
            Some(Some(KeyPurpose::Other(
                const_oid::db::rfc5280::ID_KP_CLIENT_AUTH
            )))
        );
    }
}
