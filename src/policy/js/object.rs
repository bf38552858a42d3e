//! The connection object a function sees: CloudFront's JSON (built by the
//! engine's support module, which adds the methods made here, the
//! `clientCertInfo` alias and freezes it deeply), and `console`.

use std::cell::RefCell;
use std::rc::Rc;

use base64::Engine as _;
use rquickjs::function::{Opt, Rest};
use rquickjs::{Ctx, Function, Object, Value};

use super::FingerprintFormat;
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

/// CloudFront's connection object as JSON, fingerprints in `format`.
pub(super) fn connection_json(connection: &Connection, format: FingerprintFormat) -> String {
    if format == FingerprintFormat::ColonHex {
        return serde_json::to_string(connection).unwrap_or_default();
    }
    let mut value = serde_json::to_value(connection).unwrap_or_default();
    if let Some(certificates) = value
        .pointer_mut("/clientCertificate/certificates")
        .and_then(|c| c.as_object_mut())
    {
        let mut objects: Vec<&mut serde_json::Value> = Vec::new();
        for (name, entry) in certificates.iter_mut() {
            match (name.as_str(), entry) {
                ("leaf", leaf) => objects.push(leaf),
                ("intermediates", serde_json::Value::Array(list)) => {
                    objects.extend(list.iter_mut())
                }
                _ => {}
            }
        }
        for object in objects {
            if let Some(serde_json::Value::String(fp)) = object.get_mut("sha256Fingerprint") {
                *fp = reformat_fingerprint(fp, format);
            }
        }
    }
    value.to_string()
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

    #[test]
    fn cut_respects_characters() {
        assert_eq!(cut("é".repeat(3), 5), "éé");
        assert_eq!(cut("abc".into(), 5), "abc");
    }
}
