//! `to_dashboard`: a stream's latest results on a live web page.
//!
//! A dashboard shows at most [`ROWS`] rows of each batch, and every key or
//! record is shown in at most [`MAX_KEY_BYTES`] / [`MAX_RECORD_BYTES`]:
//! longer ones are cut at a character boundary and end with a visible
//! marker, `…[N bytes in all]`. The JSON API counts the cut rows of the
//! shown batch (`numTruncated`) and since the start (`totalTruncated`), and
//! the first cut is logged once. So one batch of huge keys cannot make every
//! answer of the UI huge: a dashboard's answer stays within about 100 ×
//! 4 KiB, whatever the data.

use super::DStream;
use crate::listener::DashboardContent;
use crate::show::Show;
use crate::Data;

/// How many rows a dashboard keeps of each batch.
pub(crate) const ROWS: usize = 100;

/// The longest key a pair dashboard shows whole, in bytes of its text.
pub(crate) const MAX_KEY_BYTES: usize = 1024;

/// The longest record a record dashboard shows whole, in bytes of its text.
pub(crate) const MAX_RECORD_BYTES: usize = 4096;

/// Cuts `text` to at most `max` bytes (at a character boundary) plus a
/// marker saying how long it was; returns whether it cut.
pub(crate) fn truncate_for_display(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let total = text.len();
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!("…[{total} bytes in all]"));
    true
}

/// Cuts each of `texts` longer than `max` bytes (see
/// [`truncate_for_display`]); returns how many were cut.
fn truncate_all<'a>(texts: impl Iterator<Item = &'a mut String>, max: usize) -> usize {
    texts
        .map(|t| truncate_for_display(t, max))
        .filter(|cut| *cut)
        .count()
}

/// A value a dashboard can chart: numbers.
pub trait DashboardValue {
    /// The value as a float, for sorting and drawing.
    fn as_f64(&self) -> f64;
}

macro_rules! dashboard_value {
    ($($t:ty),*) => {$(
        impl DashboardValue for $t {
            fn as_f64(&self) -> f64 {
                *self as f64
            }
        }
    )*};
}
dashboard_value!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, f32, f64);

/// Largest value first; equal values by key, so the page is stable.
fn sort_rows(rows: &mut [(String, f64)]) {
    rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
}

/// The first [`ROWS`] of `pairs` in [`sort_rows`] order, showing only the
/// keys that can be among them: those whose value reaches the [`ROWS`]-th
/// largest (all of them when values tie there).
fn top_rows<K: Show, V: DashboardValue>(pairs: &[(K, V)]) -> Vec<(String, f64)> {
    let mut values: Vec<f64> = pairs.iter().map(|(_, v)| v.as_f64()).collect();
    let floor = if values.len() > ROWS {
        let (_, nth, _) = values.select_nth_unstable_by(ROWS - 1, |a, b| b.total_cmp(a));
        Some(*nth)
    } else {
        None
    };
    let mut rows: Vec<(String, f64)> = pairs
        .iter()
        .map(|(k, v)| (k, v.as_f64()))
        .filter(|(_, v)| floor.is_none_or(|f| v.total_cmp(&f).is_ge()))
        .map(|(k, v)| (k.show(), v))
        .collect();
    sort_rows(&mut rows);
    rows.truncate(ROWS);
    rows
}

