//! How records look when printed: Spark's `toString`, not Rust's `Debug`.
//!
//! `print()` and `save_as_text_files` write each record as Spark would: a
//! string bare (`hello`), a pair as `(hello,1)`, an option as `Some(3)` or
//! `None`, a double as `1.0`, and a grouped value list as
//! `CompactBuffer(1, 2)` (what Spark's `groupByKey` and `cogroup` print).
//! Your own record types get Spark's case-class form from
//! `#[derive(Show)]` (`LogLine(2026-12-03,ERROR,api)`), or implement
//! [`Show`] by hand to choose their text.

use std::fmt::{self, Write};

/// A record's text in ember's outputs, matching Spark's `toString`.
///
/// # Examples
///
/// ```
/// use ember_core::Show;
/// assert_eq!(("hello".to_string(), 1u64).show(), "(hello,1)");
/// assert_eq!((Some(2.0f64), None::<i32>).show(), "(Some(2.0),None)");
/// assert_eq!(vec![1, 2].show(), "CompactBuffer(1, 2)");
/// ```
///
/// # Deriving
///
/// `#[derive(Show)]` writes what Scala's `toString` gives a case class: the
/// type's name, then each field's own text in declaration order, joined by
/// commas without spaces, in parentheses. A unit struct prints its bare
/// name (a Scala case object); an enum prints only its variant, in the same
/// form (a case class or object of a sealed trait). Type parameters get a
/// `Show` bound.
///
/// ```
/// # extern crate ember_core as ember; // what `ember` users have already
/// use ember::Show;
///
/// #[derive(Show)]
/// struct LogLine {
///     day: String,
///     level: Level,
///     service: String,
///     latency_ms: f64,
///     retries: Option<u32>,
/// }
///
/// #[derive(Show)]
/// enum Level {
///     Error,
///     Warn { code: u16 },
/// }
///
/// let line = LogLine {
///     day: "2026-12-03".into(),
///     level: Level::Error,
///     service: "api".into(),
///     latency_ms: 12.0,
///     retries: Some(3),
/// };
/// assert_eq!(line.show(), "LogLine(2026-12-03,Error,api,12.0,Some(3))");
/// assert_eq!(Level::Warn { code: 7 }.show(), "Warn(7)");
/// ```
///
/// The derive's impl names the trait as `::ember::Show`. A crate that
/// depends on `ember-core` without the `ember` facade, or renames `ember`,
/// names the path with `#[show(crate = "ember_core")]` on the type.
#[doc(alias = "toString")]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be printed by `print()`: it does not implement `ember::Show`",
    label = "no `Show` implementation",
    note = "add `#[derive(Show)]` to the type (Spark's case-class form, `Name(a,b)`), implement `ember::Show` by hand (`fn fmt_show(&self, out: &mut String)`), or wrap a `Display` type in `ember::ShowDisplay`"
)]
pub trait Show {
    /// Writes the record's text.
    fn fmt_show(&self, out: &mut String);

    /// The record's text as a new string.
    fn show(&self) -> String {
        let mut s = String::new();
        self.fmt_show(&mut s);
        s
    }
}

macro_rules! show_with_display {
    ($($t:ty),*) => {$(
        impl Show for $t {
            fn fmt_show(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}

show_with_display!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, bool, char, str, String
);

impl Show for () {
    fn fmt_show(&self, out: &mut String) {
        out.push_str("()");
    }
}

/// Scala's `Double.toString`: `1.0`, `0.5`, `1.0E7`, `1.0E-4`, `NaN`, `Infinity`.
fn show_float(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "Infinity" } else { "-Infinity" });
    } else if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0.0" } else { "0.0" });
    } else if (1e-3..1e7).contains(&v.abs()) {
        // Rust's Debug gives the shortest round-trip digits and keeps `.0`.
        let _ = write!(out, "{v:?}");
    } else {
        // Scientific: the shortest digits, mantissa with at least one decimal.
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        out.push_str(mantissa);
        if !mantissa.contains('.') {
            out.push_str(".0");
        }
        out.push('E');
        out.push_str(exp);
    }
}

