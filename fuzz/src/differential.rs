//! The differential oracle: edge-mtls against rustls-webpki 0.103.
//!
//! The property (SPEC §4): wherever edge-mtls accepts a chain, webpki accepts
//! it too, unless webpki rejects it for a reason edge-mtls deliberately does
//! not share. Those reasons are the exception list below; each is matched on a
//! feature of the path edge-mtls accepted, not on webpki's error alone (webpki
//! reports one "most specific" error across all the paths it tried, so the
//! error may come from a different branch).
//!
//! # Exceptions (webpki rejects, edge-mtls deliberately accepts)
//!
//! | id | feature of the accepted path | why edge-mtls differs |
//! |---|---|---|
//! | `v1-leaf` | the leaf has no `version` field (X.509 v1) | SPEC §4: v1 end-entity certificates are accepted (OpenSSL 3.0's `x509 -req` makes them); webpki refuses every non-v3 certificate (`UnsupportedCertVersion`). |
//! | `critical-ext-handled-by-edge` | the leaf or an intermediate has a *critical* certificatePolicies, subjectKeyIdentifier, authorityKeyIdentifier, issuerAltName, freshestCRL, authorityInfoAccess or subjectInfoAccess extension | edge-mtls processes these (policies: RFC 5280 §6.1 with initial-any-policy and no policy constraints always succeeds; the others carry no constraint); webpki understands none of them and answers `UnsupportedCriticalExtension`. |
//! | `ca-leaf` | the leaf has basicConstraints `cA=TRUE` | edge-mtls checks basicConstraints on issuers only (SPEC §4); RFC 5280 does not forbid a CA certificate as an end entity (OpenSSL and Go accept it); webpki answers `CaUsedAsEndEntity`. |
//! | `any-eku-intermediate` | an intermediate's EKU lacks clientAuth but has anyExtendedKeyUsage | edge-mtls treats anyExtendedKeyUsage on a CA as allowing every purpose (RFC 5280 §4.2.1.12); webpki has no notion of it. |
//! | `nc-form-unimplemented-in-webpki` | a name-constraints extension in the path has a directoryName subtree, or a URI (rfc822Name) subtree while a certificate below it has a URI (rfc822Name) subjectAltName | webpki does not implement these forms and fails closed (any directoryName subtree rejects every chain); edge-mtls evaluates them. |
//! | `unique-ids` | the leaf or an intermediate has issuerUniqueID/subjectUniqueID | allowed by RFC 5280 in v2/v3; webpki refuses them "to keep the code small". |
//! | `path-len-over-255` | the leaf's or an intermediate's pathLenConstraint exceeds 255 | RFC 5280 allows any non-negative INTEGER; webpki reads it as a `u8` wherever it parses basicConstraints, the leaf's included (`BadDer`). On a leaf the field constrains nothing (no certificate sits below it). |
//! | `self-issued-nc-exemption` | an intermediate is self-issued and a name-constraints extension sits above it | RFC 5280 §6.1.3 (b) exempts self-issued intermediates; webpki constrains every certificate below. |
//! | `unread-extension-contents` | the leaf or an intermediate has a cRLDistributionPoints value that is not one SEQUENCE, or an SCT-list value that is not one OCTET STRING | edge-mtls does not read these non-critical extensions (no CRL fetching, no Certificate Transparency); webpki type-checks them while parsing (`BadDer`). |
//!
//! Everything else webpki rejects — signatures, validity, basicConstraints on
//! issuers, pathLen, EKU, name constraints it implements, unknown critical
//! extensions, DER errors in fields both read — is a mismatch and a crash.
//! Independently of webpki, every signature on an accepted path is re-verified
//! with the provider's algorithms and the issuer/subject names are re-matched.

use rustls_pki_types::CertificateDer;

use crate::der::{self, oid, Inspected};
use crate::fixtures::{now, Fixtures};
use crate::input::Case;

