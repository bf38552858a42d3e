//! Trust stores (SPEC §3): bundle parsing, the errors that name the block
//! and subject, file and directory sources, and atomic hot reload.

mod common;

use common::{openssl_line, validator, LeafOptions, Pki};
use edge_mtls::{BytesSource, DirectorySource, FileSource, TrustStoreWarning};
use edge_mtls::{TrustStore, TrustStoreError, TrustStoreHandle, ValidationError};
use rustls_pki_types::UnixTime;

fn now() -> UnixTime {
    UnixTime::now()
}

#[test]
fn bundle_with_comments_and_blank_lines_loads() {
    let pki = Pki::new(1);
    let bundle = format!(
        "# Corporate CA bundle, exported 2024-01-01\n\
         \n\
         Subject: the root\n\
         {}\n\
         \n   \n\
         ## the issuing intermediate ##\n\
         \n\
         {}\n\
         trailing notes\n",
        pki.root.pem(),
        pki.intermediates[0].pem()
    );
    let store = TrustStore::from_pem(bundle.as_bytes()).expect("comments are allowed");
    assert_eq!(store.len(), 2);
    assert!(store.warnings().is_empty());
    let subjects: Vec<&str> = store.anchors().iter().map(|a| a.subject()).collect();
    assert!(
        subjects[0].contains("CN=edge-mtls test root CA"),
        "{subjects:?}"
    );
    assert!(
        subjects[1].contains("CN=edge-mtls test intermediate CA"),
        "{subjects:?}"
    );

    // Hand-edited bundles: CRLF line endings and trailing spaces.
    let crlf = bundle.replace('\n', " \r\n");
    let store = TrustStore::from_pem(crlf.as_bytes()).expect("CRLF bundle");
    assert_eq!(store.len(), 2);
}

#[test]
fn duplicate_certificate_is_deduped_with_a_warning() {
    let pki = Pki::new(1);
    let root = pki.root.pem();
    let bundle = format!("{root}{}{root}", pki.intermediates[0].pem());
    let store = TrustStore::builder()
        .add_bundle("ca-bundle.pem", bundle.as_bytes())
        .build()
        .expect("duplicates are not fatal");
    assert_eq!(store.len(), 2);
    match store.warnings() {
        [TrustStoreWarning::Duplicate {
            source_name,
            block,
            subject,
        }] => {
            assert_eq!(source_name, "ca-bundle.pem");
            assert_eq!(*block, 2);
            assert!(subject.contains("CN=edge-mtls test root CA"), "{subject}");
        }
        other => panic!("expected one duplicate warning, got {other:?}"),
    }

    // Across bundles too: the later copy is dropped.
    let store = TrustStore::builder()
        .add_bundle("first", root.as_bytes())
        .add_bundle("second", root.as_bytes())
        .build()
        .unwrap();
    assert_eq!(store.len(), 1);
    assert!(matches!(
        store.warnings(),
        [TrustStoreWarning::Duplicate { source_name, block: 0, .. }] if source_name == "second"
    ));
}

#[test]
fn non_ca_certificate_is_refused_naming_block_and_subject() {
    let pki = Pki::new(0);
    let leaf = pki.client("alice client", &LeafOptions::default());
    let bundle = format!(
        "{}\n# oops, a client cert\n{}",
        pki.root.pem(),
        leaf.chain_pem()
    );
    let err = TrustStore::builder()
        .add_bundle("store.pem", bundle.as_bytes())
        .build()
        .unwrap_err();
    match &err {
        TrustStoreError::NotCa {
            source_name,
            block,
            subject,
        } => {
            assert_eq!(source_name, "store.pem");
            assert_eq!(*block, 1);
            assert!(subject.contains("CN=alice client"), "{subject}");
        }
        other => panic!("expected NotCa, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("store.pem") && message.contains("#1") && message.contains("alice client"),
        "{message}"
    );
}

#[test]
fn garbage_base64_block_is_refused_naming_the_block() {
    let pki = Pki::new(0);
    let bundle = format!(
        "{}-----BEGIN CERTIFICATE-----\nThis is not base64 at all!!\n-----END CERTIFICATE-----\n",
        pki.root.pem()
    );
    let err = TrustStore::builder()
        .add_bundle("broken.pem", bundle.as_bytes())
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, TrustStoreError::Pem { source_name, block: 1, .. } if source_name == "broken.pem"),
        "{err:?}"
    );
    assert!(err.to_string().contains("block #1"), "{err}");
}

