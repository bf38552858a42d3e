//! The connection object a function sees, with the realm's `allow`, `deny`
//! and `logCustomData` and the `clientCertInfo` alias: written into the
//! realm as frozen objects from a `Connection` (`build_from`), or parsed
//! from CloudFront's JSON and frozen (`build`, for `test-function`); and
//! `console`.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use base64::Engine as _;
use rquickjs::function::{Opt, Rest};
use rquickjs::{Ctx, Function, Object, Persistent, Value};

use super::frozen::{Frozen, Shapes};
use super::FingerprintFormat;
use crate::policy::connection::Described;
use crate::policy::{truncate_custom_data, Connection, Decision};
use crate::revocation::{CertificateRevocationStatus, RevocationStatus};

/// The most `console.log` lines kept per call.
pub(super) const MAX_LOG_LINES: usize = 64;
/// The most bytes kept of one `console.log` line.
pub(super) const MAX_LOG_LINE_BYTES: usize = 1024;

/// What the function did through the connection object and `console`.
#[derive(Default)]
pub(super) struct CallState {
    pub(super) decision: Option<Decision>,
    pub(super) custom_data: Option<String>,
    pub(super) logs: Vec<String>,
    pub(super) dropped_logs: usize,
    pub(super) connection_id: String,
}

impl CallState {
    fn log(&mut self, line: String) {
        if self.logs.len() >= MAX_LOG_LINES {
            self.dropped_logs += 1;
            return;
        }
        let line = cut(line, MAX_LOG_LINE_BYTES);
        tracing::info!(
            target: "edge_mtls::policy::js",
            connection_id = %self.connection_id,
            "{line}"
        );
        self.logs.push(line);
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
pub(super) fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// CloudFront's connection object as one JSON document, fingerprints in
/// `format` (what [`build_from`] assembles; tests compare the two).
#[cfg(test)]
pub(super) fn connection_json(connection: &Connection, format: FingerprintFormat) -> String {
    let mut text = serde_json::to_string(connection).unwrap_or_default();
    for described in connection.described().unwrap_or_default() {
        if let Some(object) = described.object() {
            let colon = &object.sha256_fingerprint;
            text = text.replace(colon.as_str(), &reformat_fingerprint(colon, format));
        }
    }
    text
}

/// The most leaf objects, and the most intermediate objects, a realm keeps
/// (a few kilobytes of the function's memory apiece): a repeated client's
/// leaf and the intermediates every client shares are written and frozen
/// once per realm, and many distinct leaves never push the intermediates
/// out.
pub(super) const KEPT_CERTIFICATES: usize = 8;

/// How many leaves a realm remembers having seen: a leaf's object is kept
/// from its second call on, so that a stream of different clients (each
/// seen once) neither fills the kept objects nor frees them a call later.
pub(super) const SEEN_LEAVES: usize = 64;

/// A frozen value a realm keeps.
type KeptValue = Persistent<Value<'static>>;

/// Hashes a SHA-256 digest by folding its bytes: a digest is uniform
/// already, and the sets it keys are small and bounded.
#[derive(Default)]
pub(super) struct DigestHasher(u64);

impl core::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(17) ^ u64::from_le_bytes(word);
        }
    }
}

/// Maps and sets keyed by SHA-256 digests.
type ByDigest = core::hash::BuildHasherDefault<DigestHasher>;

/// Frozen values a realm keeps by certificate: by the SHA-256 of its DER
/// (leaves, whose fingerprint is at hand), or by the DER.
type ByCertificate<K, S = std::hash::RandomState> = HashMap<K, KeptValue, S>;

/// The last value of a kind a realm wrote, and what it was written from.
type Last<K> = Option<(K, KeptValue)>;

