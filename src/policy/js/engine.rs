//! The QuickJS side: compiling to bytecode once, one runtime per worker
//! thread and function, a fresh context per call, limits, the `cloudfront`
//! module and the synchronous job loop.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cpu_time::ThreadTime;

use rquickjs::context::intrinsic;
use rquickjs::loader::bundle::Bundle as BundleOf;
use rquickjs::module::WriteOptions;
use rquickjs::{
    Context, Ctx, FromJs, Function, Module, Object, Persistent, Promise, Runtime, Value,
};

use super::cloudfront::*;
use super::error::{JsError, JsLoadError};
use super::object::{self, cut, CallState};
use super::{Inner, JsLimits, JsRun};
use crate::policy::Connection;
use crate::revocation::kvs::KeyValueStore;

/// The module name the function is compiled and loaded under.
pub(super) const FUNCTION_MODULE: &str = "connection-function.js";
/// The engine's own module: it freezes a realm before any function runs in
/// it (`lockdown`).
pub(super) const SUPPORT_MODULE: &str = "edge-mtls-support.js";
pub(super) const SUPPORT_SOURCE: &str = "
const freeze = Object.freeze;
const ownKeys = Reflect.ownKeys, describe = Object.getOwnPropertyDescriptor, protoOf = Object.getPrototypeOf;
// Freezes each of `values` (functions and objects the realm shares
// between calls that globalThis does not reach).
export function freezeAll(...values) {
    for (let i = 0; i < values.length; i++) freeze(values[i]);
}
// Freezes everything reachable from globalThis: own properties (string and
// symbol keys, accessors included) and prototypes.
export function lockdown() {
    const seen = new Set(), pending = [globalThis];
    while (pending.length > 0) {
        const o = pending.pop();
        if (o === null || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o)) continue;
        seen.add(o);
        freeze(o);
        pending.push(protoOf(o));
        const names = ownKeys(o);
        for (let i = 0; i < names.length; i++) {
            const d = describe(o, names[i]);
            if (d === undefined) continue;
            if ('value' in d) pending.push(d.value); else pending.push(d.get, d.set);
        }
    }
}
";
/// The only module a function may import.
pub(super) const CLOUDFRONT_MODULE: &str = "cloudfront";
/// The function the compiled module exports: each call returns a
/// `connectionHandler` (with fresh top-level bindings when the source is
/// wrapped in it).
pub(super) const INSTANCE_EXPORT: &str = "__edgeMtlsInstance";
/// Memory for compiling (the operator's file, bounded by the code limit).
pub(super) const COMPILE_MEMORY: usize = 32 << 20;
/// The least time the load-time check of a function, or the preparation
/// of a realm, may take.
pub(super) const LOAD_CHECK_TIME: std::time::Duration = std::time::Duration::from_millis(500);
/// How many calls a realm serves when each needs a module instance of its
/// own (they accumulate in the realm).
pub(super) const MODULE_REALM_CALLS: u32 = 64;
/// How many per-function runtimes a thread keeps.
pub(super) const RUNTIMES_PER_THREAD: usize = 8;

pub(super) type BundleData = &'static [(&'static str, &'static [u8])];

/// Compiled functions, by bytecode: the engine reads bytecode in place, so
/// it must live as long as the process; identical functions share it.
pub(super) static COMPILED: Mutex<Option<HashMap<Vec<u8>, BundleData>>> = Mutex::new(None);

pub(super) fn intern(bytecode: Vec<u8>, lockdown: Vec<u8>) -> BundleData {
    let mut guard = COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(data) = map.get(&bytecode) {
        return data;
    }
    let code: &'static [u8] = Box::leak(bytecode.clone().into_boxed_slice());
    let lockdown: &'static [u8] = Box::leak(lockdown.into_boxed_slice());
    let data: BundleData = Box::leak(Box::new([
        (FUNCTION_MODULE, code),
        (SUPPORT_MODULE, lockdown),
    ]));
    map.insert(bytecode, data);
    data
}

