//! Python functions the engine runs natively.
//!
//! `ember._lift` recognises small functions (`lambda l: l.split(" ")`,
//! `lambda w: (w, 1)`, `lambda a, b: a + b`, …) from their bytecode and
//! hands their expression tree over; [`Expr::eval`] evaluates it on native
//! [`Value`]s with Python's semantics. Where the native evaluation cannot
//! give exactly Python's answer — another type than it handles, an `int`
//! that outgrows 64 bits, a float sum (3.12 changed how `sum` adds floats),
//! non-ASCII case mapping, anything that raises — it answers [`Defer`], and
//! the caller calls the Python function on that input instead. So a lifted
//! function never gives another result than the function itself, only
//! faster.

use std::borrow::Cow;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use crate::value::{from_py, Value};

/// The native evaluation cannot give Python's answer; call the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Defer;

type Eval<'a> = Result<Cow<'a, Value>, Defer>;

/// `+`, `-`, `*`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
}

/// The six comparisons.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CmpOp {
    Lt,
    Le,
    Eq,
    Ne,
    Gt,
    Ge,
}

/// The builtins called with one argument.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Builtin {
    Len,
    Int,
    Float,
    Str,
    Sum,
    Abs,
}

/// The `str` methods.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Method {
    Split,
    Lower,
    Upper,
    Strip,
}

/// A recognised function's body (see `ember/_lift.py` for the tuple form).
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Arg(usize),
    Const(Value),
    Tuple(Vec<Expr>),
    List(Vec<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    Index(Box<Expr>, Box<Expr>),
    Call(Builtin, Box<Expr>),
    Method(Method, Box<Expr>, Option<Box<Expr>>),
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

fn bad(what: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("ember: not a native expression: {what}"))
}

impl Expr {
    /// Reads the tuple form `ember._lift.recognize` gives.
    pub(crate) fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Expr> {
        let tuple = obj.cast::<PyTuple>().map_err(|_| bad(obj))?;
        let kind: String = tuple.get_item(0)?.extract()?;
        let item = |i: usize| tuple.get_item(i);
        let sub = |i: usize| -> PyResult<Box<Expr>> { Ok(Box::new(Expr::from_py(&item(i)?)?)) };
        let list = |i: usize| -> PyResult<Vec<Expr>> {
            let l = item(i)?;
            let l = l.cast::<PyList>().map_err(|_| bad(&l))?;
            l.iter().map(|e| Expr::from_py(&e)).collect()
        };
        let name = |i: usize| -> PyResult<String> {
            let n = item(i)?;
            Ok(n.cast::<PyString>()
                .map_err(|_| bad(&n))?
                .to_str()?
                .to_owned())
        };
        Ok(match kind.as_str() {
            "arg" => Expr::Arg(item(1)?.extract()?),
            "const" => Expr::Const(from_py(&item(1)?)?),
            "tuple" => Expr::Tuple(list(1)?),
            "list" => Expr::List(list(1)?),
            "bin" => {
                let op = match name(1)?.as_str() {
                    "+" => BinOp::Add,
                    "-" => BinOp::Sub,
                    "*" => BinOp::Mul,
                    other => return Err(bad(other)),
                };
                Expr::Bin(op, sub(2)?, sub(3)?)
            }
            "cmp" => {
                let op = match name(1)?.as_str() {
                    "<" => CmpOp::Lt,
                    "<=" => CmpOp::Le,
                    "==" => CmpOp::Eq,
                    "!=" => CmpOp::Ne,
                    ">" => CmpOp::Gt,
                    ">=" => CmpOp::Ge,
                    other => return Err(bad(other)),
                };
                Expr::Cmp(op, sub(2)?, sub(3)?)
            }
            "index" => Expr::Index(sub(1)?, sub(2)?),
            "call" => {
                let f = match name(1)?.as_str() {
                    "len" => Builtin::Len,
                    "int" => Builtin::Int,
                    "float" => Builtin::Float,
                    "str" => Builtin::Str,
                    "sum" => Builtin::Sum,
                    "abs" => Builtin::Abs,
                    other => return Err(bad(other)),
                };
                let mut args = list(2)?;
                if args.len() != 1 {
                    return Err(bad("a builtin with other than one argument"));
                }
                Expr::Call(f, Box::new(args.remove(0)))
            }
            "method" => {
                let m = match name(1)?.as_str() {
                    "split" => Method::Split,
                    "lower" => Method::Lower,
                    "upper" => Method::Upper,
                    "strip" => Method::Strip,
                    other => return Err(bad(other)),
                };
                let mut args = list(3)?;
                if args.len() > 1 {
                    return Err(bad("a method with more than one argument"));
                }
                Expr::Method(m, sub(2)?, args.pop().map(Box::new))
            }
            "or" => Expr::Or(sub(1)?, sub(2)?),
            "and" => Expr::And(sub(1)?, sub(2)?),
            "not" => Expr::Not(sub(1)?),
            other => return Err(bad(other)),
        })
    }

