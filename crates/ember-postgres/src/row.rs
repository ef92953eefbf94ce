//! Records as table rows: [`ToRow`], [`SqlValue`], [`Row`] and the [`Sql`] wrapper.
//!
//! The sink asks each record for its column values ([`ToRow::to_row`]) and
//! sends them without copying strings: a value borrows from its record.
//! Integers are the exception: rust-postgres binds an `i64` only to a
//! `BIGINT` column and has no mapping for `u64` at all, so ember writes every
//! Rust integer (`i8` to `i64`, `u8` to `u64`, `usize`) to whichever of
//! `SMALLINT`, `INTEGER`, `BIGINT` or `NUMERIC` the column is, checking the
//! range: a word count `(String, u64)` goes into a `BIGINT` column as is, and
//! a count too large for the column fails the batch with the value and the
//! column named, never wrapped around.

use std::error::Error as StdError;
use std::fmt;

use bytes::BytesMut;
use postgres::types::{to_sql_checked, IsNull, Kind, ToSql, Type};

type BoxError = Box<dyn StdError + Sync + Send>;

/// A record the PostgreSQL sink can write: its values, one per column of the
/// sink, in the sink's column order.
///
/// Implemented for tuples of 1 to 4 [`SqlValue`]s, so `(String, u64)` or
/// `(i64, String, Option<f64>)` records need nothing more. For a struct,
/// push its fields:
///
/// ```
/// use ember_postgres::{Row, ToRow};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Click {
///     user: String,
///     page: String,
///     at_ms: u64,
/// }
///
/// impl ToRow for Click {
///     fn to_row<'a>(&'a self, row: &mut Row<'a>) {
///         row.push(&self.user);
///         row.push(&self.page);
///         row.push(&self.at_ms);
///     }
/// }
/// ```
pub trait ToRow {
    /// Pushes this record's values onto `row`, one per column (see the
    /// example above).
    fn to_row<'a>(&'a self, row: &mut Row<'a>);
}

/// One column value of a record (see [`ToRow`]).
///
/// Implemented for `bool`, all integer types, `f32`, `f64`, `String`,
/// `Vec<u8>` (`BYTEA`), `Vec`s of `bool`, `i16`, `i32`, `i64`, `f32`, `f64`
/// and `String` (arrays), `SystemTime`, `IpAddr`, `Option`s of these
/// (`None` is `NULL`), and [`Sql<T>`] for any other rust-postgres
/// [`ToSql`] type. Integers go into any integer or `NUMERIC` column whose
/// range holds them; the other types follow rust-postgres' mapping (e.g.
/// `f64` is `DOUBLE PRECISION`, `String` is `TEXT` or `VARCHAR`).
///
/// Your own value type can be one by pushing what it stands for:
///
/// ```
/// use ember_postgres::{Row, SqlValue, ToRow};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Cents(u64);
///
/// impl SqlValue for Cents {
///     fn push_to<'a>(&'a self, row: &mut Row<'a>) {
///         row.push(&self.0);
///     }
/// }
///
/// fn is_row<T: ToRow>(_: &T) {}
/// is_row(&("coffee".to_string(), Cents(350)));
/// ```
pub trait SqlValue {
    /// Pushes this value onto `row`: with [`Row::push_sql`] for a
    /// rust-postgres type, or through another `SqlValue` (see the example
    /// above).
    fn push_to<'a>(&'a self, row: &mut Row<'a>);
}

/// The values of the records of one batch, as the sink sends them: each
/// record pushes one value per column (see [`ToRow`]).
///
/// ```
/// use ember_postgres::{Row, ToRow};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Reading {
///     sensor: String,
///     celsius: Option<f64>,
///     at: std::time::SystemTime,
/// }
///
/// impl ToRow for Reading {
///     fn to_row<'a>(&'a self, row: &mut Row<'a>) {
///         row.push(&self.sensor); // a SqlValue
///         match &self.celsius {
///             Some(c) => row.push_sql(c), // any rust-postgres ToSql type
///             None => row.push_null(),
///         }
///         row.push(&self.at);
///     }
/// }
/// ```
#[derive(Debug, Default)]
pub struct Row<'a> {
    pub(crate) values: Vec<Value<'a>>,
}

