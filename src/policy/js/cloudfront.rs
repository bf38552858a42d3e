//! The `cloudfront` module a function imports (`cf.kvs()` answered from the
//! store's local snapshot) and the loader that serves the function's own
//! bytecode.

use std::sync::Arc;

use rquickjs::function::Opt;
use rquickjs::loader::{Bundle, ImportAttributes, Loader, Resolver};
use rquickjs::module::{Declarations, Exports, ModuleDef};
use rquickjs::{Ctx, Exception, Function, Module, Object, Promise, Value};

use super::object::cut;
use crate::revocation::kvs::KeyValueStore;

use super::engine::*;

/// Resolves `cloudfront` and the function itself; nothing else.
pub(super) struct FunctionResolver;

impl Resolver for FunctionResolver {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        // The function's instances and the lockdown module are imported by
        // the engine only, never by the function (no reaching an earlier
        // call's instance through `import()`).
        let internal = name == SUPPORT_MODULE || name.starts_with(FUNCTION_MODULE);
        if name == CLOUDFRONT_MODULE || (internal && base.is_empty()) {
            Ok(name.to_string())
        } else {
            Err(rquickjs::Error::new_resolving(base, name))
        }
    }
}

/// Loads the function from its bytecode and `cloudfront` from Rust.
pub(super) struct FunctionLoader(pub(super) Bundle);

impl Loader for FunctionLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js>> {
        if name == CLOUDFRONT_MODULE {
            Module::declare_def::<CloudFront, _>(ctx.clone(), CLOUDFRONT_MODULE)
        } else if name.starts_with(FUNCTION_MODULE) {
            self.0.load(ctx, FUNCTION_MODULE, attributes)
        } else {
            self.0.load(ctx, name, attributes)
        }
    }
}

/// `import cf from 'cloudfront'`: `cf.kvs()`.
pub(super) struct CloudFront;

impl ModuleDef for CloudFront {
    fn declare(declarations: &Declarations<'_>) -> rquickjs::Result<()> {
        declarations.declare("default")?;
        Ok(())
    }

    fn evaluate<'js>(ctx: &Ctx<'js>, exports: &Exports<'js>) -> rquickjs::Result<()> {
        let cf = Object::new(ctx.clone())?;
        cf.set(
            "kvs",
            Function::new(ctx.clone(), |ctx: Ctx<'js>, _id: Opt<Value<'js>>| {
                kvs_handle(&ctx)
            })?,
        )?;
        // The realm outlives a call: nothing may be stored on `cf` or
        // its function.
        let object: Object<'js> = ctx.globals().get("Object")?;
        let freeze: Function<'js> = object.get("freeze")?;
        freeze.call::<_, ()>((cf.get::<_, Function<'js>>("kvs")?,))?;
        freeze.call::<_, ()>((cf.clone(),))?;
        exports.export("default", cf)?;
        Ok(())
    }
}

/// The handle `cf.kvs()` returns: the realm's, whose methods answer from
/// the store of the running call.
pub(super) fn kvs_handle<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    if CURRENT_KVS.with(|k| k.borrow().is_none()) {
        return Err(Exception::throw_type(
            ctx,
            "no key-value store is associated with this connection function",
        ));
    }
    match CURRENT_KVS_HANDLE.with(|h| h.borrow().clone()) {
        Some(handle) => handle.restore(ctx),
        None => Err(Exception::throw_internal(
            ctx,
            "the realm has no key-value store handle",
        )),
    }
}

/// The store of the running call (`cf.kvs()` checked that there is one).
fn current_store(ctx: &Ctx<'_>) -> rquickjs::Result<Arc<dyn KeyValueStore>> {
    CURRENT_KVS
        .with(|k| k.borrow().clone())
        .ok_or_else(|| not_local(ctx))
}

/// A key-value store handle: `exists`, `get` and `meta`, answering from the
/// store of the running call (one handle serves every call of a realm; the
/// realm freezes it).
pub(super) fn new_kvs_handle<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    let handle = Object::new(ctx.clone())?;
    handle.set(
        "exists",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, key: Value<'js>| {
            let result = key_string(&ctx, &key).and_then(|key| {
                match current_store(&ctx)?.exists_local(&key) {
                    Some(found) => Ok(Value::new_bool(ctx.clone(), found)),
                    None => Err(not_local(&ctx)),
                }
            });
            settled(&ctx, result)
        })?,
    )?;
    handle.set(
        "get",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, key: Value<'js>, options: Opt<Object<'js>>| {
                let result = key_string(&ctx, &key).and_then(|key| {
                    let format = match &options.0 {
                        Some(o) => o.get::<_, Option<String>>("format")?,
                        None => None,
                    };
                    let value = match current_store(&ctx)?.value_local(&key) {
                        Some(Some(value)) => value,
                        Some(None) => {
                            return Err(Exception::throw_reference(
                                &ctx,
                                &format!("Key not found: {}", cut(key, 64)),
                            ))
                        }
                        None => return Err(not_local(&ctx)),
                    };
                    match format.as_deref().unwrap_or("string") {
                        "string" => {
                            rquickjs::String::from_str(ctx.clone(), &value).map(|s| s.into_value())
                        }
                        "json" => ctx.json_parse(value),
                        "bytes" => rquickjs::TypedArray::<u8>::new(ctx.clone(), value.into_bytes())
                            .map(|a| a.into_value()),
                        other => Err(Exception::throw_type(
                            &ctx,
                            &format!(
                                "unknown format {:?} (string, json or bytes)",
                                cut(other.to_string(), 32)
                            ),
                        )),
                    }
                });
                settled(&ctx, result)
            },
        )?,
    )?;
    handle.set(
        "meta",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>| {
            let result = current_store(&ctx).and_then(|store| match store.meta_local() {
                Some(meta) => ctx.json_parse(serde_json::to_string(&meta).unwrap_or_default()),
                None => Err(not_local(&ctx)),
            });
            settled(&ctx, result)
        })?,
    )?;
    Ok(handle)
}

pub(super) fn key_string<'js>(ctx: &Ctx<'js>, key: &Value<'js>) -> rquickjs::Result<String> {
    match key.as_string() {
        Some(s) => s.to_string(),
        None => Err(Exception::throw_type(ctx, "the key must be a string")),
    }
}

pub(super) fn not_local(ctx: &Ctx<'_>) -> rquickjs::Error {
    Exception::throw_internal(
        ctx,
        "the key-value store has no local snapshot to answer from",
    )
}

/// A promise already settled with `result` (a thrown exception rejects it).
pub(super) fn settled<'js>(
    ctx: &Ctx<'js>,
    result: rquickjs::Result<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let (promise, resolve, reject) = ctx.promise()?;
    match result {
        Ok(value) => resolve.call::<_, ()>((value,))?,
        Err(rquickjs::Error::Exception) => {
            let reason = ctx.catch();
            reject.call::<_, ()>((reason,))?;
        }
        Err(other) => return Err(other),
    }
    Ok(promise)
}
