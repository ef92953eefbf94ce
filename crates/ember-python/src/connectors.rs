//! The connectors and outputs beyond PySpark's core: Kafka's direct stream
//! and sink, the Kinesis stream, the PostgreSQL sink and the live
//! dashboard, for Python streams.
//!
//! Records are checked before anything is written: a record the output
//! cannot take stops the context with a `TypeError` naming it, and the
//! batch is not written in part.

use std::collections::BTreeMap;

use ember::DStream;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::value::Value;

/// A dashboard: the pairs' keys by value, or the records as text.
pub(crate) fn dashboard(stream: &DStream<'_, Value>, title: &str, pairs: bool) {
    if pairs {
        let checked = stream.try_map_partitions(|part| {
            part.map(|v| match v.into_pair() {
                Ok((k, n)) if n.as_f64().is_some() => Ok((k, n)),
                Ok((_, n)) => Err(PyTypeError::new_err(format!(
                    "toDashboard needs (key, number) pairs, got the value {}",
                    n.describe()
                ))),
                Err(bad) => Err(PyTypeError::new_err(format!(
                    "toDashboard needs (key, number) pairs, got {}",
                    bad.describe()
                ))),
            })
            .collect::<Result<Vec<_>, PyErr>>()
        });
        checked.to_dashboard(title);
    } else {
        stream.to_dashboard_records(title);
    }
}

impl ember::DashboardValue for Value {
    fn as_f64(&self) -> f64 {
        Value::as_f64(self).unwrap_or(f64::NAN)
    }
}

/// The settings of a Kafka output or input: a dict of librdkafka keys.
pub(crate) fn settings(args: &Bound<'_, PyDict>, name: &str) -> PyResult<BTreeMap<String, String>> {
    match args.get_item(name)? {
        Some(d) if !d.is_none() => d.extract(),
        _ => Ok(BTreeMap::new()),
    }
}

/// An HTTP stream: each JSON line as text, or each Server-Sent Event as
/// `(id, event, data)` (id None when the stream set none).
#[cfg(feature = "http-stream")]
pub(crate) fn http_stream<'s>(
    s: &ember::StreamingScope<'s>,
    url: &str,
    events: bool,
    headers: &BTreeMap<String, String>,
    write_ahead_log: bool,
) -> DStream<'s, Value> {
    use ember::http::{json_lines, server_sent_events};
    let options = ember::ReceiverOptions::default().write_ahead_log(write_ahead_log);
    if events {
        let mut r = server_sent_events(url);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        s.receiver_stream_with(r, options).map(|e| {
            Value::Tuple(vec![
                e.id.map(Value::Str).unwrap_or(Value::None),
                Value::Str(e.event),
                Value::Str(e.data),
            ])
        })
    } else {
        let mut r = json_lines(url);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        s.receiver_stream_with(r, options).map(Value::Str)
    }
}

/// The Kinesis stream: each record's data as bytes (Python decodes it).
/// `params`: `stream`, `endpoint`, `region`, `initial` (`latest`,
/// `trim_horizon` or `at_timestamp`), `timestamp` (seconds since the epoch),
/// `key_id` and `secret`.
#[cfg(feature = "kinesis")]
pub(crate) fn kinesis_stream<'s>(
    s: &ember::StreamingScope<'s>,
    params: &BTreeMap<String, String>,
) -> PyResult<DStream<'s, Value>> {
    use ember::kinesis::{create_stream, InitialPosition, KinesisParams};
    use pyo3::exceptions::PyValueError;
    let get = |k: &str| params.get(k).filter(|v| !v.is_empty());
    let stream = get("stream").ok_or_else(|| PyValueError::new_err("streamName is needed"))?;
    let mut kp = KinesisParams::new(stream);
    if let Some(e) = get("endpoint") {
        kp = kp.endpoint(e);
    }
    if let Some(r) = get("region") {
        kp = kp.region(r);
    }
    if let (Some(id), Some(secret)) = (get("key_id"), get("secret")) {
        kp = kp.credentials(id, secret);
    }
    let initial = match get("initial").map(String::as_str) {
        None | Some("latest") => InitialPosition::Latest,
        Some("trim_horizon") => InitialPosition::TrimHorizon,
        Some("at_timestamp") => {
            let secs: f64 = get("timestamp")
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| PyValueError::new_err("AT_TIMESTAMP needs a timestamp"))?;
            InitialPosition::AtTimestamp(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(secs.max(0.0)),
            )
        }
        Some(other) => {
            return Err(PyValueError::new_err(format!(
                "initialPositionInStream: unknown position {other}"
            )))
        }
    };
    kp = kp.initial_position(initial);
    Ok(create_stream(s, kp).map(|r| Value::Bytes(r.data)))
}

#[cfg(feature = "kafka")]
pub(crate) mod kafka {
    use super::*;
    use ember::kafka::{create_direct_stream, KafkaExt, KafkaParams, KafkaSink, Subscribe};
    use ember::StreamingScope;
    use pyo3::exceptions::PyValueError;

    /// Text or bytes as bytes (text as UTF-8); anything else is refused.
    fn bytes_of(v: &Value, what: &str) -> PyResult<Vec<u8>> {
        match v {
            Value::Bytes(b) => Ok(b.clone()),
            Value::Str(s) => Ok(s.as_bytes().to_vec()),
            other => Err(PyTypeError::new_err(format!(
                "saveToKafka: the {what} must be str or bytes, got {}",
                other.describe()
            ))),
        }
    }

