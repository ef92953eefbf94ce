//! Records of the Python API: a native value that Python objects convert
//! into, so that the engine moves, hashes, compares and checkpoints records
//! without the interpreter.
//!
//! Equality and hashing follow Python's `==` (`1 == 1.0 == True` is one
//! key; a dict equals the same entries in another order), never Python's
//! per-process `hash()`: a key routes to the same worker in every process
//! and every run. Objects of other types (user classes, sets, subclasses of
//! the built-in types) stay Python objects; they need the interpreter to be
//! hashed and compared, and are pickled when they are checkpointed or cross
//! a process.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::{Deserialize, Serialize};

/// One record, or a part of one.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An `int` that fits 64 bits.
    Int(i64),
    /// A larger `int`, as its decimal digits (with a `-` when negative).
    BigInt(String),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `bytes`.
    Bytes(Vec<u8>),
    /// A `tuple`.
    Tuple(Vec<Value>),
    /// A `list`.
    List(Vec<Value>),
    /// A `dict`, its entries in insertion order.
    Dict(Vec<(Value, Value)>),
    /// Any other object, kept as it is.
    Object(#[serde(with = "pickled")] PyObject),
}

/// A Python object shared between records without the interpreter: cloning
/// it only counts a reference on the Rust side.
#[derive(Clone, Debug)]
pub struct PyObject(pub Arc<Py<PyAny>>);

/// How a number compares: Python's numeric tower folded into one shape, so
/// that `2 == 2.0` and `2**70 == 2.0**70`.
#[derive(PartialEq, Eq, Hash)]
enum Number<'a> {
    Int(i64),
    Big(std::borrow::Cow<'a, str>),
    Float(u64),
}

impl Value {
    fn number(&self) -> Option<Number<'_>> {
        match self {
            Value::Bool(b) => Some(Number::Int(i64::from(*b))),
            Value::Int(i) => Some(Number::Int(*i)),
            Value::BigInt(s) => Some(Number::Big(s.as_str().into())),
            Value::Float(f) => Some(float_number(*f)),
            _ => None,
        }
    }

    /// The value as Python's `(key, value)` pair, for the keyed operations.
    pub fn into_pair(self) -> Result<(Value, Value), Value> {
        match self {
            Value::Tuple(items) | Value::List(items) if items.len() == 2 => {
                let mut items = items.into_iter();
                let key = items.next().unwrap_or(Value::None);
                let value = items.next().unwrap_or(Value::None);
                Ok((key, value))
            }
            other => Err(other),
        }
    }

    /// A two-element tuple.
    pub fn pair(key: Value, value: Value) -> Value {
        Value::Tuple(vec![key, value])
    }

    /// A short description for error messages: the type and a bounded repr.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        self.write_repr(&mut text);
        let short: String = text.chars().take(80).collect();
        if short.len() < text.len() {
            format!("{short}…")
        } else {
            short
        }
    }
}

fn float_number(f: f64) -> Number<'static> {
    if f.is_finite() && f.fract() == 0.0 {
        // -0.0 == 0 == 0.0; an integral float equals the int it names.
        if f >= -(2f64.powi(63)) && f < 2f64.powi(63) {
            return Number::Int(f as i64);
        }
        return Number::Big(format!("{f:.0}").into());
    }
    if f.is_nan() {
        // One NaN for every NaN: Python's NaN is not even equal to itself,
        // which a key cannot be.
        return Number::Float(f64::NAN.to_bits());
    }
    Number::Float(f.to_bits())
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        // The common keys first: words and small ints.
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => return a == b,
            (Value::Int(a), Value::Int(b)) => return a == b,
            _ => {}
        }
        if let (Some(a), Some(b)) = (self.number(), other.number()) {
            return a == b;
        }
        match (self, other) {
            (Value::None, Value::None) => true,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Tuple(a), Value::Tuple(b)) | (Value::List(a), Value::List(b)) => a == b,
            (Value::Dict(a), Value::Dict(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.iter().any(|(k2, v2)| k == k2 && v == v2))
            }
            (Value::Object(a), Value::Object(b)) => {
                Python::attach(|py| a.0.bind(py).eq(b.0.bind(py)).unwrap_or(false))
            }
            // An object can equal a built-in value (an IntEnum member, a str
            // subclass, a namedtuple, a Decimal): Python decides.
            (Value::Object(o), native) | (native, Value::Object(o)) => Python::attach(|py| {
                to_py(py, native)
                    .and_then(|n| o.0.bind(py).eq(n))
                    .unwrap_or(false)
            }),
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if let Some(n) = self.number() {
            0u8.hash(state);
            n.hash(state);
            return;
        }
        match self {
            Value::None => 1u8.hash(state),
            Value::Str(s) => {
                2u8.hash(state);
                s.hash(state);
            }
            Value::Bytes(b) => {
                3u8.hash(state);
                b.hash(state);
            }
            Value::Tuple(items) => {
                4u8.hash(state);
                items.hash(state);
            }
            Value::List(items) => {
                5u8.hash(state);
                items.hash(state);
            }
            Value::Dict(entries) => {
                // Order-free, as dict equality is.
                6u8.hash(state);
                let mut sum = 0u64;
                for entry in entries {
                    sum = sum.wrapping_add(ember::hash::route(entry));
                }
                sum.hash(state);
            }
            Value::Object(o) => match Python::attach(|py| canonical(o.0.bind(py))) {
                // Hashed as the built-in value it equals, so that both meet.
                Some(native) => native.hash(state),
                None => {
                    7u8.hash(state);
                    Python::attach(|py| o.0.bind(py).hash().unwrap_or(0)).hash(state);
                }
            },
            Value::Bool(_) | Value::Int(_) | Value::BigInt(_) | Value::Float(_) => {}
        }
    }
}

