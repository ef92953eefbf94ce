//! SQL on every batch of a DStream: Spark Streaming's "DataFrame and SQL
//! operations", on [Apache DataFusion](https://datafusion.apache.org).
//!
//! A stream's records become a table for each batch (a struct's fields are
//! its columns, through serde); a query over it gives a DStream of rows
//! back, or a [`Frame`] (a DataFrame) is handed to a function with the
//! batch's time, as Spark's `foreachRDD { rdd => rdd.toDF() … }` does.
//! Other streams of the same batch interval and static CSV or Parquet files
//! can be registered beside it for joins.
//!
//! ```
//! use ember_core::{seconds, ManualClock, StreamingConf, StreamingContext, Time};
//! use ember_sql::SqlStream;
//! use serde::{Deserialize, Serialize};
//! use std::sync::{Arc, Mutex};
//!
//! #[derive(Clone, Serialize, Deserialize)]
//! struct Word {
//!     word: String,
//! }
//!
//! #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
//! struct WordCount {
//!     word: String,
//!     total: i64,
//! }
//!
//! let clock = ManualClock::new();
//! let conf = StreamingConf::new("SqlWordCount", seconds(1)).master("local[2]")?.ui(None);
//! let ssc = StreamingContext::with_clock(conf, clock.clone())?;
//! let results = Arc::new(Mutex::new(Vec::new()));
//! let sink = results.clone();
//! ssc.define(move |s| {
//!     let words = s
//!         .queue_stream(vec![vec!["to be or not to be".to_string()]], true, None)
//!         .flat_map(|line| line.split(' ').map(|w| Word { word: w.into() }).collect::<Vec<_>>());
//!     let counts = words
//!         .table("words")
//!         .sql::<WordCount>("SELECT word, count(*) AS total FROM words GROUP BY word ORDER BY word");
//!     let sink = sink.clone();
//!     counts.foreach_rdd(move |batch, _| sink.lock().unwrap().extend(batch));
//! })?;
//! ssc.start()?;
//! clock.advance(seconds(1));
//! ssc.await_batch(Time::from_millis(1000))?;
//! ssc.stop(false)?;
//! let wc = |w: &str, n| WordCount { word: w.into(), total: n };
//! assert_eq!(*results.lock().unwrap(), [wc("be", 2), wc("not", 1), wc("or", 1), wc("to", 2)]);
//! # Ok::<(), ember_core::Error>(())
//! ```
//!
//! ## Where the query runs
//!
//! Each worker makes its part of a batch into Arrow columns, and the
//! parts are gathered on one worker (as Spark's `transform` and
//! `foreachRDD` gather in ember), each a partition of the batch's table.
//! DataFusion runs the query there with as many threads as there are parts
//! (at most the machine's cores), while the other workers wait for the
//! batch. The rows of a [`Tables::sql`] stream live on that worker; follow
//! with `repartition` to spread heavy work again. A record type whose
//! columns serde_arrow cannot tell from the type (e.g. an untagged enum)
//! has them traced from its first records instead, and its batches are
//! gathered before they are encoded.
//!
//! ## Errors
//!
//! A query that does not parse, names an unknown table or column, or
//! mixes types, and rows that do not fit the output type, stop the
//! context with [`Error::User`] naming the
//! operation (`sql` or `foreach_batch_df`) and the batch; its cause is a
//! [`SqlError`] that quotes the query. No query text panics: a panic
//! inside the engine is caught and reported the same way.

mod rows;
pub mod show;

use std::future::Future;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::{
    CsvReadOptions, DataFrame, ParquetReadOptions, SessionConfig, SessionContext,
};
use ember_core::{DStream, Data, Error, Time};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use datafusion;