    /// Kafka's direct stream: each record as
    /// `(topic, partition, offset, key, value)`, key and value as bytes or
    /// None; Python decodes them.
    pub(crate) fn direct_stream<'s>(
        s: &StreamingScope<'s>,
        topics: &[String],
        params: &BTreeMap<String, String>,
    ) -> PyResult<DStream<'s, Value>> {
        let brokers = params
            .get("bootstrap.servers")
            .or_else(|| params.get("metadata.broker.list"))
            .ok_or_else(|| {
                PyValueError::new_err(
                    "kafkaParams needs \"bootstrap.servers\" (or \"metadata.broker.list\")",
                )
            })?;
        let mut kp = KafkaParams::new(brokers.clone());
        for (k, v) in params {
            if k == "metadata.broker.list" {
                continue;
            }
            if k == "auto.offset.reset" && v == "smallest" {
                kp = kp.set(k, "earliest");
            } else if k == "auto.offset.reset" && v == "largest" {
                kp = kp.set(k, "latest");
            } else {
                kp = kp.set(k.clone(), v.clone());
            }
        }
        let stream = create_direct_stream(s, Subscribe::topics(topics.to_vec()), kp);
        Ok(stream.records().map(|r| {
            let bytes = |b: Option<Vec<u8>>| b.map(Value::Bytes).unwrap_or(Value::None);
            Value::Tuple(vec![
                Value::Str(r.topic.clone()),
                Value::Int(i64::from(r.partition)),
                Value::Int(r.offset),
                bytes(r.key.clone()),
                bytes(r.value.clone()),
            ])
        }))
    }

    /// Writes each record to `topic`: a `(key, value)` pair or a value, as
    /// str (UTF-8) or bytes.
    pub(crate) fn sink(
        stream: &DStream<'_, Value>,
        brokers: &str,
        topic: &str,
        config: &BTreeMap<String, String>,
    ) {
        let mut sink = KafkaSink::new(brokers, topic);
        for (k, v) in config {
            sink = sink.set(k.clone(), v.clone());
        }
        let checked = stream.try_map_partitions(|part| {
            part.map(|v| match v {
                Value::Tuple(kv) if kv.len() == 2 => {
                    let key = match &kv[0] {
                        Value::None => None,
                        k => Some(bytes_of(k, "key")?),
                    };
                    Ok((key, bytes_of(&kv[1], "value")?))
                }
                v => Ok((None, bytes_of(&v, "record")?)),
            })
            .collect::<Result<Vec<_>, PyErr>>()
        });
        checked.save_to_kafka(sink, |(k, v)| (k.clone(), v.clone()));
    }
}

#[cfg(feature = "postgres")]
pub(crate) mod postgres {
    use super::*;
    use ember::postgres::{PostgresExt, PostgresSink, Row, ToRow};
    use serde::{Deserialize, Serialize};

    /// One column value of a row.
    #[derive(Clone, Debug, Serialize, Deserialize)]
    enum Cell {
        Null,
        Bool(bool),
        Int(i64),
        Float(f64),
        Text(String),
        Bytes(Vec<u8>),
    }

    /// A record checked to be a flat tuple of column values.
    #[derive(Clone, Debug, Serialize, Deserialize)]
    struct SqlRow(Vec<Cell>);

    impl ToRow for SqlRow {
        fn to_row<'a>(&'a self, row: &mut Row<'a>) {
            for cell in &self.0 {
                match cell {
                    Cell::Null => row.push_null(),
                    Cell::Bool(b) => row.push(b),
                    Cell::Int(i) => row.push(i),
                    Cell::Float(f) => row.push(f),
                    Cell::Text(s) => row.push(s),
                    Cell::Bytes(b) => row.push(b),
                }
            }
        }
    }

    fn cell(v: Value) -> Result<Cell, Value> {
        Ok(match v {
            Value::None => Cell::Null,
            Value::Bool(b) => Cell::Bool(b),
            Value::Int(i) => Cell::Int(i),
            Value::Float(f) => Cell::Float(f),
            Value::Str(s) => Cell::Text(s),
            Value::Bytes(b) => Cell::Bytes(b),
            other => return Err(other),
        })
    }

    /// Writes each record, a tuple with one value per column (a single
    /// value for one column), exactly once per batch.
    pub(crate) fn sink(
        stream: &DStream<'_, Value>,
        url: &str,
        table: &str,
        columns: &[String],
        keys: Option<&[String]>,
        create_sql: Option<&str>,
    ) {
        let cols: Vec<&str> = columns.iter().map(String::as_str).collect();
        let mut sink = match keys {
            Some(keys) => {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                PostgresSink::upsert(url, table, &cols, &keys)
            }
            None => PostgresSink::append(url, table, &cols),
        };
        if let Some(sql) = create_sql {
            sink = sink.create_table_sql(sql);
        }
        let width = columns.len();
        let checked = stream.try_map_partitions(move |part| {
            part.map(|v| {
                let values = match v {
                    Value::Tuple(items) => items,
                    single if width == 1 => vec![single],
                    other => {
                        return Err(PyTypeError::new_err(format!(
                            "saveToPostgres needs tuples of {width} values, got {}",
                            other.describe()
                        )))
                    }
                };
                if values.len() != width {
                    return Err(PyTypeError::new_err(format!(
                        "saveToPostgres needs tuples of {width} values (one per column), got {}",
                        values.len()
                    )));
                }
                let cells = values
                    .into_iter()
                    .map(|v| {
                        cell(v).map_err(|bad| {
                            PyTypeError::new_err(format!(
                                "saveToPostgres takes None, bool, int (64-bit), float, str and \
                                 bytes columns, got {}",
                                bad.describe()
                            ))
                        })
                    })
                    .collect::<PyResult<Vec<_>>>()?;
                Ok(SqlRow(cells))
            })
            .collect::<Result<Vec<_>, PyErr>>()
        });
        checked.save_to_postgres(sink);
    }
}