/// The built-in value an object of another type equals, if any: the value
/// of an `int`, `float`, `str`, `bytes` or `tuple` subclass, and the float a
/// number such as a `Decimal` or `Fraction` equals.
fn canonical(obj: &Bound<'_, PyAny>) -> Option<Value> {
    if obj.is_instance_of::<PyBool>() {
        return Some(Value::Bool(obj.is_truthy().ok()?));
    }
    if obj.is_instance_of::<PyInt>() {
        let int = obj.py().get_type::<PyInt>().call1((obj,)).ok()?;
        return from_py(&int).ok();
    }
    if obj.is_instance_of::<PyFloat>() {
        return Some(Value::Float(obj.extract::<f64>().ok()?));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return s.to_str().ok().map(|s| Value::Str(s.to_owned()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Some(Value::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t
            .iter()
            .map(|x| from_py(&x))
            .collect::<PyResult<Vec<_>>>()
            .ok()
            .map(Value::Tuple);
    }
    let number = obj.py().import("numbers").ok()?.getattr("Number").ok()?;
    if obj.is_instance(&number).ok()? {
        // A number that equals a float (a Decimal or Fraction that is a
        // whole number or a binary fraction) hashes as that float.
        let f: f64 = obj
            .py()
            .get_type::<PyFloat>()
            .call1((obj,))
            .ok()?
            .extract()
            .ok()?;
        if obj.eq(f).ok()? {
            return Some(Value::Float(f));
        }
    }
    None
}

/// Converts a Python object into a record.
pub fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::None);
    }
    if obj.is_exact_instance_of::<PyString>() {
        // A str with a lone surrogate (from os.fsdecode of a name that is
        // not UTF-8) is not Unicode text Rust can hold: it stays an object.
        if let Ok(text) = obj.cast::<PyString>()?.to_str() {
            return Ok(Value::Str(text.to_owned()));
        }
        return Ok(Value::Object(PyObject(Arc::new(obj.clone().unbind()))));
    }
    if obj.is_exact_instance_of::<PyBool>() {
        return Ok(Value::Bool(obj.is_truthy()?));
    }
    if obj.is_exact_instance_of::<PyInt>() {
        return Ok(match obj.extract::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(obj.str()?.to_str()?.to_owned()),
        });
    }
    if obj.is_exact_instance_of::<PyFloat>() {
        return Ok(Value::Float(obj.extract::<f64>()?));
    }
    if obj.is_exact_instance_of::<PyTuple>() {
        let tuple = obj.cast::<PyTuple>()?;
        return Ok(Value::Tuple(
            tuple.iter().map(|x| from_py(&x)).collect::<PyResult<_>>()?,
        ));
    }
    if obj.is_exact_instance_of::<PyList>() {
        let list = obj.cast::<PyList>()?;
        return Ok(Value::List(
            list.iter().map(|x| from_py(&x)).collect::<PyResult<_>>()?,
        ));
    }
    if obj.is_exact_instance_of::<PyDict>() {
        let dict = obj.cast::<PyDict>()?;
        return Ok(Value::Dict(
            dict.iter()
                .map(|(k, v)| Ok((from_py(&k)?, from_py(&v)?)))
                .collect::<PyResult<_>>()?,
        ));
    }
    if obj.is_exact_instance_of::<PyBytes>() {
        return Ok(Value::Bytes(obj.cast::<PyBytes>()?.as_bytes().to_vec()));
    }
    Ok(Value::Object(PyObject(Arc::new(obj.clone().unbind()))))
}

/// Converts a record into a Python object.
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::None => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::BigInt(digits) => py.get_type::<PyInt>().call1((digits.as_str(),))?.into_any(),
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::Str(s) => PyString::new(py, s).into_any(),
        Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        Value::Tuple(items) => PyTuple::new(
            py,
            items
                .iter()
                .map(|x| to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?,
        )?
        .into_any(),
        Value::List(items) => PyList::new(
            py,
            items
                .iter()
                .map(|x| to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?,
        )?
        .into_any(),
        Value::Dict(entries) => {
            let dict = PyDict::new(py);
            for (k, v) in entries {
                dict.set_item(to_py(py, k)?, to_py(py, v)?)?;
            }
            dict.into_any()
        }
        Value::Object(o) => o.0.bind(py).clone(),
    })
}