/// What a realm keeps between calls to build connection objects: frozen
/// certificate objects (leaves, and the certificates after them), the
/// last `intermediates` array and the last revocation entries of
/// intermediates (the same for every client of a CA), and the shapes and
/// atoms of the objects it writes. What is kept is frozen, so calls that
/// share it cannot reach each other through it.
#[derive(Default)]
pub(super) struct Kept {
    leaves: ByCertificate<[u8; 32], ByDigest>,
    seen_leaves: HashSet<[u8; 32], ByDigest>,
    intermediates: ByCertificate<Vec<u8>>,
    intermediate_list: Last<Vec<Box<[u8]>>>,
    status_list: Last<Vec<CertificateRevocationStatus>>,
    shapes: Shapes,
}

impl Kept {
    /// Forgets everything (before the realm goes).
    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }
}

/// `allow`, `deny` and `logCustomData` of a realm.
pub(super) struct Methods<'js> {
    pub(super) allow: Function<'js>,
    pub(super) deny: Function<'js>,
    pub(super) log: Function<'js>,
}

/// `Object.preventExtensions` and `Object.freeze` of a realm.
pub(super) struct Lock<'js> {
    pub(super) prevent_extensions: Function<'js>,
    pub(super) freeze: Function<'js>,
}

/// The connection object of `connection`, written straight into the
/// realm as frozen objects (the same object [`build`] makes from the full
/// JSON, key for key), with `methods`. What the realm keeps is taken from
/// `kept`, or written and kept.
pub(super) fn build_from<'js>(
    ctx: &Ctx<'js>,
    connection: &Connection,
    format: FingerprintFormat,
    methods: &Methods<'js>,
    lock: &Lock<'js>,
    kept: &mut Kept,
) -> rquickjs::Result<Object<'js>> {
    let Kept {
        leaves,
        seen_leaves,
        intermediates,
        intermediate_list,
        status_list,
        shapes,
    } = kept;
    let mut frozen = Frozen::new(ctx, shapes);
    let mut leaf = None;
    let client_certificate = match connection.described() {
        None => Value::new_null(ctx.clone()),
        Some(described) => {
            let (first, rest) = match described.split_first() {
                Some((leaf @ Described::Leaf(info), rest)) => {
                    // Kept from the leaf's second call on.
                    let seen = !seen_leaves.insert(info.sha256);
                    if seen_leaves.len() > SEEN_LEAVES {
                        seen_leaves.clear();
                    }
                    let first = kept_or_written(
                        ctx,
                        &mut frozen,
                        leaf,
                        format,
                        (leaves, &info.sha256),
                        seen,
                    )?;
                    (first, rest)
                }
                Some((_, rest)) => (None, rest),
                None => (None, &[][..]),
            };
            let first = first.unwrap_or_else(|| Value::new_null(ctx.clone()));
            let same = |(kept, _): &&(Vec<Box<[u8]>>, _)| {
                kept.len() == rest.len() && kept.iter().zip(rest).all(|(k, d)| **k == *d.der())
            };
            let list = match intermediate_list.as_ref().filter(same) {
                Some((_, list)) => list.clone().restore(ctx)?,
                None => {
                    let mut objects = Vec::with_capacity(rest.len());
                    for d in rest {
                        let object = kept_or_written(
                            ctx,
                            &mut frozen,
                            d,
                            format,
                            (intermediates, d.der()),
                            true,
                        )?;
                        objects.extend(object);
                    }
                    let list = frozen.array(objects)?.into_value();
                    let ders = rest.iter().map(|d| d.der().into()).collect();
                    *intermediate_list = Some((ders, Persistent::save(ctx, list.clone())));
                    list
                }
            };
            let mut certificates = frozen.object()?;
            frozen.define(&mut certificates, "leaf", first.clone())?;
            frozen.define(&mut certificates, "intermediates", list)?;
            let mut client_certificate = frozen.object()?;
            frozen.define(
                &mut client_certificate,
                "certificates",
                certificates.into_value(),
            )?;
            if let Some(status) = connection.revocation_status() {
                let status = revocation_status(ctx, &mut frozen, status, status_list)?;
                frozen.define(&mut client_certificate, "revocationStatus", status)?;
            }
            leaf = Some(first);
            client_certificate.into_value()
        }
    };
    let mut object = frozen.object()?;
    frozen.define(&mut object, "clientCertificate", client_certificate)?;
    let client_ip = frozen.value(&connection.client_ip)?;
    frozen.define(&mut object, "clientIp", client_ip)?;
    let endpoint = frozen.value(&connection.endpoint)?;
    frozen.define(&mut object, "endpoint", endpoint)?;
    frozen.define(
        &mut object,
        "distributionId",
        connection.distribution_id.as_str(),
    )?;
    frozen.define(
        &mut object,
        "connectionId",
        connection.connection_id.as_str(),
    )?;
    frozen.define(&mut object, "allow", methods.allow.clone())?;
    frozen.define(&mut object, "deny", methods.deny.clone())?;
    frozen.define(&mut object, "logCustomData", methods.log.clone())?;
    if let Some(leaf) = leaf {
        frozen.define(&mut object, "clientCertInfo", leaf)?;
    }
    frozen.finish(&lock.prevent_extensions, &lock.freeze)?;
    Ok(object.into_object())
}