    /// The value of the expression for `args`, as Python computes it, or
    /// [`Defer`].
    pub(crate) fn eval(&self, args: &[Value]) -> Result<Value, Defer> {
        self.eval_ref(args).map(Cow::into_owned)
    }

    /// As [`Expr::eval`] of the one argument `record`, moving it into the
    /// result where the expression only places it (`(w, 1)`, `[k, v]`); on
    /// [`Defer`] the record comes back.
    pub(crate) fn eval_owned(&self, record: Value) -> Result<Value, Value> {
        let places = |items: &[Expr]| {
            items.iter().filter(|e| matches!(e, Expr::Arg(0))).count() == 1
                && items
                    .iter()
                    .all(|e| matches!(e, Expr::Arg(0) | Expr::Const(_)))
        };
        match self {
            Expr::Arg(0) => Ok(record),
            Expr::Tuple(items) | Expr::List(items) if places(items) => {
                let mut record = Some(record);
                let built = items
                    .iter()
                    .map(|e| match e {
                        Expr::Const(c) => c.clone(),
                        _ => record.take().unwrap_or(Value::None),
                    })
                    .collect();
                Ok(match self {
                    Expr::Tuple(_) => Value::Tuple(built),
                    _ => Value::List(built),
                })
            }
            _ => self
                .eval(std::slice::from_ref(&record))
                .map_err(|Defer| record),
        }
    }

    fn eval_ref<'a>(&'a self, args: &'a [Value]) -> Eval<'a> {
        Ok(match self {
            Expr::Arg(i) => Cow::Borrowed(args.get(*i).ok_or(Defer)?),
            Expr::Const(v) => Cow::Borrowed(v),
            Expr::Tuple(items) => Cow::Owned(Value::Tuple(eval_all(items, args)?)),
            Expr::List(items) => Cow::Owned(Value::List(eval_all(items, args)?)),
            Expr::Bin(op, a, b) => {
                Cow::Owned(binary(*op, &*a.eval_ref(args)?, &*b.eval_ref(args)?)?)
            }
            Expr::Cmp(op, a, b) => Cow::Owned(Value::Bool(compare(
                *op,
                &*a.eval_ref(args)?,
                &*b.eval_ref(args)?,
            )?)),
            Expr::Index(a, b) => index(a.eval_ref(args)?, &*b.eval_ref(args)?)?,
            Expr::Call(f, a) => Cow::Owned(builtin(*f, &*a.eval_ref(args)?)?),
            Expr::Method(m, recv, arg) => {
                let recv = recv.eval_ref(args)?;
                let arg = match arg {
                    Some(a) => Some(a.eval_ref(args)?),
                    None => None,
                };
                Cow::Owned(method(*m, &recv, arg.as_deref())?)
            }
            Expr::Or(a, b) => {
                let a = a.eval_ref(args)?;
                if truthy(&a)? {
                    a
                } else {
                    b.eval_ref(args)?
                }
            }
            Expr::And(a, b) => {
                let a = a.eval_ref(args)?;
                if truthy(&a)? {
                    b.eval_ref(args)?
                } else {
                    a
                }
            }
            Expr::Not(a) => Cow::Owned(Value::Bool(!truthy(&*a.eval_ref(args)?)?)),
        })
    }
}

fn eval_all(items: &[Expr], args: &[Value]) -> Result<Vec<Value>, Defer> {
    items.iter().map(|e| e.eval(args)).collect()
}

/// Python's truth value.
pub(crate) fn truthy(v: &Value) -> Result<bool, Defer> {
    Ok(match v {
        Value::None => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::BigInt(_) => true,
        Value::Float(f) => *f != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::Bytes(b) => !b.is_empty(),
        Value::Tuple(items) | Value::List(items) => !items.is_empty(),
        Value::Dict(entries) => !entries.is_empty(),
        Value::Object(_) => return Err(Defer),
    })
}

