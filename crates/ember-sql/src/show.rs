//! Spark's `Dataset.show()` text for Arrow record batches: the same
//! borders, padding, truncation, value spelling (`NULL`, `1.0E7`, `[01 AB]`,
//! `{a -> 1}`) and footer, so that a ported program prints what Spark
//! printed.

use std::fmt::Write as _;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, Float16Type, Float32Type, Float64Type, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use datafusion::arrow::temporal_conversions::{as_date, as_datetime};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// The text Spark's `show(n, truncate, vertical)` prints for these rows,
/// ending in a newline (Spark's `println` adds one more, as
/// [`Frame::show`](crate::Frame::show) does).
///
/// `truncate` is Spark's: `0` shows whole cells, left-aligned; `t > 0`
/// cuts longer cells to `t` characters (the last three replaced by `...`
/// when `t >= 4`) and right-aligns them. `names` are the column names.
pub fn show_string(
    names: &[String],
    batches: &[RecordBatch],
    n: usize,
    truncate: usize,
    vertical: bool,
) -> String {
    let cut = |s: String| -> String {
        if truncate == 0 || utf16_len(&s) <= truncate {
            s
        } else if truncate < 4 {
            take_utf16(&s, truncate)
        } else {
            take_utf16(&s, truncate - 3) + "..."
        }
    };
    // n + 1 rows tell whether there was more than was shown.
    let mut rows: Vec<Vec<String>> = Vec::new();
    'outer: for batch in batches {
        for row in 0..batch.num_rows() {
            if rows.len() > n {
                break 'outer;
            }
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|column| cut(escape(&cell(column, row))))
                    .collect(),
            );
        }
    }
    let more = rows.len() > n;
    rows.truncate(n);
    let header: Vec<String> = names.iter().map(|name| escape(name)).collect();
    let mut out = String::new();
    if vertical {
        vertical_table(&header, &rows, &mut out);
    } else {
        table(&header, &rows, truncate > 0, &mut out);
    }
    if more {
        let noun = if n == 1 { "row" } else { "rows" };
        let _ = writeln!(out, "only showing top {n} {noun}");
    }
    out
}

/// The bordered table: every column as wide as its widest cell (3 at
/// least), cells right-aligned when truncating and left-aligned otherwise.
fn table(header: &[String], rows: &[Vec<String>], right: bool, out: &mut String) {
    let mut widths = vec![3; header.len()];
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(half_width(cell));
        }
    }
    let mut border = String::from("+");
    for width in &widths {
        border.push_str(&"-".repeat(*width));
        border.push('+');
    }
    border.push('\n');
    let line = |row: &[String], out: &mut String| {
        out.push('|');
        for (cell, width) in row.iter().zip(&widths) {
            let pad = " ".repeat(width - half_width(cell));
            if right {
                out.push_str(&pad);
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&pad);
            }
            out.push('|');
        }
        out.push('\n');
    };
    out.push_str(&border);
    line(header, out);
    out.push_str(&border);
    for row in rows {
        line(row, out);
    }
    out.push_str(&border);
}

/// Spark's vertical layout: one `-RECORD i---` block per row, `name | value`
/// lines padded to the widest name and value; `(0 rows)` when empty.
fn vertical_table(header: &[String], rows: &[Vec<String>], out: &mut String) {
    if rows.is_empty() {
        out.push_str("(0 rows)\n");
        return;
    }
    let name_width = header.iter().map(|h| half_width(h)).fold(3, usize::max);
    let value_width = rows
        .iter()
        .flatten()
        .map(|c| half_width(c))
        .fold(3, usize::max);
    for (i, row) in rows.iter().enumerate() {
        let title = format!("-RECORD {i}");
        let dashes = (name_width + value_width + 5).saturating_sub(title.len());
        let _ = writeln!(out, "{title}{}", "-".repeat(dashes));
        for (name, value) in header.iter().zip(row) {
            let _ = writeln!(
                out,
                " {name}{} | {value}{} ",
                " ".repeat(name_width - half_width(name)),
                " ".repeat(value_width - half_width(value)),
            );
        }
    }
}