impl<'a> Row<'a> {
    /// Pushes one column value (see the example on [`Row`]).
    pub fn push<V: SqlValue + ?Sized>(&mut self, value: &'a V) {
        value.push_to(self);
    }

    /// Pushes a value of any rust-postgres [`ToSql`] type, converted by
    /// rust-postgres' own rules (the column's type must accept it); see the
    /// example on [`Row`].
    pub fn push_sql<V: ToSql + Sync>(&mut self, value: &'a V) {
        self.values.push(Value::Sql(value));
    }

    /// Pushes `NULL` (see the example on [`Row`]).
    pub fn push_null(&mut self) {
        self.values.push(Value::Null);
    }

    fn push_int(&mut self, v: i128) {
        self.values.push(Value::Int(v));
    }
}

/// A value of any rust-postgres [`ToSql`] type as a [`SqlValue`], for
/// record types the list on [`SqlValue`] does not cover (a `chrono` date,
/// a `serde_json::Value` with rust-postgres' features, your own enum).
///
/// ```
/// use ember_postgres::{Sql, ToRow};
///
/// fn is_row<T: ToRow>(_: &T) {}
/// // `i8` is rust-postgres' `"char"`; wrapped, it is written as that.
/// is_row(&(Sql(7i8), "seven".to_string()));
/// ```
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Sql<T>(pub T);

impl<T: ToSql + Sync> SqlValue for Sql<T> {
    fn push_to<'a>(&'a self, row: &mut Row<'a>) {
        row.push_sql(&self.0);
    }
}

impl<T: SqlValue> SqlValue for Option<T> {
    fn push_to<'a>(&'a self, row: &mut Row<'a>) {
        match self {
            Some(v) => v.push_to(row),
            None => row.push_null(),
        }
    }
}

impl<T: SqlValue + ?Sized> SqlValue for &T {
    fn push_to<'a>(&'a self, row: &mut Row<'a>) {
        (**self).push_to(row);
    }
}

impl<T: SqlValue + ?Sized> SqlValue for Box<T> {
    fn push_to<'a>(&'a self, row: &mut Row<'a>) {
        (**self).push_to(row);
    }
}

macro_rules! sql_values {
    ($($t:ty),*) => {$(
        impl SqlValue for $t {
            fn push_to<'a>(&'a self, row: &mut Row<'a>) {
                row.push_sql(self);
            }
        }
    )*};
}

sql_values!(
    bool,
    f32,
    f64,
    String,
    Vec<u8>,
    Vec<bool>,
    Vec<i16>,
    Vec<i32>,
    Vec<i64>,
    Vec<f32>,
    Vec<f64>,
    Vec<String>,
    std::time::SystemTime,
    std::net::IpAddr
);

macro_rules! int_values {
    ($($t:ty),*) => {$(
        impl SqlValue for $t {
            fn push_to<'a>(&'a self, row: &mut Row<'a>) {
                row.push_int(*self as i128);
            }
        }
    )*};
}

int_values!(i8, i16, i32, i64, u8, u16, u32, u64, usize, isize);

macro_rules! tuple_rows {
    ($($name:ident),+) => {
        impl<$($name: SqlValue),+> ToRow for ($($name,)+) {
            #[allow(non_snake_case)]
            fn to_row<'a>(&'a self, row: &mut Row<'a>) {
                let ($($name,)+) = self;
                $(row.push($name);)+
            }
        }
    };
}

tuple_rows!(A);
tuple_rows!(A, B);
tuple_rows!(A, B, C);
tuple_rows!(A, B, C, D);

/// One value as sent: borrowed from its record, or an integer written to
/// whichever integer type the column has.
#[derive(Debug)]
pub(crate) enum Value<'a> {
    Sql(&'a (dyn ToSql + Sync)),
    Int(i128),
    Null,
}