/// The frozen certificate object of `described` (`None` for a
/// certificate that cannot be parsed).
fn certificate_object<'js>(
    frozen: &mut Frozen<'_, 'js>,
    described: &Described<'_>,
    format: FingerprintFormat,
) -> rquickjs::Result<Option<Value<'js>>> {
    let Some(mut fields) = described.object() else {
        return Ok(None);
    };
    if format != FingerprintFormat::ColonHex {
        fields.sha256_fingerprint = reformat_fingerprint(&fields.sha256_fingerprint, format);
    }
    Ok(Some(frozen.value(&fields)?))
}

/// The frozen certificate object of `described`: the one `kept` holds
/// under `key`, or a new one, which `kept` keeps when `admit` (forgetting
/// the others when full).
fn kept_or_written<'js, K, Q, S>(
    ctx: &Ctx<'js>,
    frozen: &mut Frozen<'_, 'js>,
    described: &Described<'_>,
    format: FingerprintFormat,
    (kept, key): (&mut ByCertificate<K, S>, &Q),
    admit: bool,
) -> rquickjs::Result<Option<Value<'js>>>
where
    K: core::borrow::Borrow<Q> + Eq + core::hash::Hash,
    Q: Eq + core::hash::Hash + ToOwned<Owned = K> + ?Sized,
    S: core::hash::BuildHasher,
{
    if let Some(object) = kept.get(key) {
        return Ok(Some(object.clone().restore(ctx)?));
    }
    let object = certificate_object(frozen, described, format)?;
    if let (Some(object), true) = (&object, admit) {
        if kept.len() >= KEPT_CERTIFICATES {
            kept.clear();
        }
        kept.insert(key.to_owned(), Persistent::save(ctx, object.clone()));
    }
    Ok(object)
}

/// `revocationStatus` as [`RevocationStatus`] serializes it, with the
/// intermediates' entries taken from `kept` when they are the kept ones.
fn revocation_status<'js>(
    ctx: &Ctx<'js>,
    frozen: &mut Frozen<'_, 'js>,
    status: &RevocationStatus,
    kept: &mut Last<Vec<CertificateRevocationStatus>>,
) -> rquickjs::Result<Value<'js>> {
    let entries = &status.certificates.intermediates;
    let list = match kept.as_ref().filter(|(k, _)| k == entries) {
        Some((_, list)) => list.clone().restore(ctx)?,
        None => {
            let list = frozen.value(entries)?;
            *kept = Some((entries.clone(), Persistent::save(ctx, list.clone())));
            list
        }
    };
    let leaf = frozen.value(&status.certificates.leaf)?;
    let mut certificates = frozen.object()?;
    frozen.define(&mut certificates, "leaf", leaf)?;
    frozen.define(&mut certificates, "intermediates", list)?;
    let validity = frozen.value(&status.chain_validity)?;
    let mut object = frozen.object()?;
    frozen.define(&mut object, "chainValidity", validity)?;
    frozen.define(&mut object, "certificates", certificates.into_value())?;
    Ok(object.into_value())
}