/// What went wrong with a query or with the records of a batch. Returned
/// inside [`Error::User`], which names the batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// The query failed to parse, plan or run.
    #[error("query `{query}` failed: {source}")]
    Query {
        /// The query as given.
        query: String,
        /// DataFusion's error.
        #[source]
        source: DataFusionError,
    },
    /// The query's rows do not fit the type the stream's records are.
    #[error(
        "the rows of query `{query}` (columns {columns}) do not fit the output type: {reason}; \
         name the columns as the type's fields (`AS name`) and match their types \
         (count(*) is an i64)"
    )]
    Rows {
        /// The query as given.
        query: String,
        /// The result's columns and their types.
        columns: String,
        /// Why the rows could not be read.
        reason: String,
    },
    /// A batch's records could not be made into columns.
    #[error("the batch's records could not be made into a table: {0}")]
    Records(String),
    /// A static table could not be registered.
    #[error("table `{name}` from {path} could not be registered: {source}")]
    Static {
        /// The table's name.
        name: String,
        /// The file or directory given.
        path: String,
        /// DataFusion's error.
        #[source]
        source: DataFusionError,
    },
    /// The engine panicked on the query (reported, not propagated).
    #[error("query `{query}` made the SQL engine panic: {message}")]
    Panicked {
        /// The query as given.
        query: String,
        /// The panic's message.
        message: String,
    },
}

/// A batch's table as it crosses workers: an Arrow record batch, written
/// as Arrow IPC when it has to be serialized (between processes or to a
/// checkpoint); in one process it is moved as it is.
#[derive(Clone, Debug)]
pub struct ArrowBatch(pub RecordBatch);

impl Serialize for ArrowBatch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::new();
        let mut writer = StreamWriter::try_new(&mut bytes, &self.0.schema())
            .map_err(serde::ser::Error::custom)?;
        writer.write(&self.0).map_err(serde::ser::Error::custom)?;
        writer.finish().map_err(serde::ser::Error::custom)?;
        drop(writer);
        serializer.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for ArrowBatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes: Vec<u8> = serde_bytes_compat::deserialize(deserializer)?;
        let mut reader =
            StreamReader::try_new(bytes.as_slice(), None).map_err(serde::de::Error::custom)?;
        let batch = reader
            .next()
            .ok_or_else(|| serde::de::Error::custom("an Arrow stream without a batch"))?
            .map_err(serde::de::Error::custom)?;
        Ok(ArrowBatch(batch))
    }
}

mod serde_bytes_compat {
    //! Bytes written by `serialize_bytes` read back by any serde format.
    use serde::de::{Deserializer, Error, SeqAccess, Visitor};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

/// One worker's part of a batch's table on its way to the query: the
/// table's index among the streams registered, and its rows.
type Part = (u32, Encoded);

/// A part of a batch's table as encoded where its records were.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Encoded {
    /// The part's rows.
    Rows(ArrowBatch),
    /// An empty part of a type whose columns are not known yet (traced
    /// from records, and none seen so far).
    Unknown,
    /// The records could not be made into columns.
    Failed(String),
}

/// Starts SQL over a stream: [`table`](SqlStream::table) names the
/// stream's table, to which more tables can be added before the query.
pub trait SqlStream<'s> {
    /// This stream as the table `name` of each batch's query.
    fn table(&self, name: &str) -> Tables<'s>;
}

impl<'s, T: Data> SqlStream<'s> for DStream<'s, T> {
    fn table(&self, name: &str) -> Tables<'s> {
        Tables {
            parts: vec![as_part(self, 0)],
            names: vec![name.to_string()],
            statics: Vec::new(),
        }
    }
}

/// Each batch of `stream` as Arrow columns. A type whose columns serde
/// describes is encoded on every worker, each its own part (in parallel,
/// and a partition of the query's table); one whose columns are traced
/// from records is gathered first, so that every batch has one schema.
fn as_part<'s, T: Data>(stream: &DStream<'s, T>, index: u32) -> DStream<'s, Part> {
    let mut encoder = rows::Encoder::<T>::new();
    let traced = encoder.is_traced();
    let mut encode = move |records: &[T]| match encoder.encode(records) {
        Ok(Some(batch)) => Encoded::Rows(ArrowBatch(batch)),
        Ok(None) => Encoded::Unknown,
        Err(e) => Encoded::Failed(e.to_string()),
    };
    if traced {
        stream.map_partitions(move |part| {
            let records: Vec<T> = part.collect();
            [(index, encode(&records))]
        })
    } else {
        stream.transform(move |batch, _| vec![(index, encode(&batch))])
    }
}