/// Compiles `source` to bytecode and loads it once to check that it links
/// and defines `connectionHandler`.
pub(super) fn compile(
    name: &str,
    source: &str,
    limits: &JsLimits,
) -> Result<(BundleData, bool), JsLoadError> {
    let engine_error = || JsLoadError::Engine {
        name: name.to_string(),
        memory_bytes: limits.memory_bytes,
    };
    let syntax = |message: String| JsLoadError::Syntax {
        name: name.to_string(),
        message,
    };
    let runtime = Runtime::new().map_err(|_| engine_error())?;
    runtime.set_memory_limit(COMPILE_MEMORY.max(limits.memory_bytes));
    runtime.set_max_stack_size(limits.stack_bytes);
    runtime.set_loader(FunctionResolver, FunctionLoader(BundleOf(&[])));
    let context = Context::full(&runtime).map_err(|_| engine_error())?;
    let bytecode = context.with(|ctx| {
        let write = |module: Module<'_>| {
            module.write(WriteOptions {
                strip_source: true,
                ..WriteOptions::default()
            })
        };
        // The source alone first, so that its own errors are reported as such.
        Module::declare(ctx.clone(), FUNCTION_MODULE, source)
            .map_err(|e| syntax(exception_text(&ctx, e)))?;
        // Wrapped, so that one module instance gives every call fresh
        // top-level bindings; else the source as it is, one module instance
        // per call.
        let wrapped = wrap(source).and_then(|w| {
            let module = Module::declare(ctx.clone(), FUNCTION_MODULE, w).ok()?;
            write(module).ok()
        });
        let (function, wrapped) = match wrapped {
            Some(bytecode) => (bytecode, true),
            None => {
                let with_export = format!(
                    "{source}\n;export function {INSTANCE_EXPORT}() {{ return connectionHandler; }}"
                );
                let module = Module::declare(ctx.clone(), FUNCTION_MODULE, with_export)
                    .map_err(|e| syntax(exception_text(&ctx, e)))?;
                (
                    write(module).map_err(|e| syntax(exception_text(&ctx, e)))?,
                    false,
                )
            }
        };
        let lockdown = Module::declare(ctx.clone(), SUPPORT_MODULE, SUPPORT_SOURCE)
            .and_then(write)
            .map_err(|e| syntax(exception_text(&ctx, e)))?;
        Ok((function, lockdown, wrapped))
    })?;
    let wrapped = bytecode.2;
    let data = intern(bytecode.0, bytecode.1);

    // Link and evaluate it as a call would (imports other than `cloudfront`
    // fail here), and look for the handler.
    let engine = Engine::new(0, data, limits).map_err(|_| engine_error())?;
    // Top-level code runs here too; a loaded machine should not fail a load.
    engine.arm(Deadline::start(limits.time().max(LOAD_CHECK_TIME)));
    let mut engine = engine;
    prepare_realm(&mut engine, 2)
        .map_err(|e| syntax(format!("the realm could not be prepared: {e}")))?;
    let Some(context) = &engine.realm else {
        return Err(engine_error());
    };
    // Top-level code may call `cf.kvs()`: an empty store stands in.
    let empty: Arc<dyn KeyValueStore> =
        Arc::new(crate::revocation::kvs::MemoryKeyValueStore::for_serial_numbers());
    let scope = KvsScope::enter(Some(empty), &engine);
    let checked = context.with(|ctx| {
        let namespace = Module::import(&ctx, format!("{FUNCTION_MODULE}?0"))
            .and_then(|p| p.finish::<Object>())
            .map_err(|e| syntax(exception_text(&ctx, e)))?;
        let handler = namespace
            .get::<_, Function>(INSTANCE_EXPORT)
            .and_then(|instance| instance.call::<_, Value>(()));
        match handler {
            Ok(v) if v.is_function() => Ok(()),
            _ => Err(JsLoadError::NoHandler {
                name: name.to_string(),
            }),
        }
    });
    drop(scope);
    checked?;
    Ok((data, wrapped))
}

