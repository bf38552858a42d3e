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

/// The most shapes a realm keeps (the connection object needs about 40:
/// one per prefix of each kind of object's keys).
const MAX_SHAPES: usize = 256;

/// One node of [`Shapes`]: the keys on the path to it from the root, in
/// order, are the keys of an object written so far.
struct Shape {
    /// The node of the keys before the last.
    parent: u32,
    /// The last key as an engine atom (none at the root).
    atom: Option<Persistent<Atom<'static>>>,
    /// An object with exactly these keys, kept so that the engine keeps
    /// its shape (the engine drops a shape with its last object).
    _template: Persistent<Object<'static>>,
    children: Vec<(&'static str, u32)>,
}

/// The shapes of the objects a realm writes, as a tree of their keys.
///
/// The engine shares a shape among the objects with the same keys (same
/// order and attributes) while one of them lives, and finds it when an
/// object takes one more key. Objects written for a call die with it, so
/// each call would make every shape again, one key at a time: a node of
/// this tree keeps an object with its keys, so that writing an object of a
/// known kind finds every shape along the way. It also keeps each key as
/// an atom, so that a key is never looked up by its name.
#[derive(Default)]
pub(super) struct Shapes {
    nodes: Vec<Shape>,
}

impl Shapes {
    /// The root: an empty object.
    fn root(&mut self, ctx: &Ctx<'_>) -> rquickjs::Result<u32> {
        if self.nodes.is_empty() {
            let template = Object::new(ctx.clone())?;
            self.nodes.push(Shape {
                parent: 0,
                atom: None,
                _template: Persistent::save(ctx, template),
                children: Vec::new(),
            });
        }
        Ok(0)
    }

    /// `key` as an atom, and the node of `at`'s keys followed by `key`
    /// (made, with its template, on first use).
    fn step<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        at: Option<u32>,
        key: &'static str,
    ) -> rquickjs::Result<(Atom<'js>, Option<u32>)> {
        let Some(at) = at else {
            return Ok((Atom::from_str(ctx.clone(), key)?, None));
        };
        let children = &self.nodes[at as usize].children;
        // The keys are literals: the same key is nearly always the same
        // pointer.
        let found = (children.iter().find(|(k, _)| core::ptr::eq(*k, key)))
            .or_else(|| children.iter().find(|(k, _)| *k == key));
        if let Some(&(_, child)) = found {
            if let Some(atom) = &self.nodes[child as usize].atom {
                return Ok((atom.clone().restore(ctx)?, Some(child)));
            }
        }
        let atom = Atom::from_str(ctx.clone(), key)?;
        if self.nodes.len() >= MAX_SHAPES {
            return Ok((atom, None));
        }
        // The template: the keys from the root to here, then `key`.
        let mut path = vec![atom.clone()];
        let mut node = at;
        while node != 0 {
            let shape = &self.nodes[node as usize];
            if let Some(atom) = &shape.atom {
                path.push(atom.clone().restore(ctx)?);
            }
            node = shape.parent;
        }
        let template = Object::new(ctx.clone())?;
        for atom in path.into_iter().rev() {
            define(&template, atom, Value::new_undefined(ctx.clone()))?;
        }
        let child = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
        self.nodes.push(Shape {
            parent: at,
            atom: Some(Persistent::save(ctx, atom.clone())),
            _template: Persistent::save(ctx, template),
            children: Vec::new(),
        });
        self.nodes[at as usize].children.push((key, child));
        Ok((atom, Some(child)))
    }
}

/// An object being written, and the node of [`Shapes`] its keys so far
/// lead to (`None` off the tree).
pub(super) struct Building<'js> {
    object: Object<'js>,
    shape: Option<u32>,
}

impl<'js> Building<'js> {
    /// The object.
    pub(super) fn into_value(self) -> Value<'js> {
        self.object.into_value()
    }

    /// The object.
    pub(super) fn into_object(self) -> Object<'js> {
        self.object
    }
}

/// Objects and arrays built for one connection object, made immutable
/// together by [`Frozen::finish`].
pub(super) struct Frozen<'k, 'js> {
    ctx: Ctx<'js>,
    shapes: &'k mut Shapes,
    /// Objects, and arrays (`true`), to make immutable.
    pending: Vec<(Value<'js>, bool)>,
}

impl<'k, 'js> Frozen<'k, 'js> {
    pub(super) fn new(ctx: &Ctx<'js>, shapes: &'k mut Shapes) -> Self {
        Self {
            ctx: ctx.clone(),
            shapes,
            pending: Vec::with_capacity(16),
        }
    }

    /// A new empty object whose properties are added with [`Frozen::define`].
    pub(super) fn object(&mut self) -> rquickjs::Result<Building<'js>> {
        let object = Object::new(self.ctx.clone())?;
        self.pending.push((object.clone().into_value(), false));
        Ok(Building {
            object,
            shape: Some(self.shapes.root(&self.ctx)?),
        })
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
        self.pending.push((array.clone().into_value(), true));
        Ok(array)
    }

    /// Defines `key` on `object`: enumerable, read-only, not configurable.
    pub(super) fn define<V: IntoJs<'js>>(
        &mut self,
        object: &mut Building<'js>,
        key: &'static str,
        value: V,
    ) -> rquickjs::Result<()> {
        let (atom, shape) = self.shapes.step(&self.ctx, object.shape, key)?;
        object.shape = shape;
        define(&object.object, atom, value)
    }

    /// `value` as a frozen engine value.
    pub(super) fn value<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> rquickjs::Result<Value<'js>> {
        value.serialize(Writer { frozen: self }).map_err(|e| e.0)
    }

    /// Makes every object and array built so far immutable: objects,
    /// whose properties are read-only already, with
    /// `prevent_extensions` (`Object.preventExtensions`), arrays with
    /// `freeze` (`Object.freeze`).
    pub(super) fn finish(
        self,
        prevent_extensions: &Function<'js>,
        freeze: &Function<'js>,
    ) -> rquickjs::Result<()> {
        for (value, array) in self.pending {
            let lock = if array { freeze } else { prevent_extensions };
            lock.call::<_, ()>((value,))?;
        }
        Ok(())
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
    object: Building<'js>,
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
        let mut object = self.frozen.object()?;
        let inner = value.serialize(Writer {
            frozen: self.frozen,
        })?;
        self.frozen.define(&mut object, variant, inner)?;
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
        // A key that is not a literal takes no shape of the tree.
        self.object.shape = None;
        Ok(define(&self.object.object, key, value)?)
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
        Ok(self.frozen.define(&mut self.object, key, value)?)
    }
    fn end(self) -> Result<Value<'js>, WriteError> {
        Ok(self.object.into_value())
    }
}
