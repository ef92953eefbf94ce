//! `to_dashboard`: a stream's latest results on a live web page.

use super::DStream;
use crate::show::Show;
use crate::Data;

/// How many rows a dashboard keeps of each batch.
const ROWS: usize = 100;

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
    /// Needs the web UI (on unless turned off; see
    /// [`StreamingConf::ui`](crate::StreamingConf::ui)); without it the
    /// results are kept but not served.
    pub fn to_dashboard(&self, title: impl Into<String>) {
        let bus = self.ctx.shared.bus().clone();
        let id = (self.ctx.index == 0).then(|| bus.add_dashboard(&title.into(), true));
        self.foreach_rdd_named("to_dashboard", move |batch, time| {
            let Some(id) = id else { return };
            let num_rows = batch.len();
            let mut rows: Vec<(String, f64)> =
                batch.iter().map(|(k, v)| (k.show(), v.as_f64())).collect();
            // Largest first; equal values by key, so the page is stable.
            rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            rows.truncate(ROWS);
            bus.update_dashboard(id, |d| {
                d.batch_time = Some(time.milliseconds());
                d.num_rows = num_rows;
                d.rows = rows;
            });
        });
    }
}

impl<'s, T: Data + Show> DStream<'s, T> {
    /// Shows the first 100 records of every batch on a live page of the web
    /// UI (`/dashboard/<n>`), as [`Show`] writes them; see
    /// [`to_dashboard`](Self::to_dashboard) for pair streams.
    pub fn to_dashboard_records(&self, title: impl Into<String>) {
        let bus = self.ctx.shared.bus().clone();
        let id = (self.ctx.index == 0).then(|| bus.add_dashboard(&title.into(), false));
        self.foreach_rdd_named("to_dashboard", move |batch, time| {
            let Some(id) = id else { return };
            let num_rows = batch.len();
            let records = batch.iter().take(ROWS).map(Show::show).collect();
            bus.update_dashboard(id, |d| {
                d.batch_time = Some(time.milliseconds());
                d.num_rows = num_rows;
                d.records = records;
            });
        });
    }
}