impl Show for f64 {
    fn fmt_show(&self, out: &mut String) {
        show_float(*self, out);
    }
}

impl Show for f32 {
    fn fmt_show(&self, out: &mut String) {
        // Go through the shortest f32 digits so 0.1f32 shows as 0.1.
        let v: f64 = format!("{self:?}").parse().unwrap_or(f64::NAN);
        show_float(v, out);
    }
}

impl<T: Show + ?Sized> Show for &T {
    fn fmt_show(&self, out: &mut String) {
        (**self).fmt_show(out);
    }
}

impl<T: Show + ?Sized> Show for Box<T> {
    fn fmt_show(&self, out: &mut String) {
        (**self).fmt_show(out);
    }
}

impl<T: Show> Show for Option<T> {
    fn fmt_show(&self, out: &mut String) {
        match self {
            Some(v) => {
                out.push_str("Some(");
                v.fmt_show(out);
                out.push(')');
            }
            None => out.push_str("None"),
        }
    }
}

/// Lists show as Spark's grouped values do (`groupByKey`, `cogroup`).
impl<T: Show> Show for Vec<T> {
    fn fmt_show(&self, out: &mut String) {
        out.push_str("CompactBuffer(");
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            v.fmt_show(out);
        }
        out.push(')');
    }
}

macro_rules! show_tuple {
    ($($name:ident),+) => {
        impl<$($name: Show),+> Show for ($($name,)+) {
            #[allow(non_snake_case)]
            fn fmt_show(&self, out: &mut String) {
                let ($($name,)+) = self;
                out.push('(');
                let mut first = true;
                $(
                    if !first { out.push(','); }
                    first = false;
                    $name.fmt_show(out);
                )+
                let _ = first;
                out.push(')');
            }
        }
    };
}

show_tuple!(A);
show_tuple!(A, B);
show_tuple!(A, B, C);
show_tuple!(A, B, C, D);
show_tuple!(A, B, C, D, E);
show_tuple!(A, B, C, D, E, F);

/// A `Show` wrapper for `Display` types: `ShowDisplay(x)` prints as `x`'s
/// `Display`. It is a record when `T` is (serde sees `T` itself):
///
/// ```
/// use ember_core::{Show, ShowDisplay};
///
/// fn is_printable_record<T: ember_core::Data + Show>() {}
/// is_printable_record::<ShowDisplay<std::net::Ipv4Addr>>();
/// assert_eq!(ShowDisplay(std::net::Ipv4Addr::LOCALHOST).show(), "127.0.0.1");
/// ```
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ShowDisplay<T>(pub T);

