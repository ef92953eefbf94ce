//! Records to Arrow record batches and back, through serde (serde_arrow):
//! a struct's fields become columns, a tuple's `_1`, `_2`, … as Spark's
//! `toDF()` names them, and any other record one column named `value`.

use std::marker::PhantomData;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use serde_arrow::schema::{SchemaLike, TracingOptions};

use crate::SqlError;

/// A record as one column named `value`, for records that are not structs.
#[derive(Serialize, Deserialize)]
struct Value<T> {
    value: T,
}

/// How records of a type lay out as columns.
#[derive(Clone, Debug)]
enum Shape {
    /// A struct (or tuple): its fields are the columns. `names` are the
    /// columns' names as shown (a tuple's `0` becomes `_1`).
    Fields {
        traced: Vec<FieldRef>,
        names: Vec<String>,
    },
    /// Anything else: one column, `value`.
    Value { traced: Vec<FieldRef> },
}

/// Turns batches of `T` into record batches with one schema.
pub(crate) struct Encoder<T> {
    /// `None` until known: a type serde_arrow cannot trace from the type
    /// alone is traced from the first non-empty batch.
    shape: Option<Shape>,
    _records: PhantomData<fn(T)>,
}

fn options() -> TracingOptions {
    TracingOptions::default()
        .allow_null_fields(true)
        .map_as_struct(false)
        .sequence_as_large_list(false)
        .strings_as_large_utf8(false)
        .bytes_as_large_binary(false)
        .enums_without_data_as_strings(true)
}

impl<T: Serialize + DeserializeOwned> Encoder<T> {
    pub(crate) fn new() -> Self {
        let traced = Vec::<FieldRef>::from_type::<Value<T>>(options()).ok();
        Encoder {
            shape: traced.map(shape_of),
            _records: PhantomData,
        }
    }

    /// Whether the columns are known from the type alone (serde_arrow could
    /// trace it), so every part of a batch has the same schema.
    pub(crate) fn is_traced(&self) -> bool {
        self.shape.is_some()
    }

    /// The record batch holding `records`; `None` for an empty batch of a
    /// type whose columns are not known yet.
    pub(crate) fn encode(&mut self, records: &[T]) -> Result<Option<RecordBatch>, SqlError> {
        if self.shape.is_none() {
            if records.is_empty() {
                return Ok(None);
            }
            let samples: Vec<Value<&T>> = records.iter().map(|value| Value { value }).collect();
            let traced = Vec::<FieldRef>::from_samples(&samples, options())
                .map_err(|e| SqlError::Records(e.to_string()))?;
            self.shape = Some(shape_of(traced));
        }
        let records_err = |e: serde_arrow::Error| SqlError::Records(e.to_string());
        let batch = match self.shape.as_ref().expect("known above") {
            Shape::Fields { traced, names } => {
                let batch = serde_arrow::to_record_batch(traced, &records).map_err(records_err)?;
                let schema = Schema::new(
                    batch
                        .schema()
                        .fields()
                        .iter()
                        .zip(names)
                        .map(|(f, name)| f.as_ref().clone().with_name(name))
                        .collect::<Vec<Field>>(),
                );
                RecordBatch::try_new(Arc::new(schema), batch.columns().to_vec())
                    .map_err(|e| SqlError::Records(e.to_string()))?
            }
            Shape::Value { traced } => {
                serde_arrow::to_record_batch(traced, &AsValues(records)).map_err(records_err)?
            }
        };
        Ok(Some(batch))
    }
}

/// The columns of a traced `Value<T>`: a struct's own fields, or `value`.
fn shape_of(traced: Vec<FieldRef>) -> Shape {
    if let [value] = traced.as_slice() {
        if let DataType::Struct(fields) = value.data_type() {
            if !fields.is_empty() {
                let tuple = fields
                    .iter()
                    .enumerate()
                    .all(|(i, f)| f.name() == &i.to_string());
                let names = fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        if tuple {
                            format!("_{}", i + 1)
                        } else {
                            f.name().clone()
                        }
                    })
                    .collect();
                return Shape::Fields {
                    traced: fields.iter().cloned().collect(),
                    names,
                };
            }
        }
    }
    Shape::Value { traced }
}

/// Serializes `&[T]` as a sequence of `Value { value: &T }`.
struct AsValues<'a, T>(&'a [T]);

impl<T: Serialize> Serialize for AsValues<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|value| Value { value }))
    }
}

/// The rows of `batches` as `U`s, columns matched to `U`'s fields by name
/// (a tuple's by position), or a one-column result to any `U`.
pub(crate) fn decode<U: DeserializeOwned>(batches: &[RecordBatch]) -> Result<Vec<U>, String> {
    let mut out = Vec::new();
    for batch in batches {
        if batch.num_rows() == 0 {
            continue;
        }
        let rows: Result<Vec<U>, _> = serde_arrow::from_record_batch(batch);
        match rows {
            Ok(rows) => out.extend(rows),
            Err(whole) => {
                // One column to a plain `U` (a query giving strings or counts).
                if batch.num_columns() == 1 {
                    let named = Schema::new(vec![batch
                        .schema()
                        .field(0)
                        .as_ref()
                        .clone()
                        .with_name("value")]);
                    let single = RecordBatch::try_new(Arc::new(named), batch.columns().to_vec())
                        .map_err(|e| e.to_string())?;
                    if let Ok(values) = serde_arrow::from_record_batch::<Vec<Value<U>>>(&single) {
                        out.extend(values.into_iter().map(|v| v.value));
                        continue;
                    }
                }
                return Err(whole.to_string());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    struct WordCount {
        word: String,
        total: i64,
    }

    #[test]
    fn structs_tuples_and_plain_records_get_spark_s_column_names() {
        let names = |b: &RecordBatch| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect::<Vec<_>>()
        };
        let mut structs = Encoder::<WordCount>::new();
        let rows = [WordCount {
            word: "a".into(),
            total: 2,
        }];
        let batch = structs.encode(&rows).unwrap().unwrap();
        assert_eq!(names(&batch), ["word", "total"]);
        assert_eq!(decode::<WordCount>(&[batch]).unwrap(), rows);

        let mut tuples = Encoder::<(String, u64)>::new();
        let batch = tuples.encode(&[("a".to_string(), 1)]).unwrap().unwrap();
        assert_eq!(names(&batch), ["_1", "_2"]);
        assert_eq!(
            decode::<(String, u64)>(&[batch]).unwrap(),
            [("a".to_string(), 1)]
        );

        let mut words = Encoder::<String>::new();
        let batch = words
            .encode(&["x".to_string(), "y".to_string()])
            .unwrap()
            .unwrap();
        assert_eq!(names(&batch), ["value"]);
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(decode::<String>(&[batch]).unwrap(), ["x", "y"]);

        // An empty batch of a traced type still has its columns.
        let empty = Encoder::<WordCount>::new().encode(&[]).unwrap().unwrap();
        assert_eq!((names(&empty).len(), empty.num_rows()), (2, 0));
    }
}
