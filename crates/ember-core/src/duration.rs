//! Reading durations from text and checking them: the command line's
//! `500ms`, `2s`, `1m`, and the whole milliseconds batch times need.

use std::time::Duration;

use crate::error::{Error, Result};

/// Parses a duration written as a number and a unit: `250ms`, `2s`, `1.5s`,
/// `1m`, `1h`.
///
/// A bare number is refused rather than guessed at: `1` could mean a second
/// or a millisecond (Spark's settings read it as milliseconds), and a batch
/// interval a thousand times too short fails in confusing ways later.
///
/// # Errors
///
/// [`Error::Config`] naming the text and the accepted forms; for a bare
/// number, the two readings to choose from.
///
/// ```
/// use ember_core::{parse_duration, millis};
/// assert_eq!(parse_duration("1.5s").unwrap(), millis(1500));
/// let e = parse_duration("1").unwrap_err().to_string();
/// assert!(e.contains("`1` has no unit: write 1s or 1ms"), "{e}");
/// ```
pub fn parse_duration(text: &str) -> Result<Duration> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || {
        Error::config(format!(
            "cannot read `{text}` as a duration: write a number and a unit, like 500ms, 2s, 1.5s, 1m or 1h"
        ))
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let scale_ms = match unit.trim() {
        "" => {
            return Err(Error::config(format!(
                "`{t}` has no unit: write {t}s or {t}ms (units: ms, s, m, h)"
            )))
        }
        "ms" => 1.0,
        "s" | "sec" | "secs" => 1_000.0,
        "m" | "min" | "mins" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return Err(bad()),
    };
    let ms = value * scale_ms;
    if !ms.is_finite() || ms < 0.0 || ms > u64::MAX as f64 / 2.0 {
        return Err(bad());
    }
    Ok(Duration::from_micros((ms * 1000.0).round() as u64))
}

/// Whole milliseconds of a duration, failing for sub-millisecond precision.
pub(crate) fn whole_millis(d: Duration, what: &str) -> Result<u64> {
    if d.is_zero() {
        return Err(Error::config(format!(
            "{what} must be positive, got 0 ms: use at least 1ms, e.g. seconds(1)"
        )));
    }
    if d.subsec_nanos() % 1_000_000 != 0 {
        return Err(Error::config(format!(
            "{what} must be a whole number of milliseconds, got {d:?}"
        )));
    }
    u64::try_from(d.as_millis()).map_err(|_| Error::config(format!("{what} of {d:?} is too long")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{millis, minutes, seconds};

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(parse_duration("500ms").unwrap(), millis(500));
        assert_eq!(parse_duration("2s").unwrap(), seconds(2));
        assert_eq!(parse_duration("1.5s").unwrap(), millis(1500));
        assert_eq!(parse_duration("1m").unwrap(), minutes(1));
        assert_eq!(parse_duration(" 250ms ").unwrap(), millis(250));
        assert_eq!(parse_duration("250 ms").unwrap(), millis(250));
        assert_eq!(parse_duration("1h").unwrap(), minutes(60));
    }

    #[test]
    fn rejects_garbage_with_a_hint() {
        for bad in ["", "s", "-1s", "1 fortnight", "1e3", "abc"] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.contains("500ms"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_bare_number_needs_a_unit() {
        for (bare, hint) in [
            ("1", "`1` has no unit: write 1s or 1ms"),
            (" 500 ", "`500` has no unit: write 500s or 500ms"),
            ("0", "`0` has no unit"),
            ("1.5", "write 1.5s or 1.5ms"),
        ] {
            let e = parse_duration(bare).unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{bare}: {e}");
            assert!(e.to_string().contains(hint), "{bare}: {e}");
        }
    }

    #[test]
    fn whole_millis_rejects_zero_and_fractions() {
        assert_eq!(whole_millis(seconds(2), "x").unwrap(), 2000);
        assert!(whole_millis(Duration::ZERO, "batch interval")
            .unwrap_err()
            .to_string()
            .contains("must be positive"));
        assert!(whole_millis(Duration::from_micros(1500), "x").is_err());
    }
}