/// The outcome of one comparison.
#[derive(Debug)]
pub enum Verdict {
    /// Both accept or edge-mtls rejects.
    Agree,
    /// webpki rejects for a listed reason.
    Excused(&'static str),
    /// edge-mtls accepts what webpki rejects for a shared reason.
    Mismatch(String),
}

/// Runs both validators on `case`.
pub fn compare(f: &Fixtures, validator: &edge_mtls::ChainValidator, case: &Case) -> Verdict {
    let refs: Vec<&[u8]> = case.intermediates.iter().map(Vec::as_slice).collect();
    let edge = validator.validate(&case.leaf, &refs, now());
    let Ok(path) = edge else {
        return Verdict::Agree;
    };

    // The path edge-mtls accepted, leaf first, anchor last.
    let mut path_ders: Vec<&[u8]> = vec![&case.leaf];
    for i in path.intermediate_indices() {
        match case.intermediates.get(i) {
            Some(c) => path_ders.push(c),
            None => return Verdict::Mismatch(format!("intermediate index {i} out of range")),
        }
    }
    match f
        .roots
        .iter()
        .find(|a| a.as_slice() == path.anchor().der().as_ref())
    {
        Some(a) => path_ders.push(a),
        None => return Verdict::Mismatch("the path's anchor is not a root of the store".into()),
    }
    let Some(inspected) = path_ders
        .iter()
        .map(|d| der::inspect(d))
        .collect::<Option<Vec<_>>>()
    else {
        return Verdict::Mismatch("accepted a path with an unreadable certificate".into());
    };
    if let Err(e) = check_links(f, &inspected) {
        return Verdict::Mismatch(e);
    }

    let wp = webpki_verify(f, case);
    let Err(error) = wp else {
        return Verdict::Agree;
    };
    if let Some(reason) = exception(&inspected) {
        return Verdict::Excused(reason);
    }
    if allow_known() {
        if let Some(bug) = known_open_bug(&inspected) {
            return Verdict::Excused(bug);
        }
    }
    Verdict::Mismatch(format!(
        "edge-mtls accepted (path {path:?}) but webpki rejected: {error:?}"
    ))
}

/// rustls-webpki's verdict with the same anchors, algorithms, time and usage.
pub fn webpki_verify(f: &Fixtures, case: &Case) -> Result<(), webpki::Error> {
    let leaf = CertificateDer::from(case.leaf.as_slice());
    let ee = webpki::EndEntityCert::try_from(&leaf)?;
    let intermediates: Vec<CertificateDer<'_>> = case
        .intermediates
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    ee.verify_for_usage(
        f.provider.signature_verification_algorithms.all,
        &f.anchors,
        &intermediates,
        now(),
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .map(|_| ())
}

/// Names chain and every signature verifies (independently of both validators).
fn check_links(f: &Fixtures, path: &[Inspected<'_>]) -> Result<(), String> {
    for (n, pair) in path.windows(2).enumerate() {
        let (child, issuer) = (&pair[0], &pair[1]);
        if child.issuer != issuer.subject {
            return Err(format!(
                "link {n}: issuer name differs from the issuer's subject"
            ));
        }
        let spki = der::single(issuer.spki).ok_or("issuer SPKI unreadable")?;
        let parts = der::elements(spki.value);
        let [alg, key] = parts.as_slice() else {
            return Err(format!("link {n}: issuer SPKI malformed"));
        };
        let key = key.value.get(1..).ok_or("empty key BIT STRING")?;
        let algs = f.provider.signature_verification_algorithms.all;
        let verified = algs.iter().any(|a| {
            a.signature_alg_id().as_ref() == child.sig_alg
                && a.public_key_alg_id().as_ref() == alg.value
                && a.verify_signature(key, child.tbs, child.signature).is_ok()
        });
        if !verified {
            return Err(format!(
                "link {n}: accepted a signature that does not verify with the issuer's key"
            ));
        }
    }
    Ok(())
}

/// Critical extensions edge-mtls processes and webpki does not know.
const EDGE_ONLY_CRITICAL: &[&[u8]] = &[
    oid::CERTIFICATE_POLICIES,
    oid::SUBJECT_KEY_ID,
    oid::AUTHORITY_KEY_ID,
    oid::ISSUER_ALT_NAME,
    oid::FRESHEST_CRL,
    oid::AUTHORITY_INFO_ACCESS,
    oid::SUBJECT_INFO_ACCESS,
];

/// The first listed exception that applies to an accepted path (leaf first,
/// anchor last).
pub fn exception(path: &[Inspected<'_>]) -> Option<&'static str> {
    let leaf = path.first()?;
    let presented = &path[..path.len() - 1];
    let intermediates = &presented[1..];

    if !leaf.has_version {
        return Some("v1-leaf");
    }
    if presented.iter().any(|c| {
        c.extensions
            .iter()
            .any(|e| e.critical && EDGE_ONLY_CRITICAL.contains(&e.oid))
    }) {
        return Some("critical-ext-handled-by-edge");
    }
    if leaf.basic_constraints().is_some_and(|(ca, _)| ca) {
        return Some("ca-leaf");
    }
    if intermediates.iter().any(|c| {
        c.ekus().is_some_and(|ekus| {
            ekus.contains(&oid::ANY_EKU) && !ekus.contains(&oid::KP_CLIENT_AUTH)
        })
    }) {
        return Some("any-eku-intermediate");
    }
    for (i, ca) in path.iter().enumerate().skip(1) {
        let tags = ca.name_constraint_tags();
        let below: Vec<u8> = path[..i].iter().flat_map(|c| c.san_tags()).collect();
        if tags.contains(&0xa4)
            || (tags.contains(&0x86) && below.contains(&0x86))
            || (tags.contains(&0x81) && below.contains(&0x81))
        {
            return Some("nc-form-unimplemented-in-webpki");
        }
    }
    if presented.iter().any(|c| c.has_unique_ids) {
        return Some("unique-ids");
    }
    if presented.iter().any(|c| {
        c.basic_constraints()
            .and_then(|(_, len)| len)
            .is_some_and(|v| {
                v.iter()
                    .fold(0u64, |a, b| a.saturating_mul(256) + u64::from(*b))
                    > 255
            })
    }) {
        return Some("path-len-over-255");
    }
    for (i, c) in path.iter().enumerate().take(path.len() - 1).skip(1) {
        let constrained_above = path[i + 1..]
            .iter()
            .any(|ca| ca.ext(oid::NAME_CONSTRAINTS).is_some());
        if c.issuer == c.subject && constrained_above {
            return Some("self-issued-nc-exemption");
        }
    }
    if presented.iter().any(|c| {
        c.ext(oid::CRL_DISTRIBUTION_POINTS)
            .is_some_and(|e| der::single(e.value).is_none_or(|t| t.tag != 0x30))
            || c.ext(oid::SCT_LIST)
                .is_some_and(|e| der::single(e.value).is_none_or(|t| t.tag != 0x04))
    }) {
        return Some("unread-extension-contents");
    }
    None
}

/// Whether `EDGE_MTLS_FUZZ_ALLOW_KNOWN=1` asks to look past the open bugs below.
fn allow_known() -> bool {
    static ALLOW: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ALLOW.get_or_init(|| std::env::var("EDGE_MTLS_FUZZ_ALLOW_KNOWN").as_deref() == Ok("1"))
}

/// Open edge-mtls bugs this target found and that are not fixed yet: each
/// entry matches its reproducer in `fuzz/regressions/differential_webpki/`.
/// They are mismatches and crash the target unless `EDGE_MTLS_FUZZ_ALLOW_KNOWN=1`
/// (what `smoke.sh` sets), so a run can look past them. Remove an entry once
/// the bug is fixed; the reproducer then guards against a regression.
///
/// None open. Fixed so far: `san-generalname-tag-10` (GeneralName tag [10]
/// accepted as "other"), `san-ip-length-0-escapes-excluded-ip-subtree` (a
/// 0-octet iPAddress SAN never matched an excluded iPAddress subtree),
/// `nc-malformed-dns-subtree-ignored` (a dNSName subtree `example.c\0m` was
/// used instead of failing closed) — src commit b4b1817 — and
/// `san-x400address-primitive-tag` (a primitive [3] x400Address accepted) —
/// src commit 9a93494.
pub fn known_open_bug(_path: &[Inspected<'_>]) -> Option<&'static str> {
    None
}