/// An `int` (a `bool` counts as one), when it fits 64 bits.
fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// A float operand of mixed arithmetic: an int converts (exactly as
/// Python's `float(int)` rounds, for 64-bit ints).
fn as_float(v: &Value) -> Option<f64> {
    match v {
        Value::Float(f) => Some(*f),
        other => as_int(other).map(|i| i as f64),
    }
}

fn binary(op: BinOp, a: &Value, b: &Value) -> Result<Value, Defer> {
    if let (Some(x), Some(y)) = (as_int(a), as_int(b)) {
        let r = match op {
            BinOp::Add => x.checked_add(y),
            BinOp::Sub => x.checked_sub(y),
            BinOp::Mul => x.checked_mul(y),
        };
        return r.map(Value::Int).ok_or(Defer);
    }
    if matches!(a, Value::Float(_)) || matches!(b, Value::Float(_)) {
        let (x, y) = (as_float(a).ok_or(Defer)?, as_float(b).ok_or(Defer)?);
        return Ok(Value::Float(match op {
            BinOp::Add => x + y,
            BinOp::Sub => x - y,
            BinOp::Mul => x * y,
        }));
    }
    match (op, a, b) {
        (BinOp::Add, Value::Str(x), Value::Str(y)) => {
            let mut s = String::with_capacity(x.len() + y.len());
            s.push_str(x);
            s.push_str(y);
            Ok(Value::Str(s))
        }
        (BinOp::Add, Value::Bytes(x), Value::Bytes(y)) => Ok(Value::Bytes([&x[..], y].concat())),
        (BinOp::Add, Value::Tuple(x), Value::Tuple(y)) => Ok(Value::Tuple([&x[..], y].concat())),
        (BinOp::Add, Value::List(x), Value::List(y)) => Ok(Value::List([&x[..], y].concat())),
        _ => Err(Defer),
    }
}

fn ordering_holds(op: CmpOp, ord: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::*;
    match (op, ord) {
        (CmpOp::Ne, None) => true,
        (_, None) => false,
        (CmpOp::Lt, Some(o)) => o == Less,
        (CmpOp::Le, Some(o)) => o != Greater,
        (CmpOp::Eq, Some(o)) => o == Equal,
        (CmpOp::Ne, Some(o)) => o != Equal,
        (CmpOp::Gt, Some(o)) => o == Greater,
        (CmpOp::Ge, Some(o)) => o != Less,
    }
}

/// Largest magnitude below which every int converts to a float exactly.
const EXACT: i64 = 1 << 53;

fn compare(op: CmpOp, a: &Value, b: &Value) -> Result<bool, Defer> {
    let ord = match (a, b) {
        _ if as_int(a).is_some() && as_int(b).is_some() => as_int(a).cmp(&as_int(b)).into(),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Float(x), other) | (other, Value::Float(x)) if as_int(other).is_some() => {
            // Python compares an int and a float exactly; converting is
            // exact only up to 2**53.
            let i = as_int(other).unwrap_or_default();
            if !(-EXACT..=EXACT).contains(&i) {
                return Err(Defer);
            }
            let o = (i as f64).partial_cmp(x);
            if matches!(a, Value::Float(_)) {
                o.map(std::cmp::Ordering::reverse)
            } else {
                o
            }
        }
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Bytes(x), Value::Bytes(y)) => Some(x.cmp(y)),
        (Value::None, Value::None) if matches!(op, CmpOp::Eq | CmpOp::Ne) => {
            Some(std::cmp::Ordering::Equal)
        }
        // Different simple types are never equal, and do not order.
        _ if matches!(op, CmpOp::Eq | CmpOp::Ne) && simple(a) && simple(b) => {
            return Ok(matches!(op, CmpOp::Ne));
        }
        _ => return Err(Defer),
    };
    Ok(ordering_holds(op, ord))
}

/// A value whose equality with a value of another simple type is `False`.
fn simple(v: &Value) -> bool {
    matches!(
        v,
        Value::None
            | Value::Bool(_)
            | Value::Int(_)
            | Value::Float(_)
            | Value::Str(_)
            | Value::Bytes(_)
    )
}

fn position(i: i64, len: usize) -> Result<usize, Defer> {
    let len = i64::try_from(len).map_err(|_| Defer)?;
    let p = if i < 0 { i + len } else { i };
    if (0..len).contains(&p) {
        Ok(p as usize)
    } else {
        Err(Defer)
    }
}

