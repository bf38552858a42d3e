//! The connection object a function sees: CloudFront's JSON (built by the
//! engine's support module, which adds the methods made here, the
//! `clientCertInfo` alias and freezes it deeply), and `console`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use base64::Engine as _;
use rquickjs::function::{Opt, Rest};
use rquickjs::{Ctx, Function, Object, Persistent, Value};

use super::frozen::{Frozen, Keys};
use super::FingerprintFormat;
use crate::policy::connection::Described;
use crate::policy::{truncate_custom_data, Connection, Decision};

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
/// leaf and the intermediates every client shares are parsed and frozen
/// once per realm, and many distinct leaves never push the intermediates
/// out.
pub(super) const KEPT_CERTIFICATES: usize = 8;

/// What a realm keeps between calls to build connection objects: frozen
/// certificate objects by the certificate's DER (leaves, and the
/// certificates after them), and the property names as atoms.
#[derive(Default)]
pub(super) struct Kept {
    leaves: HashMap<Box<[u8]>, Persistent<Value<'static>>>,
    intermediates: HashMap<Box<[u8]>, Persistent<Value<'static>>>,
    keys: Keys,
}

impl Kept {
    /// Forgets everything (before the realm goes).
    pub(super) fn clear(&mut self) {
        self.leaves.clear();
        self.intermediates.clear();
        self.keys.clear();
    }
}

/// The connection object of `connection`, written straight into the
/// realm as frozen objects (the same object [`build`] makes from the full
/// JSON, key for key), with the methods of `methods`. Certificate objects
/// are taken from `kept`, or written and kept.
pub(super) fn build_from<'js>(
    ctx: &Ctx<'js>,
    connection: &Connection,
    format: FingerprintFormat,
    methods: &Object<'js>,
    lock: &Function<'js>,
    kept: &mut Kept,
) -> rquickjs::Result<Object<'js>> {
    let Kept {
        leaves,
        intermediates,
        keys,
    } = kept;
    let mut frozen = Frozen::new(ctx, keys);
    let mut leaf = None;
    let client_certificate = match connection.described() {
        None => Value::new_null(ctx.clone()),
        Some(described) => {
            let mut objects = Vec::with_capacity(described.len());
            for described in described {
                let der = described.der();
                let kept = match described {
                    Described::Leaf(_) => &mut *leaves,
                    _ => &mut *intermediates,
                };
                let object = match kept.get(der) {
                    Some(object) => object.clone().restore(ctx)?,
                    None => {
                        let Some(mut fields) = described.object() else {
                            continue;
                        };
                        if format != FingerprintFormat::ColonHex {
                            fields.sha256_fingerprint =
                                reformat_fingerprint(&fields.sha256_fingerprint, format);
                        }
                        let object = frozen.value(&fields)?;
                        if kept.len() >= KEPT_CERTIFICATES {
                            kept.clear();
                        }
                        kept.insert(der.into(), Persistent::save(ctx, object.clone()));
                        object
                    }
                };
                objects.push(object);
            }
            let mut objects = objects.into_iter();
            let first = objects
                .next()
                .unwrap_or_else(|| Value::new_null(ctx.clone()));
            let certificates = frozen.object()?;
            frozen.define(&certificates, "leaf", first.clone())?;
            let intermediates = frozen.array(objects)?;
            frozen.define(&certificates, "intermediates", intermediates)?;
            let client_certificate = frozen.object()?;
            frozen.define(&client_certificate, "certificates", certificates)?;
            if let Some(status) = connection.revocation_status() {
                let status = frozen.value(status)?;
                frozen.define(&client_certificate, "revocationStatus", status)?;
            }
            leaf = Some(first);
            client_certificate.into_value()
        }
    };
    let object = frozen.object()?;
    frozen.define(&object, "clientCertificate", client_certificate)?;
    let client_ip = frozen.value(&connection.client_ip)?;
    frozen.define(&object, "clientIp", client_ip)?;
    let endpoint = frozen.value(&connection.endpoint)?;
    frozen.define(&object, "endpoint", endpoint)?;
    frozen.define(
        &object,
        "distributionId",
        connection.distribution_id.as_str(),
    )?;
    frozen.define(&object, "connectionId", connection.connection_id.as_str())?;
    for name in ["allow", "deny", "logCustomData"] {
        frozen.define(&object, name, methods.get::<_, Value<'js>>(name)?)?;
    }
    if let Some(leaf) = leaf {
        frozen.define(&object, "clientCertInfo", leaf)?;
    }
    frozen.finish(lock)?;
    Ok(object)
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
    methods: &Object<'js>,
) -> rquickjs::Result<Option<Object<'js>>> {
    let value = ctx.json_parse(json)?;
    let Some(connection) = value.as_object().filter(|o| !o.is_array()).cloned() else {
        return Ok(None);
    };
    for name in ["allow", "deny", "logCustomData"] {
        connection.set(name, methods.get::<_, Value<'js>>(name)?)?;
    }
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
) -> rquickjs::Result<(Function<'js>, Function<'js>, Function<'js>)> {
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
    Ok((allow, deny, log))
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
            // Twice: the second call takes the certificate objects the
            // realm kept.
            let assembled = function.run(connection);
            let again = function.run(connection);
            assert!(parsed.error.is_none(), "{:?}", parsed.error);
            let expected = parsed.custom_data.clone().unwrap();
            assert!(expected.contains(":true:true:"), "{expected}");
            assert_eq!(assembled.custom_data.as_deref(), Some(expected.as_str()));
            assert_eq!(again.custom_data.as_deref(), Some(expected.as_str()));
        }
    }

    #[test]
    fn cut_respects_characters() {
        assert_eq!(cut("é".repeat(3), 5), "éé");
        assert_eq!(cut("abc".into(), 5), "abc");
    }
}