impl<T: fmt::Display> Show for ShowDisplay<T> {
    fn fmt_show(&self, out: &mut String) {
        let _ = write!(out, "{}", self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_and_strings() {
        assert_eq!("hello".show(), "hello");
        assert_eq!(42i64.show(), "42");
        assert_eq!(true.show(), "true");
        assert_eq!(().show(), "()");
    }

    #[test]
    fn doubles_like_scala() {
        let cases = [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (-2.25, "-2.25"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (1e7, "1.0E7"),
            (1.5e10, "1.5E10"),
            (9999999.0, "9999999.0"),
            (0.0, "0.0"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (v, want) in cases {
            assert_eq!(v.show(), want, "{v}");
        }
        assert_eq!(0.1f32.show(), "0.1");
    }

    #[test]
    fn nested_structures() {
        let joined = ("a".to_string(), (1, Some("x".to_string())));
        assert_eq!(joined.show(), "(a,(1,Some(x)))");
        let grouped = ("k", (vec![1, 2], Vec::<i32>::new()));
        assert_eq!(grouped.show(), "(k,(CompactBuffer(1, 2),CompactBuffer()))");
        assert_eq!(
            ShowDisplay(std::net::Ipv4Addr::LOCALHOST).show(),
            "127.0.0.1"
        );
    }

    // The derive, against what Scala's `toString` prints for the same case
    // classes and case objects. Inside this crate the trait's path is
    // `crate::Show`, hence the attribute.

    #[derive(crate::Show)]
    #[show(crate = "crate")]
    struct LogLine {
        day: String,
        level: String,
        service: String,
    }

    #[derive(crate::Show)]
    #[show(crate = "crate")]
    struct Reading {
        sensor: u64,
        value: f64,
        unit: Option<String>,
        retries: Option<u32>,
        origin: Point,
    }

    #[derive(crate::Show)]
    #[show(crate = "crate")]
    struct Point(i32, i32);

    #[derive(crate::Show)]
    #[show(crate = "crate")]
    struct Tick;

    #[derive(crate::Show)]
    #[show(crate = "crate")]
    struct Empty {}

    #[derive(crate::Show)]
    #[show(crate = "crate")]
    enum Event {
        Started,
        Moved(Point, f64),
        Failed { code: u16, reason: String },
    }

    // No values, so nothing to print; it must still compile.
    #[derive(crate::Show)]
    #[show(crate = "crate")]
    #[allow(dead_code)]
    enum Never {}

    #[derive(crate::Show)]
    #[show(crate = "crate")]
    struct Keyed<K, V>
    where
        K: Clone,
    {
        key: K,
        values: Vec<V>,
    }

    #[derive(crate::Show)]
    #[show(crate = "crate")]
    struct Borrowed<'a> {
        r#type: &'a str,
    }

    #[derive(crate::Show)]
    #[show(crate = "crate")]
    #[allow(non_camel_case_types)]
    struct r#match(u8);

    #[test]
    fn derived_structs_print_as_case_classes() {
        let line = LogLine {
            day: "2026-12-03".into(),
            level: "ERROR".into(),
            service: "api".into(),
        };
        assert_eq!(line.show(), "LogLine(2026-12-03,ERROR,api)");
        let reading = Reading {
            sensor: 7,
            value: 1.0,
            unit: None,
            retries: Some(3),
            origin: Point(-1, 2),
        };
        assert_eq!(reading.show(), "Reading(7,1.0,None,Some(3),Point(-1,2))");
        assert_eq!(Point(0, 5).show(), "Point(0,5)");
        // `case object Tick` and `case class Empty()`.
        assert_eq!(Tick.show(), "Tick");
        assert_eq!(Empty {}.show(), "Empty()");
        assert_eq!(r#match(1).show(), "match(1)");
        assert_eq!(Borrowed { r#type: "x" }.show(), "Borrowed(x)");
    }

    // A type written by a `macro_rules!`: its tokens carry the macro's
    // hygiene, which the derive's own locals must not depend on.
    macro_rules! record {
        ($name:ident { $($field:ident: $ty:ty),* }) => {
            #[derive(crate::Show)]
            #[show(crate = "crate")]
            struct $name { $($field: $ty),* }
        };
    }
    record!(Made {
        out: u8,
        name: String
    });

    #[test]
    fn derived_inside_a_macro() {
        let made = Made {
            out: 1,
            name: "m".into(),
        };
        assert_eq!(made.show(), "Made(1,m)");
    }

    #[test]
    fn derived_enums_print_their_variant() {
        assert_eq!(Event::Started.show(), "Started");
        assert_eq!(
            Event::Moved(Point(1, 2), 0.5).show(),
            "Moved(Point(1,2),0.5)"
        );
        let failed = Event::Failed {
            code: 503,
            reason: "busy".into(),
        };
        assert_eq!(failed.show(), "Failed(503,busy)");
    }

    #[test]
    fn derived_generic_types_show_their_parameters() {
        let k = Keyed {
            key: ("a".to_string(), 1u8),
            values: vec![Some(1.5f64), None],
        };
        assert_eq!(k.show(), "Keyed((a,1),CompactBuffer(Some(1.5), None))");
        // Inside a pair, as `print()` of a keyed stream writes it.
        assert_eq!(("k", Point(3, 4)).show(), "(k,Point(3,4))");
    }
}