impl ToSql for Value<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            // Checked: the column's type must accept the value's.
            Value::Sql(v) => v.to_sql_checked(ty, out),
            Value::Int(v) => int_to_sql(*v, ty, out),
            Value::Null => Ok(IsNull::Yes),
        }
    }

    /// Any type: each variant checks its own in `to_sql`.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Writes an integer as the column's integer type, if it fits.
fn int_to_sql(v: i128, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    let too_big = || -> BoxError { format!("{v} is out of range for {}", sql_name(ty)).into() };
    match *ty {
        Type::INT2 => i16::try_from(v).map_err(|_| too_big())?.to_sql(ty, out),
        Type::INT4 => i32::try_from(v).map_err(|_| too_big())?.to_sql(ty, out),
        Type::INT8 => i64::try_from(v).map_err(|_| too_big())?.to_sql(ty, out),
        Type::NUMERIC => {
            numeric_to_sql(v, out);
            Ok(IsNull::No)
        }
        _ => match ty.kind() {
            Kind::Domain(inner) => int_to_sql(v, inner, out),
            _ => Err(format!(
                "an integer cannot be written to a column of type {}: use an integer or \
                 NUMERIC column, or convert the value in the stream",
                sql_name(ty)
            )
            .into()),
        },
    }
}

/// A type as SQL writes it (`bigint`, not rust-postgres' `int8`).
pub(crate) fn sql_name(ty: &Type) -> &str {
    match *ty {
        Type::INT2 => "smallint",
        Type::INT4 => "integer",
        Type::INT8 => "bigint",
        Type::FLOAT4 => "real",
        Type::FLOAT8 => "double precision",
        Type::BOOL => "boolean",
        Type::VARCHAR => "varchar",
        Type::BPCHAR => "char",
        Type::TIMESTAMPTZ => "timestamptz",
        _ => ty.name(),
    }
}

/// PostgreSQL's binary NUMERIC: base-10000 digits, most significant first.
fn numeric_to_sql(v: i128, out: &mut BytesMut) {
    let mut digits = Vec::new();
    let mut n = v.unsigned_abs();
    while n > 0 {
        digits.push((n % 10_000) as i16);
        n /= 10_000;
    }
    digits.reverse();
    let sign: u16 = if v < 0 { 0x4000 } else { 0 };
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    // The weight: the power of 10000 of the first digit.
    out.extend_from_slice(&(digits.len() as i16 - 1).max(0).to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
}

/// One column of a chunk of rows as a one-dimensional array parameter (for
/// `unnest`): the values at `column`, `column + width`, ... of `values`.
pub(crate) struct ColumnArray<'v, 'a> {
    pub(crate) values: &'v [Value<'a>],
    pub(crate) column: usize,
    pub(crate) width: usize,
    pub(crate) name: &'v str,
    /// The batch's index of the chunk's first row, for messages.
    pub(crate) first_row: usize,
}

impl fmt::Debug for ColumnArray<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ColumnArray")
            .field("column", &self.name)
            .field("rows", &(self.values.len() / self.width.max(1)))
            .finish()
    }
}

