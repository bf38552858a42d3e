//! Serde values written straight into the engine as frozen objects.
//!
//! Every property is defined read-only and non-configurable when it is
//! created, so an object only has to be made non-extensible to be frozen
//! (`Object.isFrozen` holds), which is much cheaper than `Object.freeze`
//! walking and redefining its properties afterwards, and cheaper than
//! writing JSON for the engine to parse. Arrays are frozen the usual way
//! (their `length` is writable until then). [`Frozen::finish`] does both in
//! one call into the realm's `lock`.

use core::fmt;

use rquickjs::object::Property;
use rquickjs::{Array, Atom, Ctx, Function, IntoAtom, IntoJs, Object, Persistent, Value};
use serde::ser::{self, Serialize};

/// The most property names a realm keeps as atoms (the field names of the
/// connection object are fewer).
const MAX_KEYS: usize = 64;

/// Property names made into engine atoms once per realm, so that writing a
/// property does not hash and look up its name every time.
#[derive(Default)]
pub(super) struct Keys {
    atoms: Vec<(&'static str, Persistent<Atom<'static>>)>,
}

impl Keys {
    /// Forgets every atom (before the realm goes).
    pub(super) fn clear(&mut self) {
        self.atoms.clear();
    }

    fn atom<'js>(&mut self, ctx: &Ctx<'js>, name: &'static str) -> rquickjs::Result<Atom<'js>> {
        // The names are literals: the same name is nearly always the same
        // pointer.
        let found = (self.atoms.iter().find(|(n, _)| core::ptr::eq(*n, name)))
            .or_else(|| self.atoms.iter().find(|(n, _)| *n == name));
        if let Some((_, atom)) = found {
            return atom.clone().restore(ctx);
        }
        let atom = Atom::from_str(ctx.clone(), name)?;
        if self.atoms.len() < MAX_KEYS {
            self.atoms.push((name, Persistent::save(ctx, atom.clone())));
        }
        Ok(atom)
    }
}

/// Objects and arrays built for one connection object, made immutable
/// together by [`Frozen::finish`].
pub(super) struct Frozen<'k, 'js> {
    ctx: Ctx<'js>,
    keys: &'k mut Keys,
    /// Objects and arrays to lock, in creation order.
    pending: Vec<Value<'js>>,
}

impl<'k, 'js> Frozen<'k, 'js> {
    pub(super) fn new(ctx: &Ctx<'js>, keys: &'k mut Keys) -> Self {
        Self {
            ctx: ctx.clone(),
            keys,
            pending: Vec::with_capacity(16),
        }
    }

    /// A new empty object whose properties are added with [`Frozen::define`].
    pub(super) fn object(&mut self) -> rquickjs::Result<Object<'js>> {
        let object = Object::new(self.ctx.clone())?;
        self.pending.push(object.clone().into_value());
        Ok(object)
    }

    /// A new array of `items`.
    pub(super) fn array(
        &mut self,
        items: impl IntoIterator<Item = Value<'js>>,
    ) -> rquickjs::Result<Array<'js>> {
        let array = Array::new(self.ctx.clone())?;
        for (i, item) in items.into_iter().enumerate() {
            array.set(i, item)?;
        }
        self.pending.push(array.clone().into_value());
        Ok(array)
    }

    /// Defines `key` on `object`: enumerable, read-only, not configurable.
    pub(super) fn define<V: IntoJs<'js>>(
        &mut self,
        object: &Object<'js>,
        key: &'static str,
        value: V,
    ) -> rquickjs::Result<()> {
        let key = self.keys.atom(&self.ctx, key)?;
        define(object, key, value)
    }

    /// `value` as a frozen engine value.
    pub(super) fn value<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> rquickjs::Result<Value<'js>> {
        value.serialize(Writer { frozen: self }).map_err(|e| e.0)
    }

    /// Makes every object and array built so far immutable, with the
    /// realm's `lock` (`Object.preventExtensions` for objects, whose
    /// properties are read-only already; `Object.freeze` for arrays).
    pub(super) fn finish(self, lock: &Function<'js>) -> rquickjs::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut args = rquickjs::function::Args::new_unsized(self.ctx.clone());
        args.push_args(self.pending)?;
        lock.call_arg::<()>(args)
    }
}

