//! Settings of a direct stream: what to subscribe to and how.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;

/// What a direct stream reads (Spark's `ConsumerStrategies`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Subscribe {
    /// Every partition of these topics, new partitions included.
    Topics(Vec<String>),
    /// Every partition of the topics whose names match this regular
    /// expression (librdkafka's syntax), new topics included.
    Pattern(String),
    /// Exactly these partitions, each from the given offset (or from the
    /// committed / reset position with `None`).
    Assign(Vec<(String, i32, Option<i64>)>),
}

impl Subscribe {
    /// Every partition of `topics` (Spark's `Subscribe`).
    pub fn topics<I: IntoIterator<Item = S>, S: Into<String>>(topics: I) -> Self {
        Subscribe::Topics(topics.into_iter().map(Into::into).collect())
    }

    /// Topics matching `regex` (Spark's `SubscribePattern`).
    pub fn pattern(regex: impl Into<String>) -> Self {
        Subscribe::Pattern(regex.into())
    }

    /// These partitions with optional starting offsets (Spark's `Assign`).
    pub fn assign<I: IntoIterator<Item = (S, i32, Option<i64>)>, S: Into<String>>(
        parts: I,
    ) -> Self {
        Subscribe::Assign(
            parts
                .into_iter()
                .map(|(t, p, o)| (t.into(), p, o))
                .collect(),
        )
    }
}

/// Kafka settings of a direct stream (Spark's `kafkaParams`), plus ember's
/// own: the max rate per partition, committing offsets back, timeouts.
///
/// Any librdkafka property can be set with [`set`](Self::set);
/// `enable.auto.commit` is always off (the stream decides what is read).
#[derive(Clone, Debug)]
pub struct KafkaParams {
    pub(crate) config: BTreeMap<String, String>,
    pub(crate) max_rate_per_partition: Option<f64>,
    pub(crate) commit_offsets: bool,
    pub(crate) poll_timeout: Duration,
    pub(crate) metadata_timeout: Duration,
}

impl KafkaParams {
    /// Settings for the brokers at `bootstrap_servers` (`host:port,...`),
    /// starting new partitions at their earliest offset.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        let mut config = BTreeMap::new();
        config.insert("bootstrap.servers".to_string(), bootstrap_servers.into());
        config.insert("auto.offset.reset".to_string(), "earliest".to_string());
        KafkaParams {
            config,
            max_rate_per_partition: None,
            commit_offsets: false,
            poll_timeout: Duration::from_secs(120),
            metadata_timeout: Duration::from_secs(10),
        }
    }

    /// Sets a librdkafka property, e.g. `("auto.offset.reset", "latest")`.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.insert(key.into(), value.into());
        self
    }

    /// The consumer group: where committed offsets are kept and read.
    pub fn group_id(self, group: impl Into<String>) -> Self {
        self.set("group.id", group)
    }

    /// Reads at most this many records per second from each partition
    /// (Spark's `spark.streaming.kafka.maxRatePerPartition`).
    pub fn max_rate_per_partition(mut self, records_per_second: f64) -> Self {
        self.max_rate_per_partition = Some(records_per_second);
        self
    }

    /// Commits each batch's offsets to the consumer group once every output
    /// of the batch has finished (Spark's `commitAsync` after outputs), so
    /// that tools watching the group see the progress. Recovery uses
    /// ember's checkpoint, not these commits.
    pub fn commit_offsets(mut self, on: bool) -> Self {
        self.commit_offsets = on;
        self
    }

    /// How long reading a batch's range may wait for the broker before the
    /// context fails (Spark's `spark.streaming.kafka.consumer.poll.ms`).
    pub fn poll_timeout(mut self, timeout: Duration) -> Self {
        self.poll_timeout = timeout;
        self
    }

    /// How long asking the brokers for metadata and offsets may take before
    /// a batch gives up and stays empty (the next batch asks again).
    pub fn metadata_timeout(mut self, timeout: Duration) -> Self {
        self.metadata_timeout = timeout;
        self
    }

    /// The group, if set.
    pub(crate) fn group(&self) -> Option<&str> {
        self.config.get("group.id").map(String::as_str)
    }

    /// A librdkafka configuration from these settings.
    pub(crate) fn client_config(&self, fallback_group: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, v) in &self.config {
            c.set(k, v);
        }
        if !self.config.contains_key("group.id") {
            c.set("group.id", fallback_group);
        }
        c.set("enable.auto.commit", "false");
        c.set("enable.auto.offset.store", "false");
        c
    }
}