#[derive(Clone, Debug)]
enum StaticKind {
    Csv,
    Parquet,
}

/// The tables of a query: streams (each batch's records) and static files.
/// Made by [`SqlStream::table`]; ended by [`sql`](Tables::sql) or
/// [`foreach_batch_df`](Tables::foreach_batch_df).
pub struct Tables<'s> {
    parts: Vec<DStream<'s, Part>>,
    names: Vec<String>,
    statics: Vec<(String, PathBuf, StaticKind)>,
}

impl<'s> Tables<'s> {
    /// Adds `stream` as the table `name`: each query sees the records of
    /// the same batch of both streams. The streams must have the same
    /// slide (the context fails to start otherwise, as with `union`).
    pub fn with_stream<T: Data>(mut self, name: &str, stream: &DStream<'s, T>) -> Self {
        self.parts.push(as_part(stream, self.names.len() as u32));
        self.names.push(name.to_string());
        self
    }

    /// Adds a CSV file (with a header line; or a directory of them) as the
    /// table `name`. It is registered when the first batch is queried (its
    /// columns read from the file then) and scanned by every query that
    /// uses it.
    pub fn with_csv(mut self, name: &str, path: impl Into<PathBuf>) -> Self {
        self.statics
            .push((name.to_string(), path.into(), StaticKind::Csv));
        self
    }

    /// Adds a Parquet file (or directory of files) as the table `name`,
    /// registered and scanned as [`with_csv`](Self::with_csv)'s.
    pub fn with_parquet(mut self, name: &str, path: impl Into<PathBuf>) -> Self {
        self.statics
            .push((name.to_string(), path.into(), StaticKind::Parquet));
        self
    }

    /// Runs `query` on every batch and gives its rows as a stream of `U`:
    /// the result's columns are matched to `U`'s fields by name (a tuple's
    /// by position); a one-column result can be any `U` (e.g. `String`).
    pub fn sql<U: Data>(self, query: &str) -> DStream<'s, U> {
        let query = query.to_string();
        let (parts, mut session) = self.into_session();
        parts.try_transform(move |parts, time| {
            let rows = session.run(parts, &query, |s| s.sql(&query)?.collect::<U>());
            match rows {
                Ok(rows) => Ok(rows.unwrap_or_default()),
                Err(e) => Err(Error::user("sql", time, e)),
            }
        })
    }

    /// Calls `f` with each batch (empty ones too, except before the first
    /// record of a type whose columns are traced from records) as a
    /// [`Frame`] of the first table, and the batch's time: Spark's `foreachRDD` with
    /// `rdd.toDF()` inside. [`Frame::sql`] queries every registered table.
    /// An `Err` stops the context with [`Error::User`]
    /// naming `foreach_batch_df` and the batch.
    pub fn foreach_batch_df<E>(self, mut f: impl FnMut(Frame, Time) -> Result<(), E> + 'static)
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let (parts, mut session) = self.into_session();
        let first = session.names[0].clone();
        parts.try_foreach_rdd(move |parts, time| {
            let frame = session.run(parts, "", |s| s.table(&first));
            match frame {
                Ok(Some(frame)) => {
                    f(frame, time).map_err(|e| Error::user("foreach_batch_df", time, e))
                }
                Ok(None) => Ok(()),
                Err(e) => Err(Error::user("foreach_batch_df", time, e)),
            }
        });
    }

    fn into_session(self) -> (DStream<'s, Part>, Session) {
        let (first, rest) = self.parts.split_first().expect("a first table");
        let parts = if rest.is_empty() {
            first.clone()
        } else {
            rest.iter().fold(first.clone(), |all, next| all.union(next))
        };
        let session = Session {
            names: self.names,
            statics: self.statics,
            state: None,
        };
        (parts, session)
    }
}

/// A DataFusion session kept across batches on the worker that queries.
struct Session {
    names: Vec<String>,
    statics: Vec<(String, PathBuf, StaticKind)>,
    state: Option<(SessionContext, Rc<tokio::runtime::Runtime>)>,
}