impl ToSql for ColumnArray<'_, '_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let Kind::Array(member) = ty.kind() else {
            return Err(format!(
                "column `{}`: expected an array parameter, got {ty}",
                self.name
            )
            .into());
        };
        let rows = self.values.len() / self.width;
        let len = i32::try_from(rows).map_err(|_| "too many rows for one statement")?;
        out.extend_from_slice(&1i32.to_be_bytes()); // dimensions
        let has_nulls_at = out.len();
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&member.oid().to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes()); // lower bound
        let mut has_nulls = false;
        for (i, v) in self
            .values
            .iter()
            .skip(self.column)
            .step_by(self.width)
            .enumerate()
        {
            let at = out.len();
            out.extend_from_slice(&0i32.to_be_bytes());
            let written = v.to_sql(member, out).map_err(|e| -> BoxError {
                let row = self.first_row + i;
                let ty = sql_name(member);
                format!(
                    "column `{}` ({ty}), record {row} of the batch: {e}",
                    self.name
                )
                .into()
            })?;
            let size = match written {
                IsNull::Yes => {
                    has_nulls = true;
                    out.truncate(at + 4);
                    -1
                }
                IsNull::No => i32::try_from(out.len() - at - 4)
                    .map_err(|_| format!("column `{}`: a value over 2 GiB", self.name))?,
            };
            out[at..at + 4].copy_from_slice(&size.to_be_bytes());
        }
        if has_nulls {
            out[has_nulls_at..has_nulls_at + 4].copy_from_slice(&1i32.to_be_bytes());
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Array(_))
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a, T: ToRow>(records: &'a [T]) -> Vec<Value<'a>> {
        let mut row = Row::default();
        for r in records {
            r.to_row(&mut row);
        }
        row.values
    }

    fn encode(v: &Value<'_>, ty: &Type) -> Result<Vec<u8>, String> {
        let mut out = BytesMut::new();
        v.to_sql_checked(ty, &mut out)
            .map(|_| out.to_vec())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn tuples_push_one_value_per_member() {
        let records = vec![("a".to_string(), 1u64), ("b".to_string(), 2u64)];
        assert_eq!(values(&records).len(), 4);
        let wide = vec![(1i32, Some(2.5f64), None::<String>, true)];
        let v = values(&wide);
        assert_eq!(v.len(), 4);
        assert!(matches!(v[2], Value::Null));
    }

    #[test]
    fn integers_take_the_columns_width_and_check_the_range() {
        let v = Value::Int(7);
        assert_eq!(encode(&v, &Type::INT2).unwrap(), 7i16.to_be_bytes());
        assert_eq!(encode(&v, &Type::INT4).unwrap(), 7i32.to_be_bytes());
        assert_eq!(encode(&v, &Type::INT8).unwrap(), 7i64.to_be_bytes());
        let big = Value::Int(u64::MAX as i128);
        let e = encode(&big, &Type::INT8).unwrap_err();
        assert!(
            e.contains("18446744073709551615 is out of range for bigint"),
            "{e}"
        );
        assert!(encode(&Value::Int(40_000), &Type::INT2).is_err());
        let e = encode(&v, &Type::TEXT).unwrap_err();
        assert!(
            e.contains("cannot be written to a column of type text:"),
            "{e}"
        );
    }

    #[test]
    fn numeric_digits_are_base_10000() {
        let mut out = BytesMut::new();
        numeric_to_sql(123_456_789, &mut out);
        // 3 digits, weight 2, positive, scale 0: 1 2345 6789.
        let want: Vec<u8> = [3i16, 2, 0, 0, 1, 2345, 6789]
            .iter()
            .flat_map(|d| d.to_be_bytes())
            .collect();
        assert_eq!(out.to_vec(), want);
        let mut zero = BytesMut::new();
        numeric_to_sql(0, &mut zero);
        assert_eq!(zero.to_vec(), [0u8; 8]);
        let mut neg = BytesMut::new();
        numeric_to_sql(-5, &mut neg);
        assert_eq!(&neg[4..6], &0x4000u16.to_be_bytes());
    }

    #[test]
    fn a_column_array_has_nulls_marked_and_values_framed() {
        let records = vec![(1i64, Some("x".to_string())), (2, None)];
        let v = values(&records);
        let col = ColumnArray {
            values: &v,
            column: 1,
            width: 2,
            name: "s",
            first_row: 0,
        };
        let mut out = BytesMut::new();
        col.to_sql_checked(&Type::TEXT_ARRAY, &mut out).unwrap();
        let mut want = Vec::new();
        for x in [1i32, 1] {
            want.extend_from_slice(&x.to_be_bytes());
        }
        want.extend_from_slice(&Type::TEXT.oid().to_be_bytes());
        for x in [2i32, 1, 1] {
            want.extend_from_slice(&x.to_be_bytes());
        }
        want.push(b'x');
        want.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(out.to_vec(), want);
    }
}
