//! Writing batches: the connection, the statements, one transaction per
//! batch, and retries after connection failures.

use std::fmt::Write as _;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ember_core::Time;
use postgres::config::Host;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::{Client, Config, NoTls, Statement};

use crate::error::{Error, Result};
use crate::row::{sql_name, ColumnArray, Row, ToRow, Value};
use crate::sink::{Committed, Mode, PostgresSink};

/// Serialises creating the progress table across sinks and processes
/// (`CREATE TABLE IF NOT EXISTS` races on the catalog otherwise).
const PROGRESS_LOCK: i64 = 0x656d_6265_7270_6773; // "emberpgs"

/// The most parameters one statement may bind (PostgreSQL's protocol limit).
const MAX_PARAMS: usize = 65_535;

/// Why a step failed, and whether trying again may help.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) retryable: bool,
    /// What was attempted, what went wrong, and what to do.
    pub(crate) message: String,
    pub(crate) cause: Option<postgres::Error>,
}

impl Failure {
    /// A mistake no retry can fix.
    fn fatal(message: String) -> Self {
        Failure {
            retryable: false,
            message,
            cause: None,
        }
    }
}

/// Where in the life of a connection an error happened.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Opening the connection: no answer is a server not (yet) there.
    Connect,
    /// Statements on an open connection.
    Statement,
}

/// Describes a client error, decides whether to retry, and says what to do.
fn failure(sink: &PostgresSink, doing: &str, e: postgres::Error, phase: Phase) -> Failure {
    let mut message = format!("{doing}: ");
    let retryable = match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            let _ = write!(message, "{} (SQLSTATE {code})", db.message());
            if let Some(detail) = db.detail() {
                let _ = write!(message, "; detail: {detail}");
            }
            if let Some(hint) = db.hint() {
                let _ = write!(message, "; hint: {hint}");
            }
            if let Some(what) = advice(sink, code) {
                let _ = write!(message, ". {what}");
            }
            retryable_code(code)
        }
        None => {
            let mut source = std::error::Error::source(&e);
            let text = e.to_string();
            if source.is_some() && text.starts_with("error serializing parameter") {
                // The value's own error names the column and the record.
                if let Some(s) = source {
                    let _ = write!(message, "{s}");
                    source = s.source();
                }
            } else {
                let _ = write!(message, "{text}");
            }
            let mut io = false;
            while let Some(s) = source {
                let _ = write!(message, ": {s}");
                io |= s.is::<std::io::Error>();
                source = s.source();
            }
            if text.starts_with("error serializing parameter") {
                message.push_str(
                    ". Make the records' values fit the columns' types (see SqlValue for what \
                     goes where), or change the columns",
                );
                false
            } else if message.contains("TLS") {
                message.push_str(
                    ". The sink connects without TLS: use sslmode=disable or sslmode=prefer",
                );
                false
            } else {
                e.is_closed() || io || phase == Phase::Connect
            }
        }
    };
    Failure {
        retryable,
        message,
        cause: Some(e),
    }
}

/// Errors that a new connection or a later try can get past: connection
/// failures, a server shutting down or starting up, transaction conflicts,
/// exhausted resources.
fn retryable_code(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "57014" | "40001" | "40P01" | "55P03"
        )
}