/// Length in UTF-16 code units, as Java's `String.length`.
fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// The longest prefix of `s` of at most `units` UTF-16 code units.
fn take_utf16(s: &str, units: usize) -> String {
    let mut used = 0;
    s.chars()
        .take_while(|c| {
            used += c.len_utf16();
            used <= units
        })
        .collect()
}

/// The columns a cell takes on a terminal as Spark counts them: its UTF-16
/// length plus one for each East Asian full-width character.
fn half_width(s: &str) -> usize {
    let wide = |c: char| {
        matches!(c as u32,
            0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
            | 0xFE10..=0xFE19 | 0xFE30..=0xFE6F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6)
    };
    utf16_len(s) + s.chars().filter(|c| wide(*c)).count()
}

/// Control characters written as their escapes, as Spark shows them.
fn escape(s: &str) -> String {
    if !s.chars().any(|c| "\n\t\r\u{8}\u{b}\u{c}\u{7}".contains(c)) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\u{7}' => out.push_str("\\a"),
            c => out.push(c),
        }
    }
    out
}

/// One value as Spark spells it when it casts it to a string for `show()`.
pub(crate) fn cell(column: &ArrayRef, row: usize) -> String {
    let mut out = String::new();
    write_value(column.as_ref(), row, &mut out);
    out
}

fn write_value(array: &dyn Array, row: usize, out: &mut String) {
    if array.is_null(row) {
        out.push_str("NULL");
        return;
    }
    match array.data_type() {
        DataType::Float64 => out.push_str(&java_double(
            array.as_primitive::<Float64Type>().value(row),
            false,
        )),
        DataType::Float32 => out.push_str(&java_double(
            f64::from(array.as_primitive::<Float32Type>().value(row)),
            true,
        )),
        DataType::Float16 => out.push_str(&java_double(
            f64::from(array.as_primitive::<Float16Type>().value(row)),
            true,
        )),
        DataType::Binary => hex(array.as_binary::<i32>().value(row), out),
        DataType::LargeBinary => hex(array.as_binary::<i64>().value(row), out),
        DataType::BinaryView => hex(array.as_binary_view().value(row), out),
        DataType::FixedSizeBinary(_) => hex(array.as_fixed_size_binary().value(row), out),
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            match as_date::<Date32Type>(i64::from(days)) {
                Some(date) => {
                    let _ = write!(out, "{}", date.format("%Y-%m-%d"));
                }
                None => fallback(array, row, out),
            }
        }
        DataType::Date64 => {
            let ms = array.as_primitive::<Date64Type>().value(row);
            match as_date::<Date64Type>(ms) {
                Some(date) => {
                    let _ = write!(out, "{}", date.format("%Y-%m-%d"));
                }
                None => fallback(array, row, out),
            }
        }
        DataType::Timestamp(unit, _) => {
            let time = match unit {
                TimeUnit::Second => as_datetime::<TimestampSecondType>(
                    array.as_primitive::<TimestampSecondType>().value(row),
                ),
                TimeUnit::Millisecond => as_datetime::<TimestampMillisecondType>(
                    array.as_primitive::<TimestampMillisecondType>().value(row),
                ),
                TimeUnit::Microsecond => as_datetime::<TimestampMicrosecondType>(
                    array.as_primitive::<TimestampMicrosecondType>().value(row),
                ),
                TimeUnit::Nanosecond => as_datetime::<TimestampNanosecondType>(
                    array.as_primitive::<TimestampNanosecondType>().value(row),
                ),
            };
            match time {
                Some(time) => {
                    let _ = write!(out, "{}", time.format("%Y-%m-%d %H:%M:%S"));
                    let nanos = time.and_utc().timestamp_subsec_nanos();
                    if nanos > 0 {
                        let fraction = format!("{nanos:09}");
                        let _ = write!(out, ".{}", fraction.trim_end_matches('0'));
                    }
                }
                None => fallback(array, row, out),
            }
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            let items = match array.data_type() {
                DataType::List(_) => array.as_list::<i32>().value(row),
                DataType::LargeList(_) => array.as_list::<i64>().value(row),
                _ => array.as_fixed_size_list().value(row),
            };
            out.push('[');
            for i in 0..items.len() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(items.as_ref(), i, out);
            }
            out.push(']');
        }
        DataType::Map(..) => {
            let entries = array.as_map().value(row);
            out.push('{');
            for i in 0..entries.len() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(entries.column(0).as_ref(), i, out);
                out.push_str(" -> ");
                write_value(entries.column(1).as_ref(), i, out);
            }
            out.push('}');
        }
        DataType::Struct(_) => {
            let fields = array.as_struct();
            out.push('{');
            for (i, column) in fields.columns().iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(column.as_ref(), row, out);
            }
            out.push('}');
        }
        _ => fallback(array, row, out),
    }
}