fn index<'a>(a: Cow<'a, Value>, b: &Value) -> Eval<'a> {
    match (a, as_int(b)) {
        (Cow::Borrowed(Value::Tuple(items) | Value::List(items)), Some(i)) => {
            Ok(Cow::Borrowed(&items[position(i, items.len())?]))
        }
        (Cow::Owned(Value::Tuple(mut items) | Value::List(mut items)), Some(i)) => {
            let p = position(i, items.len())?;
            Ok(Cow::Owned(items.swap_remove(p)))
        }
        (a, Some(i)) => match &*a {
            Value::Str(s) if s.is_ascii() => {
                let p = position(i, s.len())?;
                Ok(Cow::Owned(Value::Str(s[p..=p].to_owned())))
            }
            Value::Bytes(bytes) => Ok(Cow::Owned(Value::Int(i64::from(
                bytes[position(i, bytes.len())?],
            )))),
            _ => Err(Defer),
        },
        (a, None) => match (&*a, b) {
            (Value::Dict(entries), Value::Str(_)) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(_)) && k == b)
                .map(|(_, v)| Cow::Owned(v.clone()))
                .ok_or(Defer),
            _ => Err(Defer),
        },
    }
}

/// Python's `str.isspace()` characters.
pub(crate) fn is_py_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// An ASCII decimal integer as `int()` reads it (surrounding whitespace and
/// a sign allowed); anything else (underscores, other digits) defers.
fn parse_int(s: &str) -> Result<Value, Defer> {
    if !s.is_ascii() {
        return Err(Defer);
    }
    let t = s.trim_matches(is_py_space);
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Defer);
    }
    t.parse::<i64>().map(Value::Int).map_err(|_| Defer)
}

/// An ASCII decimal float as `float()` reads it; `inf`, `nan`, underscores
/// and the like defer.
fn parse_float(s: &str) -> Result<Value, Defer> {
    if !s.is_ascii() {
        return Err(Defer);
    }
    let t = s.trim_matches(is_py_space);
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(p) => (&body[..p], Some(&body[p + 1..])),
        None => (body, None),
    };
    let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    let ok_mantissa = (!whole.is_empty() || !frac.is_empty()) && digits(whole) && digits(frac);
    let ok_exponent = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !ok_mantissa || !ok_exponent {
        return Err(Defer);
    }
    t.parse::<f64>().map(Value::Float).map_err(|_| Defer)
}

fn builtin(f: Builtin, v: &Value) -> Result<Value, Defer> {
    match (f, v) {
        (Builtin::Len, Value::Str(s)) => Ok(Value::Int(s.chars().count() as i64)),
        (Builtin::Len, Value::Bytes(b)) => Ok(Value::Int(b.len() as i64)),
        (Builtin::Len, Value::Tuple(items) | Value::List(items)) => {
            Ok(Value::Int(items.len() as i64))
        }
        (Builtin::Len, Value::Dict(entries)) => Ok(Value::Int(entries.len() as i64)),
        (Builtin::Int, Value::Int(i)) => Ok(Value::Int(*i)),
        (Builtin::Int, Value::Bool(b)) => Ok(Value::Int(i64::from(*b))),
        (Builtin::Int, Value::Float(x)) => {
            let t = x.trunc();
            if t.is_finite() && t >= -(2f64.powi(63)) && t < 2f64.powi(63) {
                Ok(Value::Int(t as i64))
            } else {
                Err(Defer)
            }
        }
        (Builtin::Int, Value::Str(s)) => parse_int(s),
        (Builtin::Float, Value::Float(x)) => Ok(Value::Float(*x)),
        (Builtin::Float, Value::Str(s)) => parse_float(s),
        (Builtin::Float, other) => as_int(other).map(|i| Value::Float(i as f64)).ok_or(Defer),
        (Builtin::Str, Value::Str(s)) => Ok(Value::Str(s.clone())),
        (Builtin::Str, Value::None | Value::Bool(_) | Value::Int(_) | Value::Float(_)) => {
            Ok(Value::Str(ember::Show::show(v)))
        }
        (Builtin::Sum, Value::Tuple(items) | Value::List(items)) => {
            // Integers only: 3.12 sums floats with compensation, 3.11 not.
            let mut total: i64 = 0;
            for item in items {
                total = total.checked_add(as_int(item).ok_or(Defer)?).ok_or(Defer)?;
            }
            Ok(Value::Int(total))
        }
        (Builtin::Abs, Value::Float(x)) => Ok(Value::Float(x.abs())),
        (Builtin::Abs, other) => as_int(other)
            .and_then(i64::checked_abs)
            .map(Value::Int)
            .ok_or(Defer),
        _ => Err(Defer),
    }
}

