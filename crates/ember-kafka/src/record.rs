//! What a direct stream carries: records, and the offset ranges of batches.

use ember_core::Show;
use serde::{Deserialize, Serialize};

/// One Kafka record (Spark's `ConsumerRecord`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset in the partition.
    pub offset: i64,
    /// The record's timestamp in ms, when it has one.
    pub timestamp: Option<i64>,
    /// The key, if any.
    pub key: Option<Vec<u8>>,
    /// The value, if any (a tombstone has none).
    pub value: Option<Vec<u8>>,
    /// The headers, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl ConsumerRecord {
    /// The value as text (invalid UTF-8 replaced; empty for no value).
    pub fn value_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.value.as_deref().unwrap_or_default())
    }

    /// The key as text, if there is a key.
    pub fn key_str(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.key.as_deref().map(String::from_utf8_lossy)
    }
}

impl Show for ConsumerRecord {
    /// Spark's `ConsumerRecord.toString` layout, shortened to what matters.
    fn fmt_show(&self, out: &mut String) {
        use std::fmt::Write;
        let key = self
            .key_str()
            .map_or_else(|| "null".to_string(), |k| k.into_owned());
        let _ = write!(
            out,
            "ConsumerRecord(topic = {}, partition = {}, offset = {}, timestamp = {}, key = {}, value = {})",
            self.topic,
            self.partition,
            self.offset,
            self.timestamp.unwrap_or(-1),
            key,
            self.value_str()
        );
    }
}

/// The offsets a batch reads from one partition: `[from_offset,
/// until_offset)` (Spark's `OffsetRange`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OffsetRange {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The first offset read.
    pub from_offset: i64,
    /// One past the last offset read.
    pub until_offset: i64,
}

impl OffsetRange {
    /// How many offsets the range covers.
    pub fn count(&self) -> u64 {
        (self.until_offset - self.from_offset).max(0) as u64
    }
}

impl Show for OffsetRange {
    fn fmt_show(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "OffsetRange(topic: '{}', partition: {}, range: [{} -> {}])",
            self.topic, self.partition, self.from_offset, self.until_offset
        );
    }
}