/// Defines `key` on `object`: enumerable, read-only, not configurable.
fn define<'js, K: IntoAtom<'js>, V: IntoJs<'js>>(
    object: &Object<'js>,
    key: K,
    value: V,
) -> rquickjs::Result<()> {
    object.prop(key, Property::from(value).enumerable())
}

/// Why a value could not be written (the engine's error).
#[derive(Debug)]
pub(super) struct WriteError(rquickjs::Error);

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for WriteError {}

impl ser::Error for WriteError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(rquickjs::Error::new_from_js_message(
            "value",
            "object",
            msg.to_string(),
        ))
    }
}

impl From<rquickjs::Error> for WriteError {
    fn from(e: rquickjs::Error) -> Self {
        Self(e)
    }
}

/// The serde serializer behind [`Frozen::value`].
struct Writer<'a, 'k, 'js> {
    frozen: &'a mut Frozen<'k, 'js>,
}

impl<'js> Writer<'_, '_, 'js> {
    fn ctx(&self) -> Ctx<'js> {
        self.frozen.ctx.clone()
    }

    fn string(&self, s: &str) -> Result<Value<'js>, WriteError> {
        Ok(rquickjs::String::from_str(self.ctx(), s)?.into_value())
    }
}

/// A sequence being written.
struct SeqWriter<'a, 'k, 'js> {
    frozen: &'a mut Frozen<'k, 'js>,
    items: Vec<Value<'js>>,
}

/// A map or struct being written.
struct MapWriter<'a, 'k, 'js> {
    frozen: &'a mut Frozen<'k, 'js>,
    object: Object<'js>,
    key: Option<String>,
}

impl<'a, 'k, 'js> ser::Serializer for Writer<'a, 'k, 'js> {
    type Ok = Value<'js>;
    type Error = WriteError;
    type SerializeSeq = SeqWriter<'a, 'k, 'js>;
    type SerializeTuple = SeqWriter<'a, 'k, 'js>;
    type SerializeTupleStruct = SeqWriter<'a, 'k, 'js>;
    type SerializeTupleVariant = ser::Impossible<Value<'js>, WriteError>;
    type SerializeMap = MapWriter<'a, 'k, 'js>;
    type SerializeStruct = MapWriter<'a, 'k, 'js>;
    type SerializeStructVariant = ser::Impossible<Value<'js>, WriteError>;

