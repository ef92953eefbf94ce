//! The seed's windowed job: word counts over the last `window` seconds,
//! every `slide` seconds, with `reduce_by_key_and_window` — incremental
//! (inverse function, zero counts filtered out) or re-reduced every window.
//!
//! Per-batch processing is read from the context's completed-batch
//! watermark (every output's frontier passed the batch), so batches between
//! two window outputs count too; each window's sum is checked against the
//! words offered in its span.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ember_core::{StreamingConf, StreamingContext, Time};

use crate::gen::{self, now_us, Corpus};
use crate::run::{peak_rss_kb, percentile};

/// Settings of one windowed run.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct WindowArgs {
    /// ember master: `local[N]`.
    #[arg(long, default_value = "local[2]")]
    pub(crate) master: String,
    /// Words per second offered over loopback TCP.
    #[arg(long, default_value_t = 5_000_000)]
    pub(crate) rate: u64,
    /// Window length, seconds.
    #[arg(long, default_value_t = 30)]
    pub(crate) window: u64,
    /// Slide, seconds.
    #[arg(long, default_value_t = 10)]
    pub(crate) slide: u64,
    /// Re-reduce every window instead of adding and subtracting batches.
    #[arg(long)]
    pub(crate) no_inverse: bool,
    /// How long to run, seconds (at least two full windows is sensible).
    #[arg(long, default_value_t = 70)]
    pub(crate) seconds: u64,
}

/// One window output as `foreach_rdd` saw it.
#[derive(Clone, Copy, Debug)]
struct Output {
    time_ms: u64,
    at_us: u64,
    words: u64,
    keys: usize,
}

/// Runs the windowed word count and prints per-batch and per-window figures;
/// returns whether the rate was sustained.
pub(crate) fn run(args: &WindowArgs, corpus: &Arc<Corpus>) -> Result<bool, String> {
    let interval = 1000u64;
    let conf = StreamingConf::new("ember-bench-window", Duration::from_millis(interval))
        .master(&args.master)
        .map_err(|e| e.to_string())?;
    let ssc = StreamingContext::new(conf).map_err(|e| e.to_string())?;
    let (port, pacer) = gen::start_tcp(corpus.clone(), args.rate).map_err(|e| e.to_string())?;
    let outputs: Arc<Mutex<Vec<Output>>> = Arc::default();
    let out = outputs.clone();
    let (window, slide, inverse) = (
        Duration::from_secs(args.window),
        Duration::from_secs(args.slide),
        !args.no_inverse,
    );
    ssc.define(move |s| {
        let pairs = s
            .socket_text_stream("127.0.0.1", port)
            .flat_map(|l: String| l.split(' ').map(str::to_string).collect::<Vec<_>>())
            .map(|w| (w, 1u64));
        let counts = if inverse {
            pairs.reduce_by_key_and_window_inv_filter(
                |a, b| a + b,
                |a, b| a - b,
                |(_, n)| *n > 0,
                window,
                slide,
            )
        } else {
            pairs.reduce_by_key_and_window(|a, b| a + b, window, slide)
        };
        let out = out.clone();
        counts.foreach_rdd(move |batch, time: Time| {
            let at_us = now_us();
            out.lock().expect("outputs lock").push(Output {
                time_ms: time.milliseconds(),
                at_us,
                words: batch.iter().map(|(_, n)| n).sum(),
                keys: batch.len(),
            });
        });
    })
    .map_err(|e| e.to_string())?;
    ssc.start().map_err(|e| e.to_string())?;
    let first = ssc.first_batch_time().expect("started").milliseconds();
    let last = first + (args.seconds - 1) * interval;

    // Completion wall time of every batch, from the completed watermark.
    let mut completed: Vec<(u64, u64)> = Vec::new();
    let mut seen = first - interval;
    let deadline = now_us() / 1000 + args.seconds * interval + 10 * interval;
    while seen < last && now_us() / 1000 < deadline {
        std::thread::sleep(Duration::from_millis(1));
        if let Some(t) = ssc.last_completed_batch().map(Time::milliseconds) {
            let at = now_us();
            while seen < t {
                seen += interval;
                completed.push((seen, at));
            }
        }
    }
    let (log, conn) = pacer.finish();
    ssc.stop(false).map_err(|e| e.to_string())?;
    drop(conn);
    let rss = peak_rss_kb();

    let delays: Vec<f64> = completed
        .iter()
        .skip(2)
        .map(|(t, at)| *at as f64 / 1000.0 - *t as f64)
        .collect();
    let outs = outputs.lock().expect("outputs lock").clone();
    let window_ms = args.window * 1000;
    println!("window output ms   delay ms   words in window   offered in window   keys");
    let mut sums_ok = true;
    for o in &outs {
        let offered = log.offered_by(o.time_ms * 1000)
            - log.offered_by(o.time_ms.saturating_sub(window_ms) * 1000);
        let full = o.time_ms >= first - interval + window_ms;
        let off = (o.words as f64 - offered as f64).abs() / (offered.max(1) as f64);
        if full && off > 0.03 {
            sums_ok = false;
        }
        println!(
            "{:>16} {:>10.1} {:>17} {:>19} {:>6}{}",
            o.time_ms,
            o.at_us as f64 / 1000.0 - o.time_ms as f64,
            o.words,
            offered,
            o.keys,
            if full { "" } else { "  (partial window)" }
        );
    }
    let max = delays.iter().copied().fold(0.0, f64::max);
    let sustained =
        completed.last().is_some_and(|(t, _)| *t >= last) && max < interval as f64 && sums_ok;
    println!(
        "{} {} window {}s slide {}s at {:.2} M words/s: per-batch total delay p50 {:.0} ms, \
         p99 {:.0} ms, max {:.0} ms over {} batches; peak RSS {} MB; {}",
        args.master,
        if inverse {
            "with inverse"
        } else {
            "without inverse"
        },
        args.window,
        args.slide,
        args.rate as f64 / 1e6,
        percentile(&delays, 50.0),
        percentile(&delays, 99.0),
        max,
        delays.len(),
        rss.map_or("?".to_string(), |kb| (kb / 1024).to_string()),
        if sustained {
            "SUSTAINED"
        } else {
            "NOT SUSTAINED"
        }
    );
    Ok(sustained)
}
