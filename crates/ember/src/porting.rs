//! Porting a Spark Streaming program: what changes besides the syntax.
//!
//! Most of a Scala or Python program carries over operator by operator.
//! The differences come from Rust's ownership rules (closures must own
//! what they use), from records being plain Rust types (they derive what
//! Spark's JVM gives every object), and from Rust having no overloading.
//!
//! # Closures own what they use: `move`
//!
//! [`StreamingContext::define`](crate::StreamingContext::define) takes the
//! closure that builds the graph. That closure is `Fn + 'static`: it runs
//! on every worker when the context starts, and the operator closures it
//! creates are called batch after batch, long after it returned. So an
//! operator closure may not borrow anything from it; it must own its
//! values, which is what `move` does:
//!
//! ```
//! use ember::prelude::*;
//! use std::collections::HashSet;
//! use std::sync::{Arc, Mutex};
//!
//! let clock = ManualClock::new();
//! let conf = StreamingConf::new("Porting", seconds(1)).master("local[2]")?;
//! let ssc = StreamingContext::with_clock(conf, clock.clone())?;
//! // Read by the filters of two streams; an `Arc` so clones are cheap.
//! let stop_words: Arc<HashSet<&str>> = Arc::new(["a", "the"].into());
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let sink = seen.clone();
//! ssc.define(move |s| {
//!     let min_len = 3; // a local of the graph closure
//!     let lines = s.queue_stream(vec![vec!["the cat saw a dog".to_string()]], true, None);
//!     let tags = s.queue_stream(vec![vec!["a".to_string(), "pets".into()]], true, None);
//!
//!     // The graph closure keeps its own `stop_words` for the next worker,
//!     // so each operator closure gets a clone, made before its `move`.
//!     let stop = stop_words.clone();
//!     let words = lines
//!         .flat_map(|line| line.split(' ').map(str::to_string).collect::<Vec<_>>())
//!         .filter(move |w| w.len() >= min_len && !stop.contains(w.as_str()));
//!     let stop = stop_words.clone();
//!     let tags = tags.filter(move |t| !stop.contains(t.as_str()));
//!
//!     let sink = sink.clone();
//!     words.union(&tags).foreach_rdd(move |mut batch, _| {
//!         batch.sort();
//!         sink.lock().unwrap().extend(batch);
//!     });
//! })?;
//! ssc.start()?;
//! clock.advance(seconds(1));
//! ssc.await_batch(Time::from_millis(1000))?;
//! ssc.stop(false)?;
//! assert_eq!(*seen.lock().unwrap(), ["cat", "dog", "pets", "saw"]);
//! # Ok::<(), ember::Error>(())
//! ```
//!
//! Without `move`, a closure that reads a local of the graph closure
//! borrows it, and rustc says the "closure may outlive the current
//! function" (E0373). One that reads a value the graph closure captured
//! gets "lifetime may not live long enough", with the note "closure
//! implements `Fn`, so references to captured variables can't escape the
//! closure":
//!
//! ```compile_fail
//! # use ember::prelude::*;
//! # use std::sync::{Arc, Mutex};
//! # let ssc = StreamingContext::new(StreamingConf::new("x", seconds(1)))?;
//! let sink = Arc::new(Mutex::new(Vec::new()));
//! ssc.define(move |s| {
//!     let words = s.queue_stream(vec![vec!["a".to_string()]], true, None);
//!     words.foreach_rdd(|batch, _| sink.lock().unwrap().extend(batch)); // no `move`
//! })?;
//! # Ok::<(), ember::Error>(())
//! ```
//!
//! With `move` but without the clone, the operator closure would take the
//! graph closure's only `sink`, which the next worker's run needs: "cannot
//! move out of `sink`, a captured variable in an `Fn` closure" (E0507).
//! Clone first, as in the first example:
//!
//! ```compile_fail,E0507
//! # use ember::prelude::*;
//! # use std::sync::{Arc, Mutex};
//! # let ssc = StreamingContext::new(StreamingConf::new("x", seconds(1)))?;
//! let sink = Arc::new(Mutex::new(Vec::new()));
//! ssc.define(move |s| {
//!     let words = s.queue_stream(vec![vec!["a".to_string()]], true, None);
//!     words.foreach_rdd(move |batch, _| sink.lock().unwrap().extend(batch)); // no clone
//! })?;
//! # Ok::<(), ember::Error>(())
//! ```
//!
//! Values the workers share and change, like `sink` here, go in an
//! `Arc<Mutex<_>>`, since the workers are threads; read-only tables in an
//! `Arc`, so each clone is a pointer.
//!
//! # Record types
//!
//! A record crosses threads and, in a cluster or a checkpoint, processes,
//! so its type must be `Clone` and serde's `Serialize` and `Deserialize`
//! (the [`Data`](crate::Data) trait). `print()` and `save_as_text_files`
//! also need [`Show`](trait@crate::Show), ember's `toString`.
//! `#[derive(Show)]` gives the form of a Scala case class: `Name(a,b)`, each
//! field's own text, commas without spaces; enums print their variant.
//!
//! ```
//! use ember::prelude::*;
//! use ember::ShowDisplay;
//! use std::net::Ipv4Addr;
//! use std::sync::{Arc, Mutex};
//!
//! #[derive(Clone, Serialize, Deserialize, Show)]
//! struct LogLine {
//!     day: String,
//!     level: Level,
//!     service: String,
//!     latency_ms: f64,
//!     client: ShowDisplay<Ipv4Addr>, // a Display type, printed as its Display
//! }
//!
//! #[derive(Clone, Serialize, Deserialize, Show)]
//! enum Level {
//!     Error,
//!     Warn(u16),
//! }
//!
//! let clock = ManualClock::new();
//! let conf = StreamingConf::new("Logs", seconds(1)).master("local[1]")?; // one worker: one order
//! let ssc = StreamingContext::with_clock(conf, clock.clone())?;
//! let printed = Arc::new(Mutex::new(String::new()));
//! let sink = printed.clone();
//! ssc.define(move |s| {
//!     let line = |level, latency_ms| LogLine {
//!         day: "2026-12-03".into(),
//!         level,
//!         service: "api".into(),
//!         latency_ms,
//!         client: ShowDisplay(Ipv4Addr::new(10, 0, 0, 1)),
//!     };
//!     let batch = vec![line(Level::Error, 12.0), line(Level::Warn(7), 0.25)];
//!     let sink = sink.clone();
//!     s.queue_stream(vec![batch], true, None)
//!         .print_with(10, move |text| sink.lock().unwrap().push_str(text));
//! })?;
//! ssc.start()?;
//! clock.advance(seconds(1));
//! ssc.await_batch(Time::from_millis(1000))?;
//! ssc.stop(false)?;
//! assert_eq!(
//!     *printed.lock().unwrap(),
//!     "-------------------------------------------\n\
//!      Time: 1000 ms\n\
//!      -------------------------------------------\n\
//!      LogLine(2026-12-03,Error,api,12.0,10.0.0.1)\n\
//!      LogLine(2026-12-03,Warn(7),api,0.25,10.0.0.1)\n\n"
//! );
//! # Ok::<(), ember::Error>(())
//! ```
//!
//! The serde derives in [`prelude`](crate::prelude) expand to paths that
//! start at the `serde` crate, so the program's `Cargo.toml` needs
//! `serde = { version = "1", features = ["derive"] }` (without it, rustc
//! says "can't find crate for `serde`"). A program that depends on `ember`
//! alone instead writes `#[serde(crate = "ember::serde")]` on each record
//! type (`ember::serde` is ember's re-export of serde).
//!
//! # Overloads: `_inv` and other suffixes
//!
//! Rust has no overloading, so Spark's overloads of one name become methods
//! with a suffix saying what the extra arguments are. A window's slide,
//! optional in Spark, is an argument that takes `None` for "the batch
//! interval".
//!
//! | Spark | ember |
//! |---|---|
//! | `reduceByKeyAndWindow(f, window, slide)` | [`reduce_by_key_and_window`](crate::DStream::reduce_by_key_and_window) |
//! | `reduceByKeyAndWindow(f, invF, window, slide)` | [`reduce_by_key_and_window_inv`](crate::DStream::reduce_by_key_and_window_inv) |
//! | `reduceByKeyAndWindow(f, invF, window, slide, filterFunc = ..)` | [`reduce_by_key_and_window_inv_filter`](crate::DStream::reduce_by_key_and_window_inv_filter) |
//! | `reduceByWindow(f, invF, window, slide)` | [`reduce_by_window_inv`](crate::DStream::reduce_by_window_inv) |
//! | `updateStateByKey(f, partitioner, initialRDD)` | [`update_state_by_key_with_initial`](crate::DStream::update_state_by_key_with_initial) |
//! | `print(num)` | [`print_n`](crate::DStream::print_n) |
//!
//! # Names
//!
//! Methods keep Spark's names in snake_case: `foreachRDD` is
//! [`foreach_rdd`](crate::DStream::foreach_rdd), `updateStateByKey`
//! [`update_state_by_key`](crate::DStream::update_state_by_key),
//! `mapWithState` [`map_with_state`](crate::DStream::map_with_state),
//! `socketTextStream`
//! [`socket_text_stream`](crate::StreamingScope::socket_text_stream),
//! `StreamingContext.getOrCreate`
//! [`StreamingContext::get_or_create`](crate::StreamingContext::get_or_create),
//! `awaitTermination`
//! [`await_termination`](crate::StreamingContext::await_termination).
//! They carry their Spark names as `#[doc(alias)]`s, so typing
//! `reduceByKeyAndWindow` or `foreachRDD` in rustdoc's search finds it.
//! Sources live on the [`StreamingScope`](crate::StreamingScope) that
//! `define` hands its closure, not on the context, because each worker
//! builds its own copy of the graph.
//!
//! # Speed: the allocator and borrowed words
//!
//! A JVM allocates a `String` per word cheaply; Rust programs that do the
//! same (`flat_map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>())`)
//! spend a quarter of their CPU in glibc's `malloc` and `free`. Two lines
//! in your binary, with `mimalloc` in its `[dependencies]`, cut that by
//! about a third (the examples do this):
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
//! ```
//!
//! [`flat_map_str`](crate::DStream::flat_map_str) goes further: words stay
//! slices of their line until a reduction copies each distinct word once
//! per batch (`bench/compare-spark` measures both ways).