    fn serialize_bool(self, v: bool) -> Result<Value<'js>, WriteError> {
        Ok(Value::new_bool(self.ctx(), v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value<'js>, WriteError> {
        Ok(Value::new_int(self.ctx(), v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value<'js>, WriteError> {
        Ok(Value::new_int(self.ctx(), v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value<'js>, WriteError> {
        Ok(Value::new_int(self.ctx(), v))
    }
    fn serialize_i64(self, v: i64) -> Result<Value<'js>, WriteError> {
        Ok(match i32::try_from(v) {
            Ok(v) => Value::new_int(self.ctx(), v),
            // As JSON.parse reads it.
            Err(_) => Value::new_number(self.ctx(), v as f64),
        })
    }
    fn serialize_u8(self, v: u8) -> Result<Value<'js>, WriteError> {
        Ok(Value::new_int(self.ctx(), v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value<'js>, WriteError> {
        Ok(Value::new_int(self.ctx(), v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value<'js>, WriteError> {
        self.serialize_i64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<Value<'js>, WriteError> {
        Ok(match i32::try_from(v) {
            Ok(v) => Value::new_int(self.ctx(), v),
            Err(_) => Value::new_number(self.ctx(), v as f64),
        })
    }
    fn serialize_f32(self, v: f32) -> Result<Value<'js>, WriteError> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<Value<'js>, WriteError> {
        // JSON has no NaN or infinity: serde_json writes them as null.
        if v.is_finite() {
            Ok(Value::new_number(self.ctx(), v))
        } else {
            self.serialize_unit()
        }
    }
    fn serialize_char(self, v: char) -> Result<Value<'js>, WriteError> {
        self.string(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<Value<'js>, WriteError> {
        self.string(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value<'js>, WriteError> {
        // As serde_json: an array of numbers.
        let items: Vec<Value<'js>> = v
            .iter()
            .map(|b| Value::new_int(self.ctx(), (*b).into()))
            .collect();
        Ok(self.frozen.array(items)?.into_value())
    }
    fn serialize_none(self) -> Result<Value<'js>, WriteError> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value<'js>, WriteError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value<'js>, WriteError> {
        Ok(Value::new_null(self.ctx()))
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value<'js>, WriteError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value<'js>, WriteError> {
        self.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value<'js>, WriteError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value<'js>, WriteError> {
        let object = self.frozen.object()?;
        let inner = value.serialize(Writer {
            frozen: self.frozen,
        })?;
        self.frozen.define(&object, variant, inner)?;
        Ok(object.into_value())
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqWriter<'a, 'k, 'js>, WriteError> {
        Ok(SeqWriter {
            frozen: self.frozen,
            items: Vec::with_capacity(len.unwrap_or(0)),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqWriter<'a, 'k, 'js>, WriteError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqWriter<'a, 'k, 'js>, WriteError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, WriteError> {
        Err(ser::Error::custom(format_args!(
            "{name}::{variant}: tuple variants are not written"
        )))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapWriter<'a, 'k, 'js>, WriteError> {
        Ok(MapWriter {
            object: self.frozen.object()?,
            frozen: self.frozen,
            key: None,
        })
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<MapWriter<'a, 'k, 'js>, WriteError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, WriteError> {
        Err(ser::Error::custom(format_args!(
            "{name}::{variant}: struct variants are not written"
        )))
    }
}

impl<'js> SeqWriter<'_, '_, 'js> {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WriteError> {
        let value = value.serialize(Writer {
            frozen: self.frozen,
        })?;
        self.items.push(value);
        Ok(())
    }

    fn done(self) -> Result<Value<'js>, WriteError> {
        Ok(self.frozen.array(self.items)?.into_value())
    }
}

impl<'js> ser::SerializeSeq for SeqWriter<'_, '_, 'js> {
    type Ok = Value<'js>;
    type Error = WriteError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WriteError> {
        self.push(value)
    }
    fn end(self) -> Result<Value<'js>, WriteError> {
        self.done()
    }
}

impl<'js> ser::SerializeTuple for SeqWriter<'_, '_, 'js> {
    type Ok = Value<'js>;
    type Error = WriteError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WriteError> {
        self.push(value)
    }
    fn end(self) -> Result<Value<'js>, WriteError> {
        self.done()
    }
}

impl<'js> ser::SerializeTupleStruct for SeqWriter<'_, '_, 'js> {
    type Ok = Value<'js>;
    type Error = WriteError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WriteError> {
        self.push(value)
    }
    fn end(self) -> Result<Value<'js>, WriteError> {
        self.done()
    }
}

impl<'js> MapWriter<'_, '_, 'js> {
    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<Value<'js>, WriteError> {
        value.serialize(Writer {
            frozen: self.frozen,
        })
    }
}

impl<'js> ser::SerializeMap for MapWriter<'_, '_, 'js> {
    type Ok = Value<'js>;
    type Error = WriteError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), WriteError> {
        // As JSON: strings, and numbers written as strings.
        self.key = Some(match key.serialize(serde_json::value::Serializer) {
            Ok(serde_json::Value::String(key)) => key,
            Ok(serde_json::Value::Number(key)) => key.to_string(),
            _ => return Err(ser::Error::custom("a map key that is not a string")),
        });
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WriteError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| <WriteError as ser::Error>::custom("a map value without its key"))?;
        let value = self.value(value)?;
        Ok(define(&self.object, key, value)?)
    }
    fn end(self) -> Result<Value<'js>, WriteError> {
        Ok(self.object.into_value())
    }
}

impl<'js> ser::SerializeStruct for MapWriter<'_, '_, 'js> {
    type Ok = Value<'js>;
    type Error = WriteError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), WriteError> {
        let value = self.value(value)?;
        Ok(self.frozen.define(&self.object, key, value)?)
    }
    fn end(self) -> Result<Value<'js>, WriteError> {
        Ok(self.object.into_value())
    }
}
