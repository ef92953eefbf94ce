//! The direct stream: offset ranges planned per batch, read by the workers.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ember_core::{BatchPlanner, DStream, Error, StreamingScope, Time};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use timely::dataflow::operators::core::Exchange;

use crate::error::KafkaFailure;
use crate::params::{KafkaParams, Subscribe};
use crate::record::{ConsumerRecord, OffsetRange};

/// A direct Kafka stream: its records, and the offset ranges each batch
/// read (Spark's `HasOffsetRanges`).
pub struct DirectKafkaStream<'s> {
    records: DStream<'s, ConsumerRecord>,
    ranges: DStream<'s, OffsetRange>,
}

impl<'s> DirectKafkaStream<'s> {
    /// The records, each batch holding exactly its offset ranges.
    pub fn records(&self) -> DStream<'s, ConsumerRecord> {
        self.records.clone()
    }

    /// Every batch's offset ranges, one per partition (empty ones included),
    /// on the worker that planned them.
    pub fn offset_ranges(&self) -> DStream<'s, OffsetRange> {
        self.ranges.clone()
    }
}

/// Spark's `KafkaUtils.createDirectStream`: reads `subscribe` with
/// `params`; see the [crate docs](crate).
#[doc(alias = "createDirectStream")]
pub fn create_direct_stream<'s>(
    s: &StreamingScope<'s>,
    subscribe: Subscribe,
    params: KafkaParams,
) -> DirectKafkaStream<'s> {
    let name = format!("kafka_direct_stream({})", describe(&subscribe));
    let interval = s.batch_interval().as_millis() as u64;
    let pending: Pending = Arc::default();
    if params.commit_offsets {
        register_commits(s, &params, pending.clone());
    }
    let planner_params = params.clone();
    let planner_name = name.clone();
    let ranges = s.planned_source(&name, move || KafkaPlanner {
        name: planner_name,
        subscribe,
        params: planner_params,
        interval_ms: interval,
        consumer: None,
        positions: BTreeMap::new(),
        pending,
        missing_warned: false,
        pattern: None,
    });
    let spread = ranges
        .to_timely()
        .exchange(|r: &OffsetRange| route(&r.topic, r.partition));
    let mut reader = Reader {
        params,
        consumer: None,
    };
    let records = s
        .from_timely(spread)
        .try_map_partitions(move |batch| reader.read(batch.collect()).map_err(Error::connector));
    DirectKafkaStream { records, ranges }
}