fn method(m: Method, recv: &Value, arg: Option<&Value>) -> Result<Value, Defer> {
    let Value::Str(s) = recv else {
        return Err(Defer);
    };
    let words = |it: &mut dyn Iterator<Item = &str>| {
        Value::List(it.map(|w| Value::Str(w.to_owned())).collect())
    };
    match (m, arg) {
        (Method::Split, None | Some(Value::None)) => {
            Ok(words(&mut s.split(is_py_space).filter(|w| !w.is_empty())))
        }
        (Method::Split, Some(Value::Str(sep))) if !sep.is_empty() => {
            Ok(words(&mut s.split(sep.as_str())))
        }
        (Method::Lower, None) if s.is_ascii() => Ok(Value::Str(s.to_ascii_lowercase())),
        (Method::Upper, None) if s.is_ascii() => Ok(Value::Str(s.to_ascii_uppercase())),
        (Method::Strip, None | Some(Value::None)) => {
            Ok(Value::Str(s.trim_matches(is_py_space).to_owned()))
        }
        (Method::Strip, Some(Value::Str(chars))) => {
            Ok(Value::Str(s.trim_matches(|c| chars.contains(c)).to_owned()))
        }
        _ => Err(Defer),
    }
}

/// The items `for x in value` gives, for the values iterated natively.
pub(crate) fn iterate(value: Value, out: &mut Vec<Value>) -> Result<(), Defer> {
    match value {
        Value::List(items) | Value::Tuple(items) => out.extend(items),
        Value::Str(s) => out.extend(s.chars().map(|c| Value::Str(c.to_string()))),
        Value::Bytes(b) => out.extend(b.into_iter().map(|x| Value::Int(i64::from(x)))),
        Value::Dict(entries) => out.extend(entries.into_iter().map(|(k, _)| k)),
        _ => return Err(Defer),
    }
    Ok(())
}