/// `source` inside the exported instance function: its `import … from
/// 'cloudfront'` statements (only at the start, after comments) are moved
/// in front, blanked in place so that lines and columns stay. `None` when
/// the source does not start that way and still has `import`/`export`.
pub(super) fn wrap(source: &str) -> Option<String> {
    let mut body = source.to_string();
    let mut imports = String::new();
    let mut at = 0;
    loop {
        at = skip_space_and_comments(&body, at);
        let rest = &body[at..];
        let Some(after) = rest.strip_prefix("import") else {
            break;
        };
        let after = after.trim_start();
        let ident_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(after.len());
        let ident = &after[..ident_len];
        let tail = after[ident_len..]
            .trim_start()
            .strip_prefix("from")?
            .trim_start();
        let tail = tail
            .strip_prefix("'cloudfront'")
            .or_else(|| tail.strip_prefix("\"cloudfront\""))?;
        if ident.is_empty() || ident.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        let tail = tail.strip_prefix(';').unwrap_or(tail);
        let end = body.len() - tail.len();
        imports.push_str(&format!("import {ident} from 'cloudfront'; "));
        let blank: String = body[at..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        body.replace_range(at..end, &blank);
        at = end;
    }
    if body.contains("import") || body.contains("export") {
        // Possibly a statement that cannot sit inside a function.
        return None;
    }
    Some(format!(
        "{imports}export function {INSTANCE_EXPORT}() {{ {body}\n;return connectionHandler; }}"
    ))
}

pub(super) fn skip_space_and_comments(s: &str, mut at: usize) -> usize {
    loop {
        let rest = &s[at..];
        let trimmed = rest.trim_start();
        at += rest.len() - trimmed.len();
        if let Some(line) = trimmed.strip_prefix("//") {
            at += 2 + line.find('\n').unwrap_or(line.len());
        } else if let Some(block) = trimmed.strip_prefix("/*") {
            match block.find("*/") {
                Some(end) => at += 2 + end + 2,
                None => return s.len(),
            }
        } else {
            return at;
        }
    }
}

/// When a call must stop: after `limit` of this thread's CPU time (what
/// CloudFront's compute utilization measures; a call preempted by the
/// scheduler is not charged for the wait), and in any case at `backstop`
/// on the wall clock (10 times the limit, at least 50 ms). Without a
/// thread CPU clock, `limit` of wall-clock time.
///
/// Reading the thread's CPU clock is a system call, and in a server busy
/// with handshakes it costs more than a short function's whole run. A
/// deadline made by [`Deadline::start_lazy`] reads it only at the first
/// check after the call has run for a tenth of the limit on the wall clock
/// ([`WALL_CLOCK_SHARE`]), and counts the time before that reading as CPU
/// time: a shorter call never reads the clock, and only a call preempted
/// early in that first tenth is charged for the wait.
#[derive(Clone, Copy)]
pub(super) struct Deadline {
    wall_start: Instant,
    limit: Duration,
    backstop: Instant,
    cpu: CpuClock,
}

/// The share of the limit a lazy [`Deadline`] counts on the wall clock
/// before it reads the thread's CPU clock (one part in this many).
pub(super) const WALL_CLOCK_SHARE: u32 = 10;

/// Where a [`Deadline`] stands with the thread's CPU clock.
#[derive(Clone, Copy)]
enum CpuClock {
    /// Not read yet; read at the first check after `after` (wall clock).
    Unread { after: Duration },
    /// Read `at` (wall clock since the start) when it showed `reading`.
    Read { at: Duration, reading: ThreadTime },
    /// The thread has no CPU clock.
    Missing,
}

impl CpuClock {
    fn read(at: Duration) -> Self {
        match ThreadTime::try_now() {
            Ok(reading) => Self::Read { at, reading },
            Err(_) => Self::Missing,
        }
    }
}

impl Deadline {
    fn new(limit: Duration, cpu: impl FnOnce() -> CpuClock) -> Self {
        let wall_start = Instant::now();
        Self {
            wall_start,
            limit,
            backstop: wall_start + (limit * 10).max(Duration::from_millis(50)),
            cpu: cpu(),
        }
    }

    /// A deadline that reads the CPU clock now (exact CPU time from the
    /// start, for calls whose CPU time is reported).
    pub(super) fn start(limit: Duration) -> Self {
        Self::new(limit, || CpuClock::read(Duration::ZERO))
    }

    /// A deadline that reads the CPU clock only once the call has run for
    /// a tenth of `limit`.
    pub(super) fn start_lazy(limit: Duration) -> Self {
        Self::new(limit, || CpuClock::Unread {
            after: limit / WALL_CLOCK_SHARE,
        })
    }

    /// The CPU time used since the start: the wall-clock time before the
    /// CPU clock was read, then the CPU clock.
    pub(super) fn used(&self) -> Duration {
        let wall = || self.wall_start.elapsed();
        match self.cpu {
            CpuClock::Read { at, reading } => reading
                .try_elapsed()
                .map(|cpu| at + cpu)
                .unwrap_or_else(|_| wall()),
            CpuClock::Unread { .. } | CpuClock::Missing => wall(),
        }
    }

    /// Whether the call must stop (reading the CPU clock when it is time
    /// to).
    pub(super) fn passed(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.backstop {
            return true;
        }
        let elapsed = now.duration_since(self.wall_start);
        if let CpuClock::Unread { after } = self.cpu {
            if elapsed < after {
                return false;
            }
            self.cpu = CpuClock::read(elapsed);
        }
        // CPU time never runs ahead of the wall clock: the (slower) CPU
        // clock is read only once the wall clock is past the limit.
        elapsed >= self.limit && self.used() >= self.limit
    }
}

/// Checks the deadline a call shares with the engine's interrupt handler.
pub(super) fn passed(deadline: &Cell<Deadline>) -> bool {
    let mut d = deadline.get();
    let passed = d.passed();
    deadline.set(d);
    passed
}

/// A runtime for one function on one thread.
///
/// Calls run in a realm (a context whose built-ins and global object are
/// deeply frozen, so a call can leave nothing behind for the next), each
/// with a fresh instance of the function's module (its top-level bindings)
/// and a fresh, frozen connection object. A realm serves `realm_calls`
/// calls (1: a fresh context per call), and is dropped with the runtime
/// after any failure or when a call leaves jobs behind.
pub(super) struct Engine {
    id: u64,
    /// What the realm keeps to build connection objects (dropped before
    /// the realm and the runtime).
    kept: object::Kept,
    /// The realm's shared values (dropped before the realm and the
    /// runtime).
    values: Option<RealmValues>,
    /// The realm's instance function, when the source is wrapped (dropped
    /// before the realm and the runtime).
    instance: Option<Persistent<Function<'static>>>,
    runtime: Runtime,
    deadline: Rc<Cell<Deadline>>,
    interrupted: Rc<Cell<bool>>,
    realm: Option<Context>,
    calls: u32,
    state: Rc<RefCell<CallState>>,
    memory_limit: usize,
}

impl Engine {
    fn new(id: u64, bundle: BundleData, limits: &JsLimits) -> rquickjs::Result<Self> {
        let runtime = Runtime::new()?;
        runtime.set_memory_limit(limits.memory_bytes);
        runtime.set_max_stack_size(limits.stack_bytes);
        runtime.set_loader(FunctionResolver, FunctionLoader(BundleOf(bundle)));
        let deadline = Rc::new(Cell::new(Deadline::start_lazy(Duration::ZERO)));
        let interrupted = Rc::new(Cell::new(false));
        let (d, i) = (deadline.clone(), interrupted.clone());
        runtime.set_interrupt_handler(Some(Box::new(move || {
            if i.get() || passed(&d) {
                i.set(true);
                true
            } else {
                false
            }
        })));
        Ok(Self {
            id,
            kept: object::Kept::default(),
            values: None,
            instance: None,
            runtime,
            deadline,
            interrupted,
            realm: None,
            calls: 0,
            state: Rc::new(RefCell::new(CallState::default())),
            memory_limit: limits.memory_bytes,
        })
    }

    fn arm(&self, deadline: Deadline) {
        self.deadline.set(deadline);
        self.interrupted.set(false);
    }
}

thread_local! {
    static ENGINES: RefCell<Vec<Engine>> = const { RefCell::new(Vec::new()) };
    pub(super) static CURRENT_KVS: RefCell<Option<Arc<dyn KeyValueStore>>> = const { RefCell::new(None) };
    /// The running realm's key-value store handle (set for a call).
    pub(super) static CURRENT_KVS_HANDLE: RefCell<Option<Persistent<Object<'static>>>> = const { RefCell::new(None) };
}

/// The store and the realm's handle `cf.kvs()` answers with, for the
/// duration of a call (cleared when dropped).
struct KvsScope;

impl KvsScope {
    fn enter(store: Option<Arc<dyn KeyValueStore>>, engine: &Engine) -> Self {
        CURRENT_KVS.with(|k| *k.borrow_mut() = store);
        let handle = engine.values.as_ref().map(|v| v.kvs_handle.clone());
        CURRENT_KVS_HANDLE.with(|h| *h.borrow_mut() = handle);
        Self
    }
}

impl Drop for KvsScope {
    fn drop(&mut self) {
        CURRENT_KVS.with(|k| *k.borrow_mut() = None);
        CURRENT_KVS_HANDLE.with(|h| *h.borrow_mut() = None);
    }
}

/// This thread's runtime for `inner`, taken out of the cache for the call.
pub(super) fn take_engine(inner: &Inner) -> rquickjs::Result<Engine> {
    let cached = ENGINES.with(|e| {
        let mut engines = e.borrow_mut();
        let at = engines.iter().position(|e| e.id == inner.id)?;
        Some(engines.swap_remove(at))
    });
    match cached {
        Some(engine) => Ok(engine),
        None => Engine::new(inner.id, inner.bytecode, &inner.limits),
    }
}

pub(super) fn return_engine(engine: Engine) {
    ENGINES.with(|e| {
        let mut engines = e.borrow_mut();
        if engines.len() >= RUNTIMES_PER_THREAD {
            engines.remove(0);
        }
        engines.push(engine);
    });
}

/// A context with the ECMAScript built-ins a function may use (no `eval`,
/// no `new Function`; no `WeakRef`/`FinalizationRegistry`, whose callbacks
/// could run during a later call).
pub(super) fn fresh_context(runtime: &Runtime) -> rquickjs::Result<Context> {
    Context::builder()
        .with::<intrinsic::Date>()
        .with::<intrinsic::RegExpCompiler>()
        .with::<intrinsic::RegExp>()
        .with::<intrinsic::Json>()
        .with::<intrinsic::Proxy>()
        .with::<intrinsic::MapSet>()
        .with::<intrinsic::TypedArrays>()
        .with::<intrinsic::Promise>()
        .build(runtime)
}

/// What a realm keeps for its calls, besides its context.
pub(super) struct RealmValues {
    /// `allow`, `deny` and `logCustomData`.
    methods: [Persistent<Function<'static>>; 3],
    /// `Object.preventExtensions` and `Object.freeze`, which make the
    /// connection object immutable.
    lock: [Persistent<Function<'static>>; 2],
    /// The key-value store handle `cf.kvs()` returns.
    kvs_handle: Persistent<Object<'static>>,
}

/// A fresh context with `console`, then frozen by the lockdown module. The
/// functions and objects the realm shares between calls are frozen too,
/// whether or not `globalThis` reaches them.
pub(super) fn realm(
    runtime: &Runtime,
    state: &Rc<RefCell<CallState>>,
    lockdown: bool,
) -> rquickjs::Result<(Context, RealmValues)> {
    let context = fresh_context(runtime)?;
    let values = context.with(|ctx| {
        object::install_console(&ctx, state)?;
        let support: Object = Module::import(&ctx, SUPPORT_MODULE)?.finish()?;
        let object::Methods { allow, deny, log } = object::methods(&ctx, state)?;
        let kvs_handle = new_kvs_handle(&ctx)?;
        let mut shared = rquickjs::function::Args::new_unsized(ctx.clone());
        shared.push_args([allow.clone(), deny.clone(), log.clone()])?;
        for name in ["exists", "get", "meta"] {
            shared.push_arg(kvs_handle.get::<_, Function>(name)?)?;
        }
        shared.push_arg(kvs_handle.clone())?;
        support
            .get::<_, Function>("freezeAll")?
            .call_arg::<()>(shared)?;
        let object: Object = ctx.globals().get("Object")?;
        let lock: [Function; 2] = [object.get("preventExtensions")?, object.get("freeze")?];
        if lockdown {
            support.get::<_, Function>("lockdown")?.call::<_, ()>(())?;
        }
        Ok::<_, rquickjs::Error>(RealmValues {
            methods: [allow, deny, log].map(|m| Persistent::save(&ctx, m)),
            lock: lock.map(|f| Persistent::save(&ctx, f)),
            kvs_handle: Persistent::save(&ctx, kvs_handle),
        })
    })?;
    Ok((context, values))
}

/// A run that failed before the function was called.
pub(super) fn failed(limits: &JsLimits, error: JsError) -> JsRun {
    JsRun {
        decision: None,
        custom_data: None,
        logs: Vec::new(),
        error: Some(error),
        elapsed: Duration::ZERO,
        cpu_time: Duration::ZERO,
        limit: limits.time(),
    }
}

/// What a call runs on: a connection object given as JSON, or a
/// connection (its certificate objects kept by the realm).
pub(super) enum Input<'a> {
    Json(String),
    Connection(&'a Connection),
}

/// Runs the function of `inner` on `input`. Without `measure_cpu`, a call
/// that succeeds reports its wall-clock time as its CPU time (an upper
/// bound), sparing a read of the thread's CPU clock (a system call); a
/// failed call always reads it.
pub(super) fn run(inner: &Inner, input: Input<'_>, measure_cpu: bool) -> JsRun {
    let limits = inner.limits;
    let mut start = Instant::now();
    let mut cpu = Duration::ZERO;
    let (result, state) = match take_engine(inner).and_then(|mut engine| {
        // A new realm is our own code's work, under its own budget.
        let realm_calls = if inner.wrapped || inner.realm_calls == 1 {
            inner.realm_calls
        } else {
            MODULE_REALM_CALLS
        };
        prepare_realm(&mut engine, realm_calls)?;
        Ok(engine)
    }) {
        Ok(mut engine) => {
            start = Instant::now();
            // Without `measure_cpu`, a call that ends soon never reads the
            // CPU clock.
            engine.arm(match measure_cpu {
                true => Deadline::start(limits.time()),
                false => Deadline::start_lazy(limits.time()),
            });
            *engine.state.borrow_mut() = CallState::default();
            let scope = KvsScope::enter(inner.kvs.clone(), &engine);
            let result = call(&mut engine, inner, &input);
            drop(scope);
            cpu = if measure_cpu || result.is_err() {
                engine.deadline.get().used()
            } else {
                start.elapsed()
            };
            let interrupted = engine.interrupted.get();
            let state = std::mem::take(&mut *engine.state.borrow_mut());
            // A runtime that saw a failure, or that still has jobs of this
            // call queued, is not reused: what the call left goes with it.
            if result.is_ok() && !engine.runtime.is_job_pending() {
                return_engine(engine);
            }
            (result.map_err(|e| (e, interrupted)), state)
        }
        Err(_) => (
            Err((
                JsError::OutOfMemory {
                    limit: limits.memory_bytes,
                },
                false,
            )),
            CallState::default(),
        ),
    };
    let elapsed = start.elapsed();
    let error = result
        .err()
        .map(|(e, interrupted)| classify(e, interrupted, cpu, &limits));
    let mut logs = state.logs;
    if state.dropped_logs > 0 {
        logs.push(format!("({} more log lines dropped)", state.dropped_logs));
    }
    JsRun {
        decision: state.decision,
        custom_data: state.custom_data,
        logs,
        error,
        elapsed,
        cpu_time: cpu,
        limit: limits.time(),
    }
}

pub(super) fn classify(
    error: JsError,
    interrupted: bool,
    elapsed: std::time::Duration,
    limits: &JsLimits,
) -> JsError {
    if interrupted || matches!(error, JsError::Timeout { .. }) {
        return JsError::Timeout {
            limit: limits.time(),
            elapsed,
        };
    }
    match &error {
        JsError::Uncaught { name, message, .. } => {
            if message.contains("out of memory") {
                JsError::OutOfMemory {
                    limit: limits.memory_bytes,
                }
            } else if (name == "RangeError" && message.contains("call stack"))
                || message.contains("stack overflow")
            {
                JsError::StackOverflow {
                    limit: limits.stack_bytes,
                }
            } else {
                error
            }
        }
        JsError::Engine { detail } if detail.contains("Allocation") => JsError::OutOfMemory {
            limit: limits.memory_bytes,
        },
        _ => error,
    }
}

/// Replaces the engine's realm when it has served its calls.
pub(super) fn prepare_realm(engine: &mut Engine, realm_calls: u32) -> rquickjs::Result<()> {
    if engine.realm.is_none() || engine.calls >= realm_calls.max(1) {
        engine.instance = None;
        engine.values = None;
        engine.kept.clear();
        if engine.realm.take().is_some() {
            // Collect the old realm now rather than during a call.
            engine.runtime.run_gc();
        }
        engine.calls = 0;
        engine.arm(Deadline::start(LOAD_CHECK_TIME));
        // A context used once needs no freezing.
        let lockdown = realm_calls > 1;
        // The realm's own memory is not the function's: the limit applies
        // on top of it, and garbage is collected between realms, not
        // during calls (unless a call itself makes that much).
        engine.runtime.set_memory_limit(0);
        let (realm, values) = realm(&engine.runtime, &engine.state, lockdown)?;
        engine.values = Some(values);
        engine.runtime.run_gc();
        let base = usize::try_from(engine.runtime.memory_usage().malloc_size).unwrap_or(0);
        engine
            .runtime
            .set_memory_limit(base.saturating_add(engine.memory_limit));
        engine
            .runtime
            .set_gc_threshold(base.saturating_add(engine.memory_limit / 2));
        engine.realm = Some(realm);
    }
    Ok(())
}

pub(super) fn call(engine: &mut Engine, inner: &Inner, input: &Input<'_>) -> Result<(), JsError> {
    let wrapped = inner.wrapped;
    let deadline = engine.deadline.clone();
    let deadline = &*deadline;
    engine.calls += 1;
    let state = engine.state.clone();
    let Some(context) = &engine.realm else {
        return Err(JsError::Engine {
            detail: "no realm".into(),
        });
    };
    let calls = engine.calls;
    let cached = engine.instance.clone();
    let methods = engine.values.as_ref().map(|v| v.methods.clone());
    let lock = engine.values.as_ref().map(|v| v.lock.clone());
    let kept = &mut engine.kept;
    let mut keep = None;
    let result = context.with(|ctx| {
        let caught = |e| caught(&ctx, e);
        let [allow, deny, log] = restored(&ctx, methods, "no connection methods")?;
        let methods = object::Methods { allow, deny, log };
        let built = match input {
            Input::Json(json) => object::build(&ctx, json, &methods),
            Input::Connection(connection) => {
                let [prevent_extensions, freeze] = restored(&ctx, lock, "no connection lock")?;
                let lock = object::Lock {
                    prevent_extensions,
                    freeze,
                };
                object::build_from(&ctx, connection, inner.fingerprint, &methods, &lock, kept)
                    .map(Some)
            }
        };
        let connection = built
            .map_err(|e| match caught(e) {
                JsError::Uncaught { message, .. } => JsError::InvalidConnection { detail: message },
                other => other,
            })?
            .ok_or_else(|| JsError::InvalidConnection {
                detail: "not an object".into(),
            })?;
        let id = match input {
            Input::Connection(c) => Some(c.connection_id.clone()),
            Input::Json(_) => connection
                .get::<_, Option<String>>("connectionId")
                .ok()
                .flatten(),
        };
        if let Some(id) = id {
            state.borrow_mut().connection_id = cut(id, 128);
        }
        let instance: Function = match cached {
            Some(instance) => instance.restore(&ctx).map_err(caught)?,
            None => {
                // Wrapped: one module instance per realm; else a fresh
                // instance of the module for every call.
                let name = if wrapped {
                    FUNCTION_MODULE.to_string()
                } else {
                    format!("{FUNCTION_MODULE}?{calls}")
                };
                let import = Module::import(&ctx, name).map_err(caught)?;
                let namespace: Object = drive(&ctx, import, deadline)?;
                let instance: Function = namespace.get(INSTANCE_EXPORT).map_err(caught)?;
                if wrapped {
                    keep = Some(Persistent::save(&ctx, instance.clone()));
                }
                instance
            }
        };
        let handler: Function = instance.call(()).map_err(caught)?;
        let returned: Value = handler.call((connection,)).map_err(caught)?;
        if let Some(promise) = returned.as_promise() {
            drive::<Value>(&ctx, promise.clone(), deadline)?;
        } else {
            // A plain handler may still have started promise jobs (an
            // un-awaited async helper that decides): run them out.
            while ctx.execute_pending_job() {
                if passed(deadline) {
                    return Err(timed_out());
                }
            }
        }
        Ok(())
    });
    if keep.is_some() {
        engine.instance = keep;
    }
    result
}

/// Functions the realm keeps, in the call's context (`missing` when the
/// realm has none).
fn restored<'js, const N: usize>(
    ctx: &Ctx<'js>,
    kept: Option<[Persistent<Function<'static>>; N]>,
    missing: &str,
) -> Result<[Function<'js>; N], JsError> {
    let kept = kept.ok_or_else(|| JsError::Engine {
        detail: missing.into(),
    })?;
    let mut restored = Vec::with_capacity(N);
    for function in kept {
        restored.push(function.restore(ctx).map_err(|e| caught(ctx, e))?);
    }
    restored.try_into().map_err(|_| JsError::Engine {
        detail: missing.into(),
    })
}

/// Runs the job queue until `promise` settles, the deadline passes or
/// nothing is left to run.
pub(super) fn drive<'js, T: FromJs<'js>>(
    ctx: &Ctx<'js>,
    promise: Promise<'js>,
    deadline: &Cell<Deadline>,
) -> Result<T, JsError> {
    loop {
        if let Some(result) = promise.result::<T>() {
            return result.map_err(|e| caught(ctx, e));
        }
        if passed(deadline) {
            return Err(timed_out());
        }
        if !ctx.execute_pending_job() {
            return Err(JsError::NeverSettled);
        }
    }
}

/// A timeout (its figures are filled in by [`classify`]).
pub(super) fn timed_out() -> JsError {
    JsError::Timeout {
        limit: std::time::Duration::ZERO,
        elapsed: std::time::Duration::ZERO,
    }
}

/// The pending exception (or the engine error) as a [`JsError`].
pub(super) fn caught(ctx: &Ctx<'_>, error: rquickjs::Error) -> JsError {
    match error {
        rquickjs::Error::Exception => {
            let value = ctx.catch();
            let (name, message, stack) = describe(&value);
            JsError::Uncaught {
                name,
                message,
                stack,
            }
        }
        rquickjs::Error::WouldBlock => JsError::NeverSettled,
        other => JsError::Engine {
            detail: format!("{other:?}"),
        },
    }
}

/// `name`, `message` and `stack` of a thrown value.
pub(super) fn describe(value: &Value<'_>) -> (String, String, Option<String>) {
    let text = |v: Option<String>| v.map(|s| cut(s, 1024));
    if let Some(object) = value.as_object() {
        let name = object.get::<_, Option<String>>("name").ok().flatten();
        let message = object.get::<_, Option<String>>("message").ok().flatten();
        if name.is_some() || message.is_some() {
            let stack = object.get::<_, Option<String>>("stack").ok().flatten();
            return (
                text(name).unwrap_or_else(|| "Error".into()),
                text(message).unwrap_or_default(),
                text(stack).filter(|s| !s.is_empty()),
            );
        }
    }
    let message = value
        .get::<rquickjs::convert::Coerced<String>>()
        .map(|c| c.0)
        .unwrap_or_default();
    (value.type_name().to_string(), cut(message, 1024), None)
}

/// The message of a compile-time failure.
pub(super) fn exception_text(ctx: &Ctx<'_>, error: rquickjs::Error) -> String {
    match caught(ctx, error) {
        JsError::Uncaught { name, message, .. } => format!("{name}: {message}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spins on this thread's CPU for `time` (wall clock).
    fn spin(time: Duration) {
        let start = Instant::now();
        while start.elapsed() < time {
            std::hint::black_box(0u64.wrapping_add(1));
        }
    }

    #[test]
    fn a_lazy_deadline_reads_the_cpu_clock_only_after_a_tenth_of_the_limit() {
        let mut deadline = Deadline::start_lazy(Duration::from_millis(200));
        assert!(!deadline.passed());
        assert!(matches!(deadline.cpu, CpuClock::Unread { .. }));
        spin(Duration::from_millis(25));
        assert!(!deadline.passed());
        assert!(!matches!(deadline.cpu, CpuClock::Unread { .. }));
    }

    #[test]
    fn a_lazy_deadline_charges_no_wait_after_the_first_tenth() {
        let limit = Duration::from_millis(40);
        let mut deadline = Deadline::start_lazy(limit);
        spin(Duration::from_millis(5));
        assert!(!deadline.passed(), "the clock is read past the first tenth");
        // Off the CPU past the limit (the backstop is 10 times further).
        std::thread::sleep(limit + Duration::from_millis(20));
        assert!(!deadline.passed(), "a wait is not CPU time");
        assert!(deadline.used() < limit);
        // On the CPU until the limit is used: it passes, and not before.
        let mut checks = 0;
        while !deadline.passed() {
            checks += 1;
            assert!(deadline.wall_start.elapsed() < limit * 10, "never passed");
        }
        assert!(checks > 0);
        assert!(deadline.used() >= limit);
    }

    #[test]
    fn an_exact_deadline_counts_cpu_time_from_the_start() {
        let limit = Duration::from_millis(30);
        let mut deadline = Deadline::start(limit);
        assert!(matches!(
            deadline.cpu,
            CpuClock::Read { .. } | CpuClock::Missing
        ));
        std::thread::sleep(limit);
        assert!(!deadline.passed(), "a wait is not CPU time");
        while !deadline.passed() {}
        assert!(deadline.wall_start.elapsed() >= limit * 2 - Duration::from_millis(1));
    }
}