/// Arrow's own spelling, for the types Spark writes the same way
/// (integers, booleans, strings, decimals).
fn fallback(array: &dyn Array, row: usize, out: &mut String) {
    let options = FormatOptions::new().with_null("NULL");
    match ArrayFormatter::try_new(array, &options) {
        Ok(formatter) => {
            let _ = write!(out, "{}", formatter.value(row));
        }
        Err(_) => out.push('?'),
    }
}

/// Binary as Spark shows it: `[01 AB]`.
fn hex(bytes: &[u8], out: &mut String) {
    out.push('[');
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{byte:02X}");
    }
    out.push(']');
}

/// A double as Java's `Double.toString` writes it (a float's as
/// `Float.toString` when `single`): the shortest digits that read back,
/// plain between 10⁻³ and 10⁷, `d.dddE±n` outside, `NaN`, `Infinity`.
pub(crate) fn java_double(x: f64, single: bool) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-tripping digits.
    let sci = if single {
        format!("{:e}", x as f32)
    } else {
        format!("{x:e}")
    };
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    let magnitude = x.abs();
    if (1e-3..1e7).contains(&magnitude) {
        if exponent >= 0 {
            let point = exponent as usize + 1;
            let digits = format!("{digits:0<point$}");
            let (whole, fraction) = digits.split_at(point);
            let fraction = if fraction.is_empty() { "0" } else { fraction };
            format!("{sign}{whole}.{fraction}")
        } else {
            let zeros = "0".repeat((-exponent - 1) as usize);
            format!("{sign}0.{zeros}{digits}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        format!("{sign}{first}.{rest}E{exponent}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_are_spelled_as_java_does() {
        let cases = [
            (0.1, "0.1"),
            (1.0, "1.0"),
            (1e7, "1.0E7"),
            (9999999.0, "9999999.0"),
            (1e-3, "0.001"),
            (9.99e-4, "9.99E-4"),
            (1.5e10, "1.5E10"),
            (123456.789, "123456.789"),
            (1e21, "1.0E21"),
            (2.5e-10, "2.5E-10"),
            (100.0, "100.0"),
            (-12.5, "-12.5"),
            (1.0 / 3.0, "0.3333333333333333"),
            (-0.0, "-0.0"),
        ];
        for (x, want) in cases {
            assert_eq!(java_double(x, false), want, "{x}");
        }
        assert_eq!(java_double(f64::from(0.1f32), true), "0.1");
        assert_eq!(java_double(1e10, true), "1.0E10");
    }

    #[test]
    fn widths_count_utf16_and_full_width_characters() {
        assert_eq!(half_width("abc"), 3);
        assert_eq!(half_width("日本語"), 6);
        // One character outside the basic plane is two UTF-16 units.
        assert_eq!(half_width("😀"), 2);
        assert_eq!(take_utf16("ab😀c", 3), "ab");
        assert_eq!(escape("a\tb\nc"), "a\\tb\\nc");
    }
}