impl Session {
    /// Registers this batch's tables and runs `f` on them, a panic inside
    /// turned into [`SqlError::Panicked`]; `None` (and `f` not run) when a
    /// table's columns are not known yet (a type traced from records, none
    /// seen so far).
    fn run<R>(
        &mut self,
        parts: Vec<Part>,
        query: &str,
        f: impl FnOnce(&Frame) -> Result<R, SqlError>,
    ) -> Result<Option<R>, SqlError> {
        let mut tables: Vec<Vec<RecordBatch>> = vec![Vec::new(); self.names.len()];
        let mut unknown = vec![false; self.names.len()];
        for (index, part) in parts {
            match part {
                Encoded::Rows(batch) => tables[index as usize].push(batch.0),
                // No records of a type whose columns come from records:
                // nothing to query yet.
                Encoded::Unknown => unknown[index as usize] = true,
                Encoded::Failed(why) => return Err(SqlError::Records(why)),
            }
        }
        if tables.iter().zip(&unknown).any(|(t, u)| *u && t.is_empty()) {
            return Ok(None);
        }
        let partitions = tables.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let (ctx, rt) = self.state(partitions)?;
        for (name, batches) in self.names.iter().zip(tables) {
            let _ = ctx.deregister_table(name.as_str());
            // Columns not known yet: a table with none, and no rows.
            let schema = batches
                .first()
                .map_or_else(|| Arc::new(Schema::empty()), |b| b.schema());
            // Each worker's part is a partition of the table.
            let mut parts: Vec<Vec<RecordBatch>> = batches.into_iter().map(|b| vec![b]).collect();
            if parts.is_empty() {
                parts.push(Vec::new());
            }
            let table = MemTable::try_new(schema, parts)
                .map_err(|e| SqlError::Records(format!("table `{name}`: {e}")))?;
            ctx.register_table(name.as_str(), Arc::new(table))
                .map_err(|e| SqlError::Records(format!("table `{name}`: {e}")))?;
        }
        let base = Frame {
            df: ctx
                .read_empty()
                .map_err(|e| SqlError::Records(e.to_string()))?,
            source: String::new(),
            ctx,
            rt,
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&base))) {
            Ok(result) => result.map(Some),
            Err(panic) => Err(SqlError::Panicked {
                query: query.to_string(),
                message: panic_message(&*panic),
            }),
        }
    }

    /// The session, made at the first batch with as many threads and
    /// partitions as the batch has parts (the context's workers, at most
    /// the machine's cores), as the other workers wait for the query.
    fn state(
        &mut self,
        parts: usize,
    ) -> Result<(SessionContext, Rc<tokio::runtime::Runtime>), SqlError> {
        if let Some((ctx, rt)) = &self.state {
            return Ok((ctx.clone(), rt.clone()));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = parts.clamp(1, cores);
        let built = if threads == 1 {
            tokio::runtime::Builder::new_current_thread().build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("ember-sql")
                .build()
        };
        let rt =
            built.map_err(|e| SqlError::Records(format!("no runtime for the SQL engine: {e}")))?;
        let config = SessionConfig::new()
            .with_target_partitions(threads)
            .with_information_schema(true);
        let ctx = SessionContext::new_with_config(config);
        for (name, path, kind) in &self.statics {
            let location = path.to_string_lossy().to_string();
            let registered = match kind {
                StaticKind::Csv => {
                    rt.block_on(ctx.register_csv(name, &location, CsvReadOptions::new()))
                }
                StaticKind::Parquet => rt.block_on(ctx.register_parquet(
                    name,
                    &location,
                    ParquetReadOptions::default(),
                )),
            };
            registered.map_err(|source| SqlError::Static {
                name: name.clone(),
                path: location.clone(),
                source,
            })?;
        }
        let rt = Rc::new(rt);
        self.state = Some((ctx.clone(), rt.clone()));
        Ok((ctx, rt))
    }
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// `name: type` for each column, for error messages.
fn columns(schema: &Schema) -> String {
    let list: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect();
    format!("({})", list.join(", "))
}

/// A batch's DataFrame, with the session holding its tables: Spark's
/// `DataFrame` inside `foreachRDD`. Its methods run on the calling thread
/// and return when the result is complete.
pub struct Frame {
    df: DataFrame,
    /// The query (or `(table name)`) this frame came from, for errors.
    source: String,
    ctx: SessionContext,
    rt: Rc<tokio::runtime::Runtime>,
}

impl Frame {
    /// Runs `query` over this batch's tables (Spark's `spark.sql`).
    pub fn sql(&self, query: &str) -> Result<Frame, SqlError> {
        let df = self.guarded(query, || self.block_on(self.ctx.sql(query)))?;
        Ok(Frame {
            df,
            source: query.to_string(),
            ctx: self.ctx.clone(),
            rt: self.rt.clone(),
        })
    }

    /// The table `name` of this batch (a stream's records or a static file).
    pub fn table(&self, name: &str) -> Result<Frame, SqlError> {
        let source = format!("(table {name})");
        let df = self.guarded(&source, || self.block_on(self.ctx.table(name)))?;
        Ok(Frame {
            df,
            source,
            ctx: self.ctx.clone(),
            rt: self.rt.clone(),
        })
    }

    /// The result's record batches.
    pub fn batches(&self) -> Result<Vec<RecordBatch>, SqlError> {
        self.guarded(&self.source, || self.block_on(self.df.clone().collect()))
    }

    /// The rows as `U`s (columns matched by name, a tuple's by position).
    pub fn collect<U: serde::de::DeserializeOwned>(&self) -> Result<Vec<U>, SqlError> {
        let batches = self.batches()?;
        rows::decode(&batches).map_err(|reason| SqlError::Rows {
            query: self.source.clone(),
            columns: columns(self.df.schema().as_arrow()),
            reason,
        })
    }

    /// How many rows the result has.
    pub fn count(&self) -> Result<usize, SqlError> {
        self.guarded(&self.source, || self.block_on(self.df.clone().count()))
    }

    /// Runs `f`, its error or panic reported as [`SqlError`] quoting `query`.
    fn guarded<R>(
        &self,
        query: &str,
        f: impl FnOnce() -> Result<R, DataFusionError>,
    ) -> Result<R, SqlError> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(result) => result.map_err(|source| SqlError::Query {
                query: query.to_string(),
                source,
            }),
            Err(panic) => Err(SqlError::Panicked {
                query: query.to_string(),
                message: panic_message(&*panic),
            }),
        }
    }

    /// The column names, in order.
    pub fn columns(&self) -> Vec<String> {
        self.df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// Prints the first 20 rows as Spark's `show()` does, then an empty line.
    pub fn show(&self) -> Result<(), SqlError> {
        self.show_with(20, 20, false)
    }

    /// Prints the first `n` rows as Spark's `show(n)`.
    pub fn show_n(&self, n: usize) -> Result<(), SqlError> {
        self.show_with(n, 20, false)
    }

    /// Prints as Spark's `show(n, truncate, vertical)`: see [`show::show_string`].
    pub fn show_with(&self, n: usize, truncate: usize, vertical: bool) -> Result<(), SqlError> {
        use std::io::Write as _;
        let text = self.show_string(n, truncate, vertical)?;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{text}");
        let _ = stdout.flush();
        Ok(())
    }

    /// The text [`show_with`](Self::show_with) prints, without the final
    /// empty line.
    pub fn show_string(
        &self,
        n: usize,
        truncate: usize,
        vertical: bool,
    ) -> Result<String, SqlError> {
        let batches = self.guarded(&self.source, || {
            let limited = self.df.clone().limit(0, Some(n.saturating_add(1)))?;
            self.block_on(limited.collect())
        })?;
        Ok(show::show_string(
            &self.columns(),
            &batches,
            n,
            truncate,
            vertical,
        ))
    }

    /// The DataFusion DataFrame, for everything else its API offers (run
    /// its futures with [`block_on`](Self::block_on)).
    pub fn data_frame(&self) -> &DataFrame {
        &self.df
    }

    /// The DataFusion session holding this batch's tables.
    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }

    /// Runs a DataFusion future to completion on this thread.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }
}