fn describe(subscribe: &Subscribe) -> String {
    match subscribe {
        Subscribe::Topics(t) => t.join(","),
        Subscribe::Pattern(p) => format!("pattern {p}"),
        Subscribe::Assign(parts) => parts
            .iter()
            .map(|(t, p, _)| format!("{t}-{p}"))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// The same worker reads the same partition every batch.
fn route(topic: &str, partition: i32) -> u64 {
    ember_core::hash::route(&(topic, partition))
}

/// Offset ranges of batches whose outputs are not all done, by batch time.
type Pending = Arc<Mutex<BTreeMap<u64, Vec<OffsetRange>>>>;

/// Commits the ranges of every completed batch to the consumer group.
fn register_commits(s: &StreamingScope<'_>, params: &KafkaParams, pending: Pending) {
    let Some(group) = params.group().map(str::to_string) else {
        tracing::warn!("commit_offsets needs a group.id; offsets will not be committed to Kafka");
        return;
    };
    let config = params.client_config(&group);
    let committer: Arc<Mutex<Option<BaseConsumer>>> = Arc::default();
    s.on_batch_completed(move |time: Time| {
        let done: Vec<OffsetRange> = {
            let mut p = pending.lock().expect("pending lock");
            let later = p.split_off(&(time.milliseconds() + 1));
            let done = std::mem::replace(&mut *p, later);
            done.into_values().flatten().collect()
        };
        if done.is_empty() {
            return;
        }
        let mut latest: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for r in done {
            let e = latest.entry((r.topic, r.partition)).or_insert(r.until_offset);
            *e = (*e).max(r.until_offset);
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in &latest {
            if let Err(e) = tpl.add_partition_offset(t, *p, Offset::Offset(*o)) {
                tracing::warn!("cannot commit {t}-{p} at {o}: {e}");
            }
        }
        let mut slot = committer.lock().expect("committer lock");
        if slot.is_none() {
            match config.create::<BaseConsumer>() {
                Ok(c) => *slot = Some(c),
                Err(e) => {
                    tracing::warn!("cannot create the offset committer: {e}");
                    return;
                }
            }
        }
        if let Some(c) = slot.as_ref() {
            if let Err(e) = c.commit(&tpl, CommitMode::Async) {
                tracing::warn!(group = %group, "committing offsets failed: {e}; the next batch commits again");
            }
        }
    });
}

/// Decides each batch's offset ranges, on one worker.
struct KafkaPlanner {
    name: String,
    subscribe: Subscribe,
    params: KafkaParams,
    interval_ms: u64,
    consumer: Option<BaseConsumer>,
    /// The next offset to read, per partition.
    positions: BTreeMap<(String, i32), i64>,
    pending: Pending,
    missing_warned: bool,
    /// A `Subscribe::Pattern`, compiled once.
    pattern: Option<regex::Regex>,
}

fn connector(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::connector(e)
}

impl KafkaPlanner {
    fn consumer(&mut self) -> Result<&BaseConsumer, Error> {
        if self.consumer.is_none() {
            let c = self
                .params
                .client_config("ember-direct-stream")
                .create::<BaseConsumer>()
                .map_err(connector)?;
            self.consumer = Some(c);
        }
        Ok(self.consumer.as_ref().expect("created above"))
    }

    /// The partitions subscribed to now.
    fn partitions(&mut self) -> Result<Vec<(String, i32)>, PlanError> {
        let timeout = self.params.metadata_timeout;
        if let Subscribe::Assign(parts) = &self.subscribe {
            return Ok(parts.iter().map(|(t, p, _)| (t.clone(), *p)).collect());
        }
        if let (Subscribe::Pattern(p), None) = (&self.subscribe, &self.pattern) {
            // A pattern that does not compile is the program's mistake, not
            // the broker's: it stops the context instead of retrying.
            let re = regex::Regex::new(p).map_err(|e| {
                PlanError::Fatal(Error::Config(format!(
                    "{}: the topic pattern `{p}` is not a regular expression: {e}",
                    self.name
                )))
            })?;
            self.pattern = Some(re);
        }
        let subscribe = self.subscribe.clone();
        let metadata = self
            .consumer()
            .map_err(PlanError::Fatal)?
            .fetch_metadata(None, timeout)
            .map_err(PlanError::Kafka)?;
        let pattern = &self.pattern;
        let mut out = Vec::new();
        for topic in metadata.topics() {
            let wanted = match (&subscribe, pattern) {
                (Subscribe::Topics(names), _) => names.iter().any(|n| n == topic.name()),
                (_, Some(re)) => re.is_match(topic.name()),
                _ => false,
            };
            if wanted && topic.error().is_none() {
                for p in topic.partitions() {
                    out.push((topic.name().to_string(), p.id()));
                }
            }
        }
        if let Subscribe::Topics(names) = &subscribe {
            let missing: Vec<&String> = names
                .iter()
                .filter(|n| !out.iter().any(|(t, _)| t == *n))
                .collect();
            if !missing.is_empty() && !self.missing_warned {
                tracing::warn!(source = %self.name, "topic(s) {missing:?} do not exist (yet); they are read once they appear");
                self.missing_warned = true;
            }
        }
        out.sort();
        Ok(out)
    }

    /// Where a newly seen partition starts.
    fn start_offset(
        &mut self,
        topic: &str,
        partition: i32,
        low: i64,
        high: i64,
    ) -> Result<i64, Error> {
        if let Subscribe::Assign(parts) = &self.subscribe {
            if let Some((_, _, Some(o))) =
                parts.iter().find(|(t, p, _)| t == topic && *p == partition)
            {
                return Ok(*o);
            }
        }
        let timeout = self.params.metadata_timeout;
        if self.params.group().is_some() {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(topic, partition);
            let consumer = self.consumer()?;
            if let Ok(committed) = consumer.committed_offsets(tpl, timeout) {
                if let Some(Offset::Offset(o)) = committed
                    .find_partition(topic, partition)
                    .map(|e| e.offset())
                {
                    return Ok(o);
                }
            }
        }
        let reset = self
            .params
            .config
            .get("auto.offset.reset")
            .map(String::as_str)
            .unwrap_or("latest");
        match reset {
            "earliest" | "smallest" | "beginning" => Ok(low),
            "latest" | "largest" | "end" => Ok(high),
            other => Err(Error::Config(format!(
                "{}: partition {topic}-{partition} has no committed offset and auto.offset.reset is `{other}`; set it to earliest or latest, or give starting offsets with Subscribe::assign",
                self.name
            ))),
        }
    }

    fn plan_ranges(&mut self, cap: Option<u64>) -> Result<Vec<OffsetRange>, PlanError> {
        let partitions = self.partitions()?;
        let timeout = self.params.metadata_timeout;
        let mut marks = Vec::with_capacity(partitions.len());
        for (topic, p) in &partitions {
            let consumer = self.consumer().map_err(PlanError::Fatal)?;
            let (low, high) = consumer
                .fetch_watermarks(topic, *p, timeout)
                .map_err(PlanError::Kafka)?;
            let from = match self.positions.get(&(topic.clone(), *p)) {
                Some(f) => *f,
                None => {
                    let start = self
                        .start_offset(topic, *p, low, high)
                        .map_err(PlanError::Fatal)?;
                    tracing::info!(source = %self.name, "partition {topic}-{p} starts at offset {start}");
                    start
                }
            };
            let from = if from < low {
                tracing::warn!(
                    source = %self.name,
                    "{topic}-{p}: offsets {from}..{low} are gone from the broker (retention); reading on from {low}"
                );
                low
            } else {
                from
            };
            marks.push((topic.clone(), *p, from, high.max(from)));
        }
        let per_partition = self
            .params
            .max_rate_per_partition
            .map(|r| ((r * self.interval_ms as f64 / 1000.0).floor() as u64).max(1));
        let total_lag: u64 = marks.iter().map(|(_, _, f, u)| (u - f) as u64).sum();
        let mut ranges = Vec::with_capacity(marks.len());
        for (topic, partition, from, high) in marks {
            let lag = (high - from) as u64;
            let mut take = lag;
            if let Some(limit) = per_partition {
                take = take.min(limit);
            }
            if let (Some(cap), true) = (cap, total_lag > 0) {
                // Spark's split of the backpressure rate: by each partition's lag.
                let share = ((cap as f64 * lag as f64 / total_lag as f64).round() as u64).max(1);
                take = take.min(share);
            }
            let until = from + take as i64;
            self.positions.insert((topic.clone(), partition), until);
            ranges.push(OffsetRange {
                topic,
                partition,
                from_offset: from,
                until_offset: until,
            });
        }
        Ok(ranges)
    }
}

enum PlanError {
    /// The broker could not be asked; the batch is empty and the next one
    /// tries again, nothing is skipped.
    Kafka(KafkaError),
    Fatal(Error),
}

impl BatchPlanner for KafkaPlanner {
    type Item = OffsetRange;
    type Position = Vec<(String, i32, i64)>;

    fn plan(&mut self, time: Time, cap: Option<u64>) -> ember_core::Result<Vec<OffsetRange>> {
        let before = self.positions.clone();
        match self.plan_ranges(cap) {
            Ok(ranges) => {
                if self.params.commit_offsets {
                    self.pending
                        .lock()
                        .expect("pending lock")
                        .insert(time.milliseconds(), ranges.clone());
                }
                Ok(ranges)
            }
            Err(PlanError::Kafka(e)) => {
                self.positions = before;
                tracing::warn!(
                    source = %self.name,
                    "cannot reach the Kafka brokers for batch {time}: {e}; the batch is empty and the next one tries again (nothing is skipped)"
                );
                Ok(Vec::new())
            }
            Err(PlanError::Fatal(e)) => Err(e),
        }
    }

    fn records(&self, item: &OffsetRange) -> u64 {
        item.count()
    }

    fn position(&self) -> Vec<(String, i32, i64)> {
        self.positions
            .iter()
            .map(|((t, p), o)| (t.clone(), *p, *o))
            .collect()
    }

    fn restore(&mut self, position: Vec<(String, i32, i64)>) {
        self.positions = position.into_iter().map(|(t, p, o)| ((t, p), o)).collect();
    }

    fn replayed(&mut self, time: Time, items: &[OffsetRange]) {
        for r in items {
            let e = self
                .positions
                .entry((r.topic.clone(), r.partition))
                .or_insert(r.until_offset);
            *e = (*e).max(r.until_offset);
        }
        if self.params.commit_offsets {
            self.pending
                .lock()
                .expect("pending lock")
                .insert(time.milliseconds(), items.to_vec());
        }
    }
}

/// Reads offset ranges on one worker.
struct Reader {
    params: KafkaParams,
    consumer: Option<BaseConsumer>,
}

impl Reader {
    /// Exactly the records of `ranges`, in partition then offset order.
    fn read(&mut self, mut ranges: Vec<OffsetRange>) -> Result<Vec<ConsumerRecord>, KafkaFailure> {
        let fail = |message: String, cause: Option<KafkaError>| KafkaFailure::Read {
            message,
            cause: cause.map(Box::new),
        };
        ranges.retain(|r| r.count() > 0);
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        ranges.sort();
        if self.consumer.is_none() {
            let mut config = self.params.client_config("ember-direct-stream");
            config.set("enable.partition.eof", "false");
            // The reader knows its ranges are there: do not let the broker
            // hold a fetch back waiting for more (librdkafka's 500 ms).
            if !self.params.config.contains_key("fetch.wait.max.ms") {
                config.set("fetch.wait.max.ms", "10");
            }
            let consumer = config
                .create::<BaseConsumer>()
                .map_err(|e| fail(format!("cannot create a consumer: {e}"), Some(e)))?;
            self.consumer = Some(consumer);
        }
        let Some(consumer) = self.consumer.as_ref() else {
            unreachable!("created above");
        };
        let mut tpl = TopicPartitionList::new();
        for r in &ranges {
            tpl.add_partition_offset(&r.topic, r.partition, Offset::Offset(r.from_offset))
                .map_err(|e| fail(format!("bad offset range {r:?}: {e}"), Some(e)))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| fail(format!("cannot assign {ranges:?}: {e}"), Some(e)))?;
        let mut left: HashMap<(String, i32), (i64, i64)> = ranges
            .iter()
            .map(|r| {
                (
                    (r.topic.clone(), r.partition),
                    (r.from_offset, r.until_offset),
                )
            })
            .collect();
        let mut out: HashMap<(String, i32), Vec<ConsumerRecord>> = HashMap::new();
        let deadline = Instant::now() + self.params.poll_timeout;
        let mut quiet = 0u32;
        while !left.is_empty() {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    quiet = 0;
                    let key = (m.topic().to_string(), m.partition());
                    let Some(&(from, until)) = left.get(&key) else {
                        continue;
                    };
                    let offset = m.offset();
                    if offset >= from && offset < until {
                        out.entry(key.clone()).or_default().push(to_record(&m));
                    }
                    if offset + 1 >= until {
                        left.remove(&key);
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!("kafka: while reading {:?}: {e}; retrying", left.keys());
                }
                None => {
                    quiet += 1;
                    // Offsets can be missing (compaction, transaction
                    // markers): a partition whose position passed its range
                    // is done.
                    if quiet % 5 == 0 {
                        if let Ok(pos) = consumer.position() {
                            left.retain(|(t, p), (_, until)| {
                                !matches!(
                                    pos.find_partition(t, *p).map(|e| e.offset()),
                                    Some(Offset::Offset(o)) if o >= *until
                                )
                            });
                        }
                    }
                }
            }
            if !left.is_empty() && Instant::now() > deadline {
                return Err(fail(
                    format!(
                        "reading offset ranges {:?} did not finish within {:?}: is the broker up? (raise KafkaParams::poll_timeout if it is slow)",
                        left, self.params.poll_timeout
                    ),
                    None,
                ));
            }
        }
        let mut records = Vec::new();
        for r in &ranges {
            if let Some(v) = out.remove(&(r.topic.clone(), r.partition)) {
                records.extend(v);
            }
        }
        Ok(records)
    }
}

fn to_record<M: Message>(m: &M) -> ConsumerRecord {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|x| (x.key.to_string(), x.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    ConsumerRecord {
        topic: m.topic().to_string(),
        partition: m.partition(),
        offset: m.offset(),
        timestamp: m.timestamp().to_millis(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        headers,
    }
}