/// Rewrites a colon-hex fingerprint in `format`.
pub(super) fn reformat_fingerprint(colon_hex: &str, format: FingerprintFormat) -> String {
    let bytes: Option<Vec<u8>> = colon_hex
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect();
    let Some(bytes) = bytes else {
        return colon_hex.to_string();
    };
    match format {
        FingerprintFormat::ColonHex => colon_hex.to_string(),
        FingerprintFormat::Hex => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        FingerprintFormat::Base64Url => {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        }
    }
}

/// Parses `json` into the connection object, adds the realm's `allow`,
/// `deny` and `logCustomData` (from `methods`) and `clientCertInfo`, and
/// freezes it deeply; `None` when the JSON is not an object.
pub(super) fn build<'js>(
    ctx: &Ctx<'js>,
    json: &str,
    methods: &Methods<'js>,
) -> rquickjs::Result<Option<Object<'js>>> {
    let value = ctx.json_parse(json)?;
    let Some(connection) = value.as_object().filter(|o| !o.is_array()).cloned() else {
        return Ok(None);
    };
    connection.set("allow", methods.allow.clone())?;
    connection.set("deny", methods.deny.clone())?;
    connection.set("logCustomData", methods.log.clone())?;
    let leaf: Option<Object<'js>> = connection
        .get::<_, Option<Object<'js>>>("clientCertificate")?
        .and_then(|c| {
            c.get::<_, Option<Object<'js>>>("certificates")
                .ok()
                .flatten()
        })
        .and_then(|c| c.get::<_, Option<Object<'js>>>("leaf").ok().flatten());
    if let Some(leaf) = leaf {
        connection.set("clientCertInfo", leaf)?;
    }
    deep_freeze(ctx, connection.clone().into_value())?;
    Ok(Some(connection))
}

/// Freezes `root` and every object reachable through its own enumerable
/// properties (iteratively: a connection object may be deep).
fn deep_freeze<'js>(ctx: &Ctx<'js>, root: Value<'js>) -> rquickjs::Result<()> {
    let object_ctor: Object<'js> = ctx.globals().get("Object")?;
    let freeze: Function<'js> = object_ctor.get("freeze")?;
    let mut pending = vec![root];
    while let Some(value) = pending.pop() {
        let Some(object) = value.as_object() else {
            continue;
        };
        if value.is_function() {
            continue;
        }
        for child in object.props::<rquickjs::Atom<'js>, Value<'js>>() {
            let (_, child) = child?;
            if child.is_object() && !child.is_function() {
                pending.push(child);
            }
        }
        freeze.call::<_, ()>((object.clone(),))?;
    }
    Ok(())
}

/// `allow`, `deny` and `logCustomData`, recording into `state` (the
/// engine's, reset for every call).
pub(super) fn methods<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<RefCell<CallState>>,
) -> rquickjs::Result<Methods<'js>> {
    let s = state.clone();
    let allow = Function::new(ctx.clone(), move || decide(&s, Decision::Allow))?;
    let s = state.clone();
    let deny = Function::new(ctx.clone(), move || decide(&s, Decision::Deny))?;
    let s = state.clone();
    let log = Function::new(ctx.clone(), move |ctx: Ctx<'js>, text: Opt<Value<'js>>| {
        let text = text.0.unwrap_or_else(|| Value::new_undefined(ctx.clone()));
        let text = display(&ctx, &text)?;
        s.borrow_mut().custom_data = Some(truncate_custom_data(text));
        Ok::<_, rquickjs::Error>(())
    })?;
    Ok(Methods { allow, deny, log })
}

fn decide(state: &Rc<RefCell<CallState>>, decision: Decision) {
    let mut state = state.borrow_mut();
    if state.decision.is_none() {
        state.decision = Some(decision);
    }
}