/// What to fix, by SQLSTATE.
fn advice(sink: &PostgresSink, code: &str) -> Option<String> {
    let table = &sink.table;
    Some(match code {
        "42P01" => format!(
            "Create table `{table}` first, or give its DDL to the sink with .create_table_sql(..)"
        ),
        "42703" => format!("Check the column names given to the sink against table `{table}`"),
        "42P10" => match &sink.mode {
            Mode::Upsert { keys } => format!(
                "The key columns ({}) need a PRIMARY KEY or UNIQUE constraint on exactly them",
                keys.join(", ")
            ),
            Mode::Append => return None,
        },
        "42P07" => "create_table_sql runs at every start: use CREATE TABLE IF NOT EXISTS".into(),
        "42804" | "42846" => format!(
            "The records' values do not match the types of `{table}`'s columns: change the \
             column types or map the values in the stream"
        ),
        "42501" => format!(
            "Grant the sink's user INSERT and UPDATE on `{table}` and on the progress table \
             `{}` (and CREATE, for the sink to create it)",
            sink.progress_table
        ),
        "23505" if sink.mode == Mode::Append => format!(
            "A record repeats a unique key of `{table}`: for rows that replace each other, use \
             PostgresSink::upsert"
        ),
        "28000" | "28P01" => {
            "Check the user and password in the connection string (and pg_hba.conf)".into()
        }
        "3D000" => "Create the database, or fix its name in the connection string".into(),
        c if c.starts_with("23") => format!(
            "A record breaks a constraint of `{table}` (NOT NULL, UNIQUE, CHECK or FOREIGN \
             KEY): fix the records or the constraint"
        ),
        c if c.starts_with("22") => format!(
            "A value does not fit its column in `{table}`: widen the column or fix the records"
        ),
        c if c.starts_with("42") => {
            "Check the SQL: create_table_sql, and the table and column names".into()
        }
        _ => return None,
    })
}