/// Equal as the tests of the differential mode need it: the same types and
/// the same values all the way down (`1 == 1.0 == True` would hide a wrong
/// type), NaN equal to NaN.
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::None, Value::None) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::BigInt(x), Value::BigInt(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => {
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
        }
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Bytes(x), Value::Bytes(y)) => x == y,
        (Value::Tuple(x), Value::Tuple(y)) | (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Dict(x), Value::Dict(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k, v), (k2, v2))| same(k, k2) && same(v, v2))
        }
        (Value::Object(_), Value::Object(_)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }
    fn arg() -> Box<Expr> {
        Box::new(Expr::Arg(0))
    }
    fn c(v: Value) -> Box<Expr> {
        Box::new(Expr::Const(v))
    }

    #[test]
    fn split_with_and_without_a_separator_is_pythons() {
        let by_space = Expr::Method(Method::Split, arg(), Some(c(s(" "))));
        let words = by_space.eval(&[s(" a  b ")]).unwrap();
        // " a  b ".split(" ") == ['', 'a', '', 'b', '']
        assert!(same(
            &words,
            &Value::List(vec![s(""), s("a"), s(""), s("b"), s("")])
        ));
        let any = Expr::Method(Method::Split, arg(), None);
        // '\x1c' is whitespace to Python, not to Rust's char::is_whitespace.
        let words = any.eval(&[s("a\u{1c}b\u{3000} c\u{200b}d")]).unwrap();
        assert!(same(
            &words,
            &Value::List(vec![s("a"), s("b"), s("c\u{200b}d")])
        ));
        assert_eq!(
            Expr::Method(Method::Split, arg(), Some(c(s("")))).eval(&[s("x")]),
            Err(Defer)
        );
        assert_eq!(any.eval(&[Value::Bytes(b"a b".to_vec())]), Err(Defer));
    }

    #[test]
    fn int_arithmetic_defers_where_python_would_grow_a_big_int() {
        let add = Expr::Bin(BinOp::Add, arg(), Box::new(Expr::Arg(1)));
        assert!(same(
            &add.eval(&[Value::Int(2), Value::Bool(true)]).unwrap(),
            &Value::Int(3)
        ));
        assert!(same(
            &add.eval(&[Value::Int(1), Value::Float(0.5)]).unwrap(),
            &Value::Float(1.5)
        ));
        assert_eq!(add.eval(&[Value::Int(i64::MAX), Value::Int(1)]), Err(Defer));
        assert_eq!(add.eval(&[s("a"), Value::Int(1)]), Err(Defer));
        assert!(same(&add.eval(&[s("a"), s("b")]).unwrap(), &s("ab")));
    }

    #[test]
    fn comparisons_of_ints_and_floats_are_exact_or_deferred() {
        let gt = Expr::Cmp(CmpOp::Gt, arg(), Box::new(Expr::Arg(1)));
        assert!(same(
            &gt.eval(&[Value::Int(3), Value::Float(2.5)]).unwrap(),
            &Value::Bool(true)
        ));
        assert!(same(
            &gt.eval(&[Value::Float(2.5), Value::Int(3)]).unwrap(),
            &Value::Bool(false)
        ));
        assert_eq!(
            gt.eval(&[Value::Int((1 << 53) + 1), Value::Float(1.0)]),
            Err(Defer)
        );
        assert_eq!(gt.eval(&[s("a"), Value::Int(1)]), Err(Defer));
        let eq = Expr::Cmp(CmpOp::Eq, arg(), Box::new(Expr::Arg(1)));
        assert!(same(
            &eq.eval(&[s("1"), Value::Int(1)]).unwrap(),
            &Value::Bool(false)
        ));
        let ne = Expr::Cmp(CmpOp::Ne, arg(), Box::new(Expr::Arg(1)));
        assert!(same(
            &ne.eval(&[Value::Float(f64::NAN), Value::Float(f64::NAN)])
                .unwrap(),
            &Value::Bool(true)
        ));
    }

    #[test]
    fn conversions_take_only_what_they_read_exactly() {
        let int = Expr::Call(Builtin::Int, arg());
        assert!(same(&int.eval(&[s(" -12\n")]).unwrap(), &Value::Int(-12)));
        assert_eq!(int.eval(&[s("1_000")]), Err(Defer));
        assert_eq!(int.eval(&[s("1.5")]), Err(Defer));
        assert!(same(
            &int.eval(&[Value::Float(-2.7)]).unwrap(),
            &Value::Int(-2)
        ));
        let float = Expr::Call(Builtin::Float, arg());
        assert!(same(
            &float.eval(&[s("1e3")]).unwrap(),
            &Value::Float(1000.0)
        ));
        assert!(same(&float.eval(&[s(".5")]).unwrap(), &Value::Float(0.5)));
        assert_eq!(float.eval(&[s("inf")]), Err(Defer));
        assert_eq!(float.eval(&[s(".")]), Err(Defer));
        let text = Expr::Call(Builtin::Str, arg());
        assert!(same(
            &text.eval(&[Value::Float(1e16)]).unwrap(),
            &s("1e+16")
        ));
        assert!(same(&text.eval(&[Value::Bool(true)]).unwrap(), &s("True")));
        let total = Expr::Call(Builtin::Sum, arg());
        assert_eq!(
            total.eval(&[Value::List(vec![Value::Float(0.1)])]),
            Err(Defer)
        );
    }

    #[test]
    fn or_gives_an_operand_and_index_counts_from_the_end() {
        // sum(new) + (last or 0)
        let update = Expr::Bin(
            BinOp::Add,
            Box::new(Expr::Call(Builtin::Sum, arg())),
            Box::new(Expr::Or(Box::new(Expr::Arg(1)), c(Value::Int(0)))),
        );
        let values = Value::List(vec![Value::Int(1), Value::Int(2)]);
        assert!(same(
            &update.eval(&[values.clone(), Value::None]).unwrap(),
            &Value::Int(3)
        ));
        assert!(same(
            &update.eval(&[values, Value::Int(4)]).unwrap(),
            &Value::Int(7)
        ));
        let last = Expr::Index(arg(), c(Value::Int(-1)));
        let pair = Value::Tuple(vec![s("k"), Value::Int(5)]);
        assert!(same(
            &last.eval(std::slice::from_ref(&pair)).unwrap(),
            &Value::Int(5)
        ));
        let past = Expr::Index(arg(), c(Value::Int(2)));
        assert_eq!(past.eval(&[pair]), Err(Defer));
    }
}