/// Installs `console.log` (and `info`, `warn`, `error`, `debug`).
pub(super) fn install_console<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<RefCell<CallState>>,
) -> rquickjs::Result<()> {
    let console = Object::new(ctx.clone())?;
    for name in ["log", "info", "warn", "error", "debug"] {
        let s = state.clone();
        console.set(
            name,
            Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
                let mut line = String::new();
                for (i, arg) in args.0.iter().enumerate() {
                    if i > 0 {
                        line.push(' ');
                    }
                    line.push_str(&display(&ctx, arg)?);
                    if line.len() > MAX_LOG_LINE_BYTES {
                        break;
                    }
                }
                s.borrow_mut().log(line);
                Ok::<_, rquickjs::Error>(())
            })?,
        )?;
    }
    ctx.globals().set("console", console)?;
    Ok(())
}

/// A value as `console.log` shows it: strings as they are, objects as
/// JSON, the rest through `String(value)`.
fn display<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> rquickjs::Result<String> {
    if let Some(s) = value.as_string() {
        return s.to_string();
    }
    if value.is_object() && !value.is_function() {
        if let Ok(Some(json)) = ctx.json_stringify(value.clone()) {
            return json.to_string();
        }
    }
    let coerced: rquickjs::convert::Coerced<String> = value.get()?;
    Ok(coerced.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_reformatted() {
        let colon = "AB:CD:0F";
        assert_eq!(
            reformat_fingerprint(colon, FingerprintFormat::Hex),
            "abcd0f"
        );
        assert_eq!(
            reformat_fingerprint(colon, FingerprintFormat::Base64Url),
            "q80P"
        );
        assert_eq!(
            reformat_fingerprint("not hex", FingerprintFormat::Hex),
            "not hex"
        );
    }

    /// A connection with a leaf, its intermediate, an unparsable extra
    /// certificate and a revocation status.
    fn connection() -> Connection {
        use crate::policy::connection::tests::{chain, good_status};
        use std::sync::Arc;

        let (leaf, intermediate) = chain();
        let info = Arc::new(crate::chain_validator::ClientCertInfo::from_der(&leaf).unwrap());
        Connection::without_certificate("203.0.113.9".parse().unwrap(), "E1", "id-1")
            .with_endpoint(Some("api.example.com".into()))
            .with_chain(info, &[intermediate.as_slice(), b"not a certificate"])
            .with_revocation_status(good_status())
    }

    /// Reports the connection object's JSON (length and a hash) and whether
    /// every object in it is frozen.
    const DESCRIBE: &str = r#"
function connectionHandler(connection) {
    const text = JSON.stringify(connection);
    let h = 5381;
    for (let i = 0; i < text.length; i++) h = ((h * 33) ^ text.charCodeAt(i)) >>> 0;
    let frozen = true;
    const pending = [connection];
    while (pending.length > 0) {
        const o = pending.pop();
        if (o === null || typeof o !== 'object') continue;
        if (!Object.isFrozen(o)) frozen = false;
        for (const k of Object.keys(o)) pending.push(o[k]);
    }
    const alias = connection.clientCertificate === null
        ? connection.clientCertInfo === undefined
        : connection.clientCertInfo === connection.clientCertificate.certificates.leaf;
    connection.logCustomData(`${text.length}:${h}:${frozen}:${alias}:${Object.keys(connection).join(',')}`);
    connection.allow();
}
"#;

    /// `connection()` with a revocation status holding an error entry
    /// (with its `errorType`) and an entry for the intermediate.
    fn connection_with_error_status() -> Connection {
        use crate::revocation::{
            CertStatus, CertificateRevocationStatus, RevocationMethod, RevocationStatus,
            StatusErrorKind,
        };
        let entry = |status: &CertStatus, serial: &str| {
            CertificateRevocationStatus::new(RevocationMethod::Ocsp, status, serial.into())
        };
        connection().with_revocation_status(RevocationStatus::from_entries(
            entry(
                &CertStatus::Error(StatusErrorKind::InternalError("timeout".into())),
                "00:a7:30",
            ),
            vec![entry(&CertStatus::Good, "7f:01")],
        ))
    }

    #[test]
    fn assembled_objects_are_the_parsed_ones() {
        let without = Connection::without_certificate("192.0.2.1".parse().unwrap(), "E1", "id-2");
        for connection in [connection(), connection_with_error_status(), without] {
            assembled_object_is_the_parsed_one(&connection);
        }
    }

    fn assembled_object_is_the_parsed_one(connection: &Connection) {
        for format in [
            FingerprintFormat::ColonHex,
            FingerprintFormat::Hex,
            FingerprintFormat::Base64Url,
        ] {
            let function = super::super::JsFunction::compile(
                "describe.js",
                DESCRIBE,
                super::super::JsLimits::default(),
            )
            .unwrap()
            .fingerprint_format(format);
            let parsed = function.run_json(&connection_json(connection, format));
            // Three times: the realm keeps a leaf's object from its second
            // call on, and the third call takes it.
            let assembled = function.run(connection);
            let _second = function.run(connection);
            let again = function.run(connection);
            assert!(parsed.error.is_none(), "{:?}", parsed.error);
            let expected = parsed.custom_data.clone().unwrap();
            assert!(expected.contains(":true:true:"), "{expected}");
            assert_eq!(assembled.custom_data.as_deref(), Some(expected.as_str()));
            assert_eq!(again.custom_data.as_deref(), Some(expected.as_str()));
        }
    }

    #[test]
    fn calls_with_other_leaves_share_only_what_is_the_same() {
        use crate::policy::connection::tests::{good_status, leaves_of_one_intermediate};
        use crate::x509::parsed::ParsedCertificate;
        use std::sync::Arc;

        let (leaves, intermediate) = leaves_of_one_intermediate(3);
        let parsed = ParsedCertificate::from_der(intermediate.clone()).unwrap();
        let connections: Vec<Connection> = leaves
            .iter()
            .enumerate()
            .map(|(i, leaf)| {
                let info =
                    Arc::new(crate::chain_validator::ClientCertInfo::from_der(leaf).unwrap());
                // The last one's intermediate has another revocation entry.
                let status = match i {
                    2 => {
                        use crate::revocation::{CertStatus, RevocationMethod};
                        let entry = |serial: &str| {
                            CertificateRevocationStatus::new(
                                RevocationMethod::Ocsp,
                                &CertStatus::Good,
                                serial.into(),
                            )
                        };
                        RevocationStatus::from_entries(entry("01"), vec![entry("7f:02")])
                    }
                    _ => good_status(),
                };
                let connection =
                    Connection::without_certificate("203.0.113.9".parse().unwrap(), "E1", "id-3")
                        .with_chain(info, &[intermediate.as_slice()])
                        .with_revocation_status(status);
                // The pipeline's connections carry the verified path's
                // intermediates, parsed.
                match i % 2 {
                    0 => connection,
                    _ => connection.with_parsed_intermediates(vec![parsed.clone()]),
                }
            })
            .collect();
        let function = super::super::JsFunction::compile(
            "describe.js",
            DESCRIBE,
            super::super::JsLimits::default(),
        )
        .unwrap();
        let expected: Vec<String> = connections
            .iter()
            .map(|c| {
                let parsed = function.run_json(&connection_json(c, FingerprintFormat::ColonHex));
                parsed.custom_data.unwrap()
            })
            .collect();
        assert_eq!(
            expected
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len(),
            3,
            "three different objects"
        );
        // Every leaf after every other, in one realm.
        for round in 0..3 {
            for (connection, expected) in connections.iter().zip(&expected) {
                let run = function.run(connection);
                assert_eq!(run.custom_data.as_ref(), Some(expected), "round {round}");
            }
        }
    }

    #[test]
    fn cut_respects_characters() {
        assert_eq!(cut("é".repeat(3), 5), "éé");
        assert_eq!(cut("abc".into(), 5), "abc");
    }
}