impl<'s, K, V> DStream<'s, (K, V)>
where
    K: Data + Show,
    V: Data + DashboardValue,
{
    /// Shows every batch's pairs on a live page of the web UI,
    /// `/dashboard/<n>` (the n-th dashboard defined, from 0): the keys with
    /// the largest values, as a bar chart and a sorted table (the top 100),
    /// replaced when the next batch completes. For NetworkWordCount's counts,
    /// or any running totals. An output operation, like `print`.
    ///
    /// A key whose text is longer than 1 KiB is shown cut, ending with
    /// `…[N bytes in all]`; the JSON API counts such keys (`numTruncated`).
    ///
    /// Needs the web UI (on unless turned off; see
    /// [`StreamingConf::ui`](crate::StreamingConf::ui)); without it the
    /// results are kept but not served.
    pub fn to_dashboard(&self, title: impl Into<String>) {
        let bus = self.ctx.shared.bus().clone();
        let id = (self.ctx.index == 0).then(|| bus.add_dashboard(&title.into(), true));
        // Each worker sends only its own top rows and its count: the
        // batch's top rows are among them, and one worker never gathers a
        // whole batch (a million keys) to show a hundred.
        let tops = self.map_partitions(|part| {
            let part: Vec<(K, V)> = part.collect();
            [(part.len(), top_rows(&part))]
        });
        tops.foreach_rdd_named("to_dashboard", move |parts, time| {
            let Some(id) = id else { return };
            let num_rows = parts.iter().map(|(n, _)| n).sum();
            let mut rows: Vec<(String, f64)> =
                parts.into_iter().flat_map(|(_, rows)| rows).collect();
            sort_rows(&mut rows);
            rows.truncate(ROWS);
            let truncated = truncate_all(rows.iter_mut().map(|(k, _)| k), MAX_KEY_BYTES);
            bus.update_dashboard(
                id,
                DashboardContent {
                    batch_time: Some(time.milliseconds()),
                    num_rows,
                    rows,
                    truncated,
                    ..DashboardContent::default()
                },
            );
        });
    }
}

impl<'s, T: Data + Show> DStream<'s, T> {
    /// Shows the first 100 records of every batch on a live page of the web
    /// UI (`/dashboard/<n>`), as [`Show`] writes them; see
    /// [`to_dashboard`](Self::to_dashboard) for pair streams. A record whose
    /// text is longer than 4 KiB is shown cut, ending with
    /// `…[N bytes in all]`.
    pub fn to_dashboard_records(&self, title: impl Into<String>) {
        let bus = self.ctx.shared.bus().clone();
        let id = (self.ctx.index == 0).then(|| bus.add_dashboard(&title.into(), false));
        self.foreach_rdd_named("to_dashboard", move |batch, time| {
            let Some(id) = id else { return };
            let num_rows = batch.len();
            let mut records: Vec<String> = batch.iter().take(ROWS).map(Show::show).collect();
            let truncated = truncate_all(records.iter_mut(), MAX_RECORD_BYTES);
            bus.update_dashboard(
                id,
                DashboardContent {
                    batch_time: Some(time.milliseconds()),
                    num_rows,
                    records,
                    truncated,
                    ..DashboardContent::default()
                },
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_s_top_rows_are_the_first_of_all_its_rows_sorted() {
        // Values with many ties at the cut, keys out of order.
        let pairs: Vec<(String, u64)> = (0..1000u64)
            .map(|i| (format!("k{:04}", (i * 7919) % 1000), i % 13))
            .collect();
        let mut all: Vec<(String, f64)> =
            pairs.iter().map(|(k, v)| (k.clone(), *v as f64)).collect();
        sort_rows(&mut all);
        all.truncate(ROWS);
        assert_eq!(top_rows(&pairs), all);
        // Fewer pairs than rows: all of them, sorted.
        let few = vec![
            ("b".to_string(), 1u64),
            ("a".to_string(), 1),
            ("c".to_string(), 5),
        ];
        let want = [("c", 5.0), ("a", 1.0), ("b", 1.0)].map(|(k, v)| (k.to_string(), v));
        assert_eq!(top_rows(&few), want);
    }

    #[test]
    fn long_texts_are_cut_at_a_character_boundary_with_a_marker() {
        let mut short = "abc".to_string();
        assert!(!truncate_for_display(&mut short, 3));
        assert_eq!(short, "abc");

        let mut long = "x".repeat(10);
        assert!(truncate_for_display(&mut long, 4));
        assert_eq!(long, "xxxx…[10 bytes in all]");

        // 'é' is two bytes: a cut at 3 would split the second one.
        let mut accents = "éééé".to_string();
        assert!(truncate_for_display(&mut accents, 3));
        assert_eq!(accents, "é…[8 bytes in all]");
    }
}