/// `name` as a quoted SQL identifier, unless it is quoted already.
pub(crate) fn quote_ident(name: &str) -> String {
    if name.starts_with('"') {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A table name, schema-qualified or not, with each part quoted.
pub(crate) fn quote_table(name: &str) -> String {
    if name.contains('"') {
        name.to_string()
    } else {
        name.split('.')
            .map(quote_ident)
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// A column name as the catalog stores it.
fn unquote(name: &str) -> String {
    match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => name.to_string(),
    }
}

/// The server's address for messages: never the password.
fn server(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

fn config(sink: &PostgresSink) -> Result<Config, Failure> {
    let mut config: Config = sink.conn.parse().map_err(|e| {
        Failure::fatal(format!(
            "the connection string is invalid ({e}): use a URL like \
             postgres://user@host:5432/db or key=value pairs"
        ))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("ember");
    }
    Ok(config)
}

/// Opens a connection.
fn connect(sink: &PostgresSink) -> Result<Client, Failure> {
    let config = config(sink)?;
    config.connect(NoTls).map_err(|e| {
        let doing = format!("connecting to {}", server(&config));
        failure(sink, &doing, e, Phase::Connect)
    })
}

/// The newest batch `sink` committed.
pub(crate) fn last_committed(sink: &PostgresSink) -> Result<Option<Committed>, Failure> {
    let mut client = connect(sink)?;
    let sql = format!(
        "SELECT batch_time, offsets FROM {} WHERE sink = $1 ORDER BY batch_time DESC LIMIT 1",
        quote_table(&sink.progress_table)
    );
    match client.query_opt(&sql, &[&sink.name()]) {
        Ok(row) => Ok(row.map(|r| Committed {
            batch_time: Time::from_millis(r.get::<_, i64>(0) as u64),
            offsets: r.get(1),
        })),
        Err(e) if e.code().map(|c| c.code()) == Some("42P01") => Ok(None),
        Err(e) => Err(failure(
            sink,
            "reading the progress table",
            e,
            Phase::Statement,
        )),
    }
}

/// One open connection with its prepared statements.
struct Conn {
    client: Client,
    /// Records the batch in the progress table.
    progress: Statement,
    /// Inserts the rows: one array per column (`unnest`), or a full chunk of
    /// rows as a `VALUES` list when a column is an array itself.
    insert: Statement,
    /// `Some(rows per statement)` when `insert` is a `VALUES` list.
    values_rows: Option<usize>,
    /// The cast of each column's parameter (its type, without modifiers).
    casts: Vec<String>,
}

/// What a batch's transaction did.
enum Outcome {
    Written(usize),
    /// Append mode: the progress table says an earlier run wrote it.
    AlreadyWritten,
}

/// Writes a sink's batches: lives in the output operation of one worker.
pub(crate) struct Writer {
    sink: PostgresSink,
    conn: Option<Conn>,
    ddl_done: bool,
    server: String,
}

impl Writer {
    pub(crate) fn new(sink: PostgresSink) -> Self {
        let server = config(&sink).map(|c| server(&c)).unwrap_or_default();
        Writer {
            sink,
            conn: None,
            ddl_done: false,
            server,
        }
    }

    /// Writes one batch in one transaction, retrying after connection
    /// failures.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] when the batch cannot be written (which stops
    /// the context): the message names the sink, the batch and what to fix.
    pub(crate) fn write_batch<T: ToRow>(
        &mut self,
        batch: &[T],
        time: Time,
        offsets: Option<&str>,
    ) -> Result<(), Error> {
        let name = self.sink.name().to_string();
        let width = self.sink.columns.len();
        let mut row = Row::default();
        row.values.reserve(batch.len() * width);
        for (i, record) in batch.iter().enumerate() {
            record.to_row(&mut row);
            let got = row.values.len() - i * width;
            if got != width {
                return Err(Error::Postgres {
                    sink: name,
                    message: format!(
                        "batch {time} not written: record {i} has {got} value(s) but the sink \
                         has {width} column(s) ({}): make ToRow push one value per column",
                        self.sink.columns.join(", ")
                    ),
                    cause: None,
                });
            }
        }
        let retry = self.sink.retry.clone();
        let first = Instant::now();
        let mut retries = 0u32;
        let mut pause = retry.initial;
        loop {
            let began = Instant::now();
            match self.try_write(&row.values, time, offsets) {
                Ok(Outcome::Written(rows)) => {
                    if retries > 0 {
                        tracing::info!(
                            sink = %name,
                            "PostgreSQL sink `{name}`: batch {time} written after {retries} \
                             retries"
                        );
                    }
                    tracing::debug!(
                        sink = %name,
                        rows,
                        "PostgreSQL sink `{name}`: batch {time} committed ({rows} rows in {:?})",
                        began.elapsed()
                    );
                    return Ok(());
                }
                Ok(Outcome::AlreadyWritten) => {
                    tracing::info!(
                        sink = %name,
                        "PostgreSQL sink `{name}`: batch {time} was committed before (an \
                         earlier run): skipped"
                    );
                    return Ok(());
                }
                Err(f) => {
                    // A new try starts on a new connection.
                    self.conn = None;
                    if !f.retryable {
                        return Err(Error::Postgres {
                            sink: name,
                            message: format!("batch {time} not written: {}", f.message),
                            cause: f.cause,
                        });
                    }
                    if retries >= retry.max_retries || first.elapsed() + pause > retry.retry_for {
                        let tries = match retries {
                            0 => "1 try".to_string(),
                            n => format!("{} tries", n + 1),
                        };
                        return Err(Error::Postgres {
                            sink: name,
                            message: format!(
                                "gave up on batch {time} after {tries} in {:.1?}: {}. Is the \
                                 server at {} up? Allow more time with .retry_for(..) or more \
                                 tries with .retries(..)",
                                first.elapsed(),
                                f.message,
                                self.server
                            ),
                            cause: f.cause,
                        });
                    }
                    retries += 1;
                    tracing::warn!(
                        sink = %name,
                        retry = retries,
                        "PostgreSQL sink `{name}`: batch {time} not written ({}); retry \
                         {retries} in {pause:?}",
                        f.message
                    );
                    thread::sleep(pause);
                    pause = (pause * 2).min(retry.max_backoff);
                }
            }
        }
    }

    /// One try: the progress row and every row of the batch in one
    /// transaction.
    fn try_write(
        &mut self,
        values: &[Value<'_>],
        time: Time,
        offsets: Option<&str>,
    ) -> Result<Outcome, Failure> {
        if self.conn.is_none() {
            self.conn = Some(self.open()?);
        }
        let sink = &self.sink;
        let Some(conn) = self.conn.as_mut() else {
            unreachable!("opened above")
        };
        let width = sink.columns.len();
        let rows = values.len() / width;
        let ms = i64::try_from(time.milliseconds()).unwrap_or(i64::MAX);
        let at = |doing: &str| format!("{doing} (batch {time})");
        let mut tx = conn
            .client
            .transaction()
            .map_err(|e| failure(sink, &at("beginning a transaction"), e, Phase::Statement))?;
        let recorded = tx
            .execute(&conn.progress, &[&sink.name(), &ms, &offsets])
            .map_err(|e| {
                let doing = format!("recording the batch in `{}`", sink.progress_table);
                failure(sink, &at(&doing), e, Phase::Statement)
            })?;
        if recorded == 0 {
            return Ok(Outcome::AlreadyWritten);
        }
        let chunk = match conn.values_rows {
            Some(n) => n,
            None => sink.chunk_size,
        };
        let mut start = 0;
        while start < rows {
            let end = (start + chunk).min(rows);
            let part = &values[start * width..end * width];
            let done = match conn.values_rows {
                None => {
                    let columns: Vec<ColumnArray<'_, '_>> = (0..width)
                        .map(|c| ColumnArray {
                            values: part,
                            column: c,
                            width,
                            name: &sink.columns[c],
                            first_row: start,
                        })
                        .collect();
                    let params: Vec<&(dyn ToSql + Sync)> =
                        columns.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
                    tx.execute(&conn.insert, &params)
                }
                Some(full) => {
                    let named: Vec<Named<'_, '_>> = part
                        .iter()
                        .enumerate()
                        .map(|(i, value)| Named {
                            value,
                            column: &sink.columns[i % width],
                            row: start + i / width,
                        })
                        .collect();
                    let params: Vec<&(dyn ToSql + Sync)> =
                        named.iter().map(|n| n as &(dyn ToSql + Sync)).collect();
                    if end - start == full {
                        tx.execute(&conn.insert, &params)
                    } else {
                        let sql = insert_sql(sink, &conn.casts, Some(end - start));
                        tx.prepare(&sql)
                            .and_then(|statement| tx.execute(&statement, &params))
                    }
                }
            };
            done.map_err(|e| {
                let doing = format!("inserting rows {start}..{end} into `{}`", sink.table);
                failure(sink, &at(&doing), e, Phase::Statement)
            })?;
            start = end;
        }
        tx.commit()
            .map_err(|e| failure(sink, &at("committing"), e, Phase::Statement))?;
        Ok(Outcome::Written(rows))
    }

    /// Connects, runs the DDL, and prepares the statements.
    fn open(&mut self) -> Result<Conn, Failure> {
        let sink = &self.sink;
        let mut client = connect(sink)?;
        tracing::info!(
            sink = %sink.name(),
            "PostgreSQL sink `{}`: connected to {}",
            sink.name(),
            self.server
        );
        if !self.ddl_done {
            if let Some(sql) = &sink.create_table_sql {
                client
                    .batch_execute(sql)
                    .map_err(|e| failure(sink, "running create_table_sql", e, Phase::Statement))?;
            }
            self.ddl_done = true;
        }
        ensure_progress_table(sink, &mut client)?;
        let columns = describe(sink, &mut client)?;
        let casts: Vec<String> = columns.iter().map(|(cast, _)| cast.clone()).collect();
        let values_rows = columns
            .iter()
            .any(|(_, is_array)| *is_array)
            .then(|| sink.chunk_size.min(MAX_PARAMS / sink.columns.len()).max(1));
        let prepare = |client: &mut Client, sql: &str, doing: &str| {
            client
                .prepare(sql)
                .map_err(|e| failure(sink, doing, e, Phase::Statement))
        };
        let insert = prepare(
            &mut client,
            &insert_sql(sink, &casts, values_rows),
            &format!("preparing the INSERT into `{}`", sink.table),
        )?;
        let progress = prepare(
            &mut client,
            &progress_sql(sink),
            &format!("preparing the INSERT into `{}`", sink.progress_table),
        )?;
        Ok(Conn {
            client,
            progress,
            insert,
            values_rows,
            casts,
        })
    }
}

/// Creates the progress table if it is missing.
fn ensure_progress_table(sink: &PostgresSink, client: &mut Client) -> Result<(), Failure> {
    let table = quote_table(&sink.progress_table);
    let doing = format!("creating the progress table `{}`", sink.progress_table);
    let fail = |e| failure(sink, &doing, e, Phase::Statement);
    // Looked for first: creating needs a privilege that writing does not.
    match client.batch_execute(&format!("SELECT 1 FROM {table} LIMIT 0")) {
        Ok(()) => return Ok(()),
        Err(e) if e.code().map(|c| c.code()) == Some("42P01") => {}
        Err(e) => return Err(fail(e)),
    }
    let mut tx = client.transaction().map_err(fail)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PROGRESS_LOCK])
        .map_err(fail)?;
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            sink TEXT NOT NULL,
            batch_time BIGINT NOT NULL,
            written_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            offsets TEXT,
            PRIMARY KEY (sink, batch_time)
        )"
    ))
    .map_err(fail)?;
    tx.commit().map_err(fail)
}

/// Each sink column's type name (for casts) and whether it is an array.
fn describe(sink: &PostgresSink, client: &mut Client) -> Result<Vec<(String, bool)>, Failure> {
    let doing = format!("reading the columns of `{}`", sink.table);
    // Types without modifiers (varchar, not varchar(20)): an explicit cast
    // to varchar(20) would truncate silently, while the INSERT's own
    // assignment checks the length. With -1, not NULL, `char(n)` is `bpchar`
    // and `bit(n)` is `"bit"`, not their one-character forms.
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, -1),
                    COALESCE(b.typcategory, t.typcategory) = 'A'
             FROM pg_attribute a
             JOIN pg_type t ON t.oid = a.atttypid
             LEFT JOIN pg_type b ON b.oid = NULLIF(t.typbasetype, 0)
             WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[&quote_table(&sink.table)],
        )
        .map_err(|e| failure(sink, &doing, e, Phase::Statement))?;
    let found: Vec<(String, String, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    sink.columns
        .iter()
        .map(|c| {
            let name = unquote(c);
            match found.iter().find(|(n, _, _)| *n == name) {
                Some((_, cast, is_array)) => Ok((cast.clone(), *is_array)),
                None => Err(Failure::fatal(format!(
                    "{doing}: table `{}` has no column `{name}` (its columns: {}). Fix the \
                     column names given to the sink (they are case-sensitive)",
                    sink.table,
                    found
                        .iter()
                        .map(|(n, _, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            }
        })
        .collect()
}

/// The statement recording a batch in the progress table: in append mode
/// it inserts nothing (0 rows) when the batch is there already.
fn progress_sql(sink: &PostgresSink) -> String {
    let on_conflict = match sink.mode {
        Mode::Append => "DO NOTHING",
        Mode::Upsert { .. } => {
            "DO UPDATE SET written_at = EXCLUDED.written_at, offsets = EXCLUDED.offsets"
        }
    };
    format!(
        "INSERT INTO {} (sink, batch_time, written_at, offsets) VALUES ($1, $2, now(), $3) \
         ON CONFLICT (sink, batch_time) {on_conflict}",
        quote_table(&sink.progress_table)
    )
}

/// The statement inserting a chunk of rows: from one array per column
/// (`values_rows` is `None`), or from a `VALUES` list of that many rows.
/// An upsert keeps the last row of each key in the chunk: `ON CONFLICT DO
/// UPDATE` cannot touch a row twice in one statement.
fn insert_sql(sink: &PostgresSink, casts: &[String], values_rows: Option<usize>) -> String {
    let width = sink.columns.len();
    let c = |i: usize| format!("c{i}");
    let all: Vec<String> = (0..width).map(c).collect();
    let upsert = matches!(sink.mode, Mode::Upsert { .. });
    let ord = if upsert { ", ord" } else { "" };
    let source = match values_rows {
        None => {
            let arrays: Vec<String> = casts
                .iter()
                .enumerate()
                .map(|(i, t)| format!("${}::{t}[]", i + 1))
                .collect();
            let ordinality = if upsert { " WITH ORDINALITY" } else { "" };
            format!(
                "unnest({}){ordinality} AS u({}{ord})",
                arrays.join(", "),
                all.join(", ")
            )
        }
        Some(rows) => {
            let mut list = String::new();
            for r in 0..rows {
                if r > 0 {
                    list.push_str(", ");
                }
                list.push('(');
                for (i, t) in casts.iter().enumerate() {
                    let _ = write!(list, "${}::{t}, ", r * width + i + 1);
                }
                if upsert {
                    let _ = write!(list, "{}", r + 1);
                } else {
                    list.truncate(list.len() - 2);
                }
                list.push(')');
            }
            format!("(VALUES {list}) AS u({}{ord})", all.join(", "))
        }
    };
    let columns: Vec<String> = sink.columns.iter().map(|n| quote_ident(n)).collect();
    let table = quote_table(&sink.table);
    match &sink.mode {
        Mode::Append => format!(
            "INSERT INTO {table} ({}) SELECT {} FROM {source}",
            columns.join(", "),
            all.join(", ")
        ),
        Mode::Upsert { keys } => {
            let key_at: Vec<usize> = keys
                .iter()
                .map(|k| sink.columns.iter().position(|n| n == k).unwrap_or(0))
                .collect();
            let key_cols: Vec<String> = key_at.iter().map(|&i| c(i)).collect();
            let updates: Vec<String> = (0..width)
                .filter(|i| !key_at.contains(i))
                .map(|i| format!("{0} = EXCLUDED.{0}", columns[i]))
                .collect();
            let action = if updates.is_empty() {
                "DO NOTHING".to_string()
            } else {
                format!("DO UPDATE SET {}", updates.join(", "))
            };
            let conflict: Vec<String> = keys.iter().map(|k| quote_ident(k)).collect();
            format!(
                "INSERT INTO {table} ({}) SELECT DISTINCT ON ({keys}) {} FROM {source} \
                 ORDER BY {keys}, ord DESC ON CONFLICT ({}) {action}",
                columns.join(", "),
                all.join(", "),
                conflict.join(", "),
                keys = key_cols.join(", ")
            )
        }
    }
}

/// A value in a `VALUES` list, with its column and row for error messages.
#[derive(Debug)]
struct Named<'v, 'a> {
    value: &'v Value<'a>,
    column: &'v str,
    row: usize,
}

impl ToSql for Named<'_, '_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.value.to_sql(ty, out).map_err(|e| {
            let (column, row, ty) = (self.column, self.row, sql_name(ty));
            format!("column `{column}` ({ty}), record {row} of the batch: {e}").into()
        })
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl PostgresSink {
    /// The newest batch this sink committed, with the offsets stored with it
    /// (see [`PostgresExt::save_to_postgres_with`](crate::PostgresExt::save_to_postgres_with)); `None` if none is
    /// recorded. A program can resume its source from there, Spark's
    /// "offsets in your own data store".
    ///
    /// ```no_run
    /// use ember_postgres::PostgresSink;
    ///
    /// let sink = PostgresSink::append("postgres://ember@localhost/analytics", "events", &["id"]);
    /// if let Some(last) = sink.last_committed()? {
    ///     println!("resume after {}: {:?}", last.batch_time, last.offsets);
    /// }
    /// # Ok::<(), ember_postgres::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a bad connection string, [`Error::Postgres`]
    /// when the server cannot be reached or the query fails.
    pub fn last_committed(&self) -> Result<Option<Committed>> {
        self.validate()?;
        last_committed(self).map_err(|f| Error::Postgres {
            sink: self.name().to_string(),
            message: f.message,
            cause: f.cause,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_once() {
        assert_eq!(quote_ident("word"), "\"word\"");
        assert_eq!(quote_ident("\"Word\""), "\"Word\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_table("analytics.events"), "\"analytics\".\"events\"");
        assert_eq!(quote_table("\"my.table\""), "\"my.table\"");
        assert_eq!(unquote("\"Word\""), "Word");
        assert_eq!(unquote("word"), "word");
    }

    #[test]
    fn upsert_sql_keeps_the_last_row_per_key() {
        let sink = PostgresSink::upsert("host=x", "wc", &["word", "count"], &["word"]);
        let casts = vec!["text".to_string(), "bigint".to_string()];
        assert_eq!(
            insert_sql(&sink, &casts, None),
            "INSERT INTO \"wc\" (\"word\", \"count\") SELECT DISTINCT ON (c0) c0, c1 FROM \
             unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS u(c0, c1, ord) ORDER BY c0, \
             ord DESC ON CONFLICT (\"word\") DO UPDATE SET \"count\" = EXCLUDED.\"count\""
        );
        assert_eq!(
            insert_sql(&sink, &casts, Some(2)),
            "INSERT INTO \"wc\" (\"word\", \"count\") SELECT DISTINCT ON (c0) c0, c1 FROM \
             (VALUES ($1::text, $2::bigint, 1), ($3::text, $4::bigint, 2)) AS u(c0, c1, ord) \
             ORDER BY c0, ord DESC ON CONFLICT (\"word\") DO UPDATE SET \"count\" = \
             EXCLUDED.\"count\""
        );
        let keys_only = PostgresSink::upsert("host=x", "seen", &["id"], &["id"]);
        assert!(insert_sql(&keys_only, &casts[..1], None).ends_with("DO NOTHING"));
    }

    #[test]
    fn append_sql_inserts_the_arrays_or_values() {
        let sink = PostgresSink::append("host=x", "s.ev", &["id", "tags"]);
        let casts = vec!["bigint".to_string(), "text".to_string()];
        assert_eq!(
            insert_sql(&sink, &casts, None),
            "INSERT INTO \"s\".\"ev\" (\"id\", \"tags\") SELECT c0, c1 FROM \
             unnest($1::bigint[], $2::text[]) AS u(c0, c1)"
        );
        let casts = vec!["bigint".to_string(), "text[]".to_string()];
        assert_eq!(
            insert_sql(&sink, &casts, Some(2)),
            "INSERT INTO \"s\".\"ev\" (\"id\", \"tags\") SELECT c0, c1 FROM (VALUES \
             ($1::bigint, $2::text[]), ($3::bigint, $4::text[])) AS u(c0, c1)"
        );
    }

    #[test]
    fn progress_sql_skips_or_replaces() {
        let append = PostgresSink::append("host=x", "t", &["a"]);
        assert!(progress_sql(&append).ends_with("ON CONFLICT (sink, batch_time) DO NOTHING"));
        let upsert = PostgresSink::upsert("host=x", "t", &["a"], &["a"]).progress_table("p");
        let sql = progress_sql(&upsert);
        assert!(sql.starts_with("INSERT INTO \"p\" "), "{sql}");
        assert!(sql.contains("DO UPDATE SET written_at"), "{sql}");
    }

    #[test]
    fn connection_failures_are_retried_and_mistakes_are_not() {
        for code in ["08006", "57P01", "57P03", "40001", "53300"] {
            assert!(retryable_code(code), "{code}");
        }
        for code in ["42P01", "42703", "23505", "22003", "28P01", "3D000"] {
            assert!(!retryable_code(code), "{code}");
        }
    }

    #[test]
    fn a_record_with_too_few_values_fails_before_connecting() {
        struct One;
        impl ToRow for One {
            fn to_row<'a>(&'a self, row: &mut Row<'a>) {
                row.push_null();
            }
        }
        // Nothing listens there: the check comes first.
        let sink = PostgresSink::append("postgres://u@127.0.0.1:1/db", "t", &["a", "b"]);
        let e = Writer::new(sink)
            .write_batch(&[One], Time::from_millis(1000), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("record 0 has 1 value(s) but the sink has 2 column(s) (a, b)"),
            "{e}"
        );
    }

    #[test]
    fn the_server_is_named_without_the_password() {
        let c: Config = "postgres://u:secret@db.example:6543/app".parse().unwrap();
        assert_eq!(server(&c), "db.example:6543/app");
    }
}