#[test]
fn valid_base64_that_is_no_certificate_is_refused_naming_the_block() {
    let pki = Pki::new(0);
    // "hello world, not DER" in base64.
    let bundle = format!(
        "{}{}-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQsIG5vdCBERVI=\n-----END CERTIFICATE-----\n",
        pki.root.pem(),
        pki.root.pem()
    );
    let err = TrustStore::from_pem(bundle.as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            TrustStoreError::UnparsableCertificate { block: 2, .. }
                | TrustStoreError::Pem { block: 2, .. }
        ),
        "{err:?}"
    );
}

#[test]
fn unterminated_block_and_private_keys_are_refused() {
    let pki = Pki::new(0);
    let root = pki.root.pem();
    let truncated = &root[..root.len() - 30];
    let err = TrustStore::from_pem(truncated.as_bytes()).unwrap_err();
    assert!(
        matches!(err, TrustStoreError::Pem { block: 0, .. }),
        "{err:?}"
    );

    // A private key pasted into a bundle must not be silently skipped.
    let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let err = TrustStore::from_pem(format!("{root}{key}").as_bytes()).unwrap_err();
    assert!(
        matches!(err, TrustStoreError::Pem { block: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn empty_bundles_are_refused() {
    assert!(matches!(
        TrustStore::from_pem(b""),
        Err(TrustStoreError::Empty)
    ));
    let err = TrustStore::from_pem(b"# nothing but a comment\n\n").unwrap_err();
    assert!(
        matches!(err, TrustStoreError::Empty | TrustStoreError::Pem { .. }),
        "{err:?}"
    );
}

#[test]
fn weak_rsa_ca_is_refused_as_unsupported_key() {
    let dir = tempfile::tempdir().unwrap();
    openssl_line(
        dir.path(),
        "req -x509 -newkey rsa:1024 -nodes -keyout weak.key -out weak.pem \
         -days 30 -subj /CN=weak-rsa-ca",
    );
    let pki = Pki::new(0);
    let weak = std::fs::read_to_string(dir.path().join("weak.pem")).unwrap();
    let bundle = format!("{}{weak}", pki.root.pem());
    let err = TrustStore::from_pem(bundle.as_bytes()).unwrap_err();
    match &err {
        TrustStoreError::UnsupportedKey {
            block,
            subject,
            detail,
            ..
        } => {
            assert_eq!(*block, 1);
            assert!(subject.contains("CN=weak-rsa-ca"), "{subject}");
            assert!(detail.contains("1024"), "{detail}");
        }
        other => panic!("expected UnsupportedKey, got {other:?}"),
    }
}

#[test]
fn der_input_is_accepted() {
    let pki = Pki::new(1);
    let store = TrustStore::from_pem(pki.root.der()).expect("a DER certificate");
    assert_eq!(store.len(), 1);

    let mut two = pki.root.der().to_vec();
    two.extend_from_slice(pki.intermediates[0].der());
    let store = TrustStore::from_pem(&two).expect("concatenated DER");
    assert_eq!(store.len(), 2);

    // And it validates like the PEM store does.
    let leaf = pki.client("der", &LeafOptions::default());
    let v = validator(TrustStoreHandle::new(store), |b| b);
    v.validate(leaf.der(), &leaf.intermediates(), now())
        .unwrap();

    let err = TrustStore::from_pem(b"\x01\x02\x03 not DER").unwrap_err();
    assert!(
        matches!(err, TrustStoreError::Pem { block: 0, .. }),
        "{err:?}"
    );
}

#[test]
fn directory_source_loads_every_certificate_file() {
    let a = Pki::new(1);
    let b = Pki::new(0);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a-root.pem"), a.root.pem()).unwrap();
    std::fs::write(d.join("a-intermediate.crt"), a.intermediates[0].pem()).unwrap();
    std::fs::write(d.join("b-root.der"), b.root.der()).unwrap();
    std::fs::write(d.join("README.txt"), "not a certificate, must be ignored").unwrap();
    std::fs::write(d.join("b-root.key"), "-----BEGIN PRIVATE KEY-----\n").unwrap();
    std::fs::create_dir(d.join("nested.pem")).unwrap();

    let store = TrustStore::builder().add_directory(d).build().unwrap();
    assert_eq!(store.len(), 3);

    // The same through a reload source.
    let handle = TrustStoreHandle::new(TrustStore::from_pem(a.root.pem().as_bytes()).unwrap());
    let generation = handle.reload(&DirectorySource::new(d)).unwrap();
    assert_eq!(generation, 2);
    assert_eq!(handle.load().len(), 3);

    let v = validator(handle, |b| b);
    for leaf in [
        a.client("a", &LeafOptions::default()),
        b.client("b", &LeafOptions::default()),
    ] {
        v.validate(leaf.der(), &leaf.intermediates(), now())
            .unwrap();
    }
}

#[test]
fn file_sources_name_the_file_in_errors() {
    let pki = Pki::new(0);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.pem");
    std::fs::write(&good, pki.root.pem()).unwrap();
    assert_eq!(
        TrustStore::builder().add_file(&good).build().unwrap().len(),
        1
    );

    let leaf = pki.client("leaf in file", &LeafOptions::default());
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, leaf.chain_pem()).unwrap();
    let err = TrustStore::builder().add_file(&bad).build().unwrap_err();
    assert!(err.to_string().contains("bad.pem"), "{err}");

    let missing = dir.path().join("missing.pem");
    let err = TrustStore::builder()
        .add_file(&missing)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            TrustStoreError::File(edge_mtls::FileInputError::Io { ref path, .. }) if *path == missing
        ),
        "{err:?}"
    );
}

#[test]
fn reload_with_bad_bundle_keeps_old_store_and_good_reload_switches_at_once() {
    let old = Pki::new(1);
    let new = Pki::new(1);
    let old_leaf = old.client("old client", &LeafOptions::default());
    let new_leaf = new.client("new client", &LeafOptions::default());

    let handle = TrustStoreHandle::new(TrustStore::from_pem(old.root.pem().as_bytes()).unwrap());
    assert_eq!(handle.generation(), 1);
    // The validator keeps its verified-chain cache on (the default).
    let v = validator(handle.clone(), |b| b);
    let path = v
        .validate(old_leaf.der(), &old_leaf.intermediates(), now())
        .unwrap();
    assert_eq!(path.trust_store_generation(), 1);

    // A bad bundle (a client certificate is not a CA) is refused...
    let bad = BytesSource::new("bad-bundle", new_leaf.chain_pem());
    let err = handle.reload(&bad).unwrap_err();
    assert!(matches!(err, TrustStoreError::NotCa { .. }), "{err:?}");
    // ...and so is an unreadable file and an empty bundle...
    assert!(handle
        .reload(&FileSource::new("/nonexistent/ca.pem"))
        .is_err());
    assert!(handle
        .reload(&BytesSource::new("empty", Vec::new()))
        .is_err());
    // ...while the old store keeps serving, same generation.
    assert_eq!(handle.generation(), 1);
    assert_eq!(handle.load().len(), 1);
    v.validate(old_leaf.der(), &old_leaf.intermediates(), now())
        .expect("old store still serves after failed reloads");
    assert!(v
        .validate(new_leaf.der(), &new_leaf.intermediates(), now())
        .is_err());

    // A good reload bumps the generation and takes effect immediately,
    // cached verdicts of the old store included.
    let good = BytesSource::new("new-bundle", new.root.pem());
    assert_eq!(handle.reload(&good).unwrap(), 2);
    assert_eq!(handle.generation(), 2);
    let err = v
        .validate(old_leaf.der(), &old_leaf.intermediates(), now())
        .unwrap_err();
    assert!(
        matches!(err, ValidationError::UnknownIssuer { .. }),
        "{err:?}"
    );
    let path = v
        .validate(new_leaf.der(), &new_leaf.intermediates(), now())
        .expect("new store trusted at once");
    assert_eq!(path.trust_store_generation(), 2);

    // replace() goes through the same generation counter.
    let both = format!("{}{}", old.root.pem(), new.root.pem());
    assert_eq!(
        handle.replace(TrustStore::from_pem(both.as_bytes()).unwrap()),
        3
    );
    assert_eq!(handle.load().generation(), 3);
    v.validate(old_leaf.der(), &old_leaf.intermediates(), now())
        .expect("old root trusted again");
}

#[test]
fn reload_reaches_a_running_tls_listener() {
    // The listener's verifier reads the handle on every handshake: a reload
    // changes who gets in without rebuilding the ServerConfig.
    let old = Pki::new(0);
    let new = Pki::new(0);
    let old_leaf = old.client("old", &LeafOptions::default());
    let new_leaf = new.client("new", &LeafOptions::default());
    let handle = old.root_store();
    let config =
        common::mtls_server_config(handle.clone(), edge_mtls::ValidationMode::Required, |b| b);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (outcome, _) = common::handshake(config.clone(), Some(&old_leaf.identity())).await;
        outcome.expect_accepted();

        handle
            .reload(&BytesSource::new("new", new.root.pem()))
            .unwrap();

        let (outcome, _) = common::handshake(config.clone(), Some(&old_leaf.identity())).await;
        outcome.expect_alert(rustls::AlertDescription::UnknownCA);
        let (outcome, _) = common::handshake(config, Some(&new_leaf.identity())).await;
        outcome.expect_accepted();
    });
}