/// Converts a list of records into a Python list.
pub fn list_to_py<'py>(py: Python<'py>, values: &[Value]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(
        py,
        values
            .iter()
            .map(|x| to_py(py, x))
            .collect::<PyResult<Vec<_>>>()?,
    )
}

/// Converts any Python iterable into records.
pub fn iter_from_py(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Value>> {
    if let Ok(list) = obj.cast::<PyList>() {
        return list.iter().map(|x| from_py(&x)).collect();
    }
    obj.try_iter()?.map(|x| from_py(&x?)).collect()
}

/// Serde for Python objects: their pickle.
mod pickled {
    use super::*;
    use serde::{de, ser, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(obj: &PyObject, s: S) -> Result<S::Ok, S::Error> {
        let bytes = Python::attach(|py| -> PyResult<Vec<u8>> {
            let pickle = py.import("pickle")?;
            let data = pickle.call_method1("dumps", (obj.0.bind(py),))?;
            Ok(data.cast::<PyBytes>()?.as_bytes().to_vec())
        })
        .map_err(|e| ser::Error::custom(format!("cannot pickle a record: {e}")))?;
        serde::Serialize::serialize(&bytes, s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PyObject, D::Error> {
        let bytes: Vec<u8> = serde::Deserialize::deserialize(d)?;
        Python::attach(|py| -> PyResult<PyObject> {
            let pickle = py.import("pickle")?;
            let obj = pickle.call_method1("loads", (PyBytes::new(py, &bytes),))?;
            Ok(PyObject(Arc::new(obj.unbind())))
        })
        .map_err(|e| de::Error::custom(format!("cannot unpickle a record: {e}")))
    }
}

impl Value {
    /// The value as a float when it is a number (or a bool).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            Value::Int(i) => Some(*i as f64),
            Value::BigInt(digits) => digits.parse().ok(),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Writes Python's `repr()` of the value.
    fn write_repr(&self, out: &mut String) {
        use std::fmt::Write as _;
        let seq = |out: &mut String, items: &[Value], open: &str, close: &str| {
            out.push_str(open);
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                item.write_repr(out);
            }
            if open == "(" && items.len() == 1 {
                out.push(',');
            }
            out.push_str(close);
        };
        match self {
            Value::None => out.push_str("None"),
            Value::Bool(true) => out.push_str("True"),
            Value::Bool(false) => out.push_str("False"),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::BigInt(digits) => out.push_str(digits),
            Value::Float(f) => out.push_str(&float_repr(*f)),
            Value::Str(s) => {
                let quote = if s.contains('\'') && !s.contains('"') {
                    '"'
                } else {
                    '\''
                };
                out.push(quote);
                for c in s.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        c if c == quote => {
                            out.push('\\');
                            out.push(c);
                        }
                        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                            let _ = write!(out, "\\x{:02x}", c as u32);
                        }
                        c => out.push(c),
                    }
                }
                out.push(quote);
            }
            Value::Bytes(b) => {
                out.push_str("b'");
                for &byte in b {
                    match byte {
                        b'\\' => out.push_str("\\\\"),
                        b'\'' => out.push_str("\\'"),
                        b'\n' => out.push_str("\\n"),
                        b'\r' => out.push_str("\\r"),
                        b'\t' => out.push_str("\\t"),
                        0x20..=0x7e => out.push(byte as char),
                        _ => {
                            let _ = write!(out, "\\x{byte:02x}");
                        }
                    }
                }
                out.push('\'');
            }
            Value::Tuple(items) => seq(out, items, "(", ")"),
            Value::List(items) => seq(out, items, "[", "]"),
            Value::Dict(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.write_repr(out);
                    out.push_str(": ");
                    v.write_repr(out);
                }
                out.push('}');
            }
            Value::Object(o) => {
                let text = Python::attach(|py| {
                    o.0.bind(py)
                        .repr()
                        .map(|r| r.to_string())
                        .unwrap_or_else(|_| "<object>".into())
                });
                out.push_str(&text);
            }
        }
    }
}

/// Python's `repr()` of a float: shortest round-trip digits, `.0` on whole
/// numbers, and an exponent below 1e-4 and from 1e16.
fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let abs = f.abs();
    if abs == 0.0 || (1e-4..1e16).contains(&abs) {
        let text = format!("{f}");
        return if text.contains('.') {
            text
        } else {
            format!("{text}.0")
        };
    }
    // Rust writes `1e16` and `1.5e-5`; Python `1e+16` and `1.5e-05`.
    let text = format!("{f:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

/// Python's `str()`: text as it is, everything else as `repr()` (so
/// `print(record)` and the dashboard agree with Python).
impl ember::Show for Value {
    fn fmt_show(&self, out: &mut String) {
        match self {
            Value::Str(s) => out.push_str(s),
            other => other.write_repr(out),
        }
    }
}
