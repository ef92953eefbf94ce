//! Kinesis Data Streams for ember: Spark's `KinesisInputDStream`, with
//! exactly-once recovery.
//!
//! [`create_stream`] reads every shard of a stream, batch by batch. When a
//! batch closes, one worker takes each open shard's next records (one
//! `GetRecords` call per shard and batch, the shards' calls made at once,
//! within the rate limit), so a batch
//! holds, per shard, a contiguous run of sequence numbers. With
//! checkpointing on, each batch's records are logged in the checkpoint
//! directory before the batch runs and each shard's position is saved with
//! the checkpoint, so a program killed at any moment and restarted with
//! `get_or_create` reads exactly the same records in the same batches, then
//! goes on after them: nothing lost, nothing twice (Spark's Kinesis stream
//! re-reads the logged sequence ranges the same way; its KCL checkpoints in
//! DynamoDB — `checkpointAppName` and `checkpointInterval` — are not needed
//! here: ember's checkpoint holds the positions).
//!
//! Resharding is followed: when a shard closes (split or merge), its
//! children are read from their first record once all of their parents
//! have been read to the end, so per partition key the order holds.
//!
//! ```no_run
//! use ember_core::{seconds, StreamingConf, StreamingContext};
//! use ember_kinesis::{create_stream, InitialPosition, KinesisParams};
//!
//! let ssc = StreamingContext::new(StreamingConf::new("KinesisWordCount", seconds(2)))?;
//! ssc.define(|s| {
//!     let params = KinesisParams::new("clicks").initial_position(InitialPosition::TrimHorizon);
//!     create_stream(s, params)
//!         .map(|r| (String::from_utf8_lossy(&r.data).into_owned(), 1u64))
//!         .reduce_by_key(|a, b| a + b)
//!         .print();
//! })?;
//! # Ok::<(), ember_core::Error>(())
//! ```
//!
//! Credentials and region come from the environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`) or from
//! [`KinesisParams`]; `endpoint` (or `AWS_ENDPOINT_URL_KINESIS`) points at
//! another server. A stream that does not exist, or credentials the
//! service refuses (an unknown key, a wrong secret, no permission: any
//! refusal other than throttling), fails `start` with [`Error::Source`]
//! naming the service's error code. A service that does not answer at
//! start is logged and the start goes ahead; a call that fails later (the
//! service unreachable, throttled) is logged and the shard read again next
//! batch.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;
use ember_core::{BatchPlanner, DStream, Error, Show, StreamingScope, Time};
use serde::{Deserialize, Serialize};

/// Where reading starts in shards that have no position yet (Spark's
/// `InitialPositionInStream` and `AtTimestamp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitialPosition {
    /// Records that arrive from the start on. Kept as "from the first
    /// start's time" in the checkpoint, so records that arrive while a
    /// restarted program is down are still read.
    Latest,
    /// The oldest records the stream keeps.
    TrimHorizon,
    /// Records that arrived at or after this time.
    AtTimestamp(SystemTime),
}

/// The settings of [`create_stream`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KinesisParams {
    /// The stream's name.
    pub stream_name: String,
    /// Another endpoint than AWS's (e.g. `http://127.0.0.1:4567`).
    pub endpoint: Option<String>,
    /// The region (`AWS_REGION` when not set, else `us-east-1`).
    pub region: Option<String>,
    /// Where shards without a position start.
    pub initial_position: InitialPosition,
    /// Records per `GetRecords` call at most (10000, Kinesis's limit).
    pub max_records_per_call: i32,
    /// Credentials (the environment's when not set): key id, secret,
    /// session token.
    pub credentials: Option<(String, String, Option<String>)>,
}

impl KinesisParams {
    /// Reads `stream_name` from the latest records on.
    pub fn new(stream_name: &str) -> Self {
        KinesisParams {
            stream_name: stream_name.to_string(),
            endpoint: std::env::var("AWS_ENDPOINT_URL_KINESIS").ok(),
            region: None,
            initial_position: InitialPosition::Latest,
            max_records_per_call: 10_000,
            credentials: None,
        }
    }

    /// Sets the endpoint.
    pub fn endpoint(mut self, url: &str) -> Self {
        self.endpoint = Some(url.to_string());
        self
    }

    /// Sets the region.
    pub fn region(mut self, region: &str) -> Self {
        self.region = Some(region.to_string());
        self
    }

    /// Sets where shards without a position start.
    pub fn initial_position(mut self, position: InitialPosition) -> Self {
        self.initial_position = position;
        self
    }

    /// Sets static credentials.
    pub fn credentials(mut self, key_id: &str, secret: &str) -> Self {
        self.credentials = Some((key_id.to_string(), secret.to_string(), None));
        self
    }

    /// Sets the most records one `GetRecords` call returns (1 to 10000).
    pub fn max_records_per_call(mut self, n: i32) -> Self {
        self.max_records_per_call = n.clamp(1, 10_000);
        self
    }
}

/// One record of a Kinesis stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KinesisRecord {
    /// The shard it was read from.
    pub shard_id: String,
    /// Its sequence number (unique in the shard, increasing).
    pub sequence_number: String,
    /// Its partition key.
    pub partition_key: String,
    /// When Kinesis took it, in milliseconds since the epoch.
    pub arrival_ms: i64,
    /// Its bytes.
    pub data: Vec<u8>,
}

impl KinesisRecord {
    /// The data as text (invalid UTF-8 replaced).
    pub fn data_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.data)
    }
}

impl Show for KinesisRecord {
    fn fmt_show(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "KinesisRecord(shard = {}, sequence = {}, key = {}, data = {})",
            self.shard_id,
            self.sequence_number,
            self.partition_key,
            self.data_str()
        );
    }
}

/// Where a shard stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardPosition {
    /// Not read yet: start at the stream's initial position.
    Initial,
    /// Not read yet, a child of a reshard: start at its first record.
    Start,
    /// Records after this sequence number are next.
    After(String),
    /// Read to its end (closed by a reshard).
    Done,
}

/// What the planner checkpoints: each shard's position, and the time the
/// first run started (for [`InitialPosition::Latest`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StreamPosition {
    shards: BTreeMap<String, ShardPosition>,
    started_ms: Option<u64>,
}

/// The runtime the client's calls run on (the engine's threads block on it).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ember-kinesis")
            .enable_all()
            .build()
            .expect("cannot start the Kinesis client's I/O thread")
    })
}

fn client(params: &KinesisParams) -> Client {
    let region = params
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".to_string());
    let credentials = match &params.credentials {
        Some((id, secret, token)) => {
            aws_credential_types::Credentials::new(id, secret, token.clone(), None, "ember")
        }
        None => aws_credential_types::Credentials::new(
            std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default(),
            std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
            std::env::var("AWS_SESSION_TOKEN").ok(),
            None,
            "environment",
        ),
    };
    let mut config = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new(region))
        .credentials_provider(credentials)
        .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::standard().with_max_attempts(2))
        .timeout_config(
            aws_sdk_kinesis::config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(10))
                .build(),
        );
    if let Some(endpoint) = &params.endpoint {
        config = config.endpoint_url(endpoint);
    }
    Client::from_conf(config.build())
}

/// Whether the service answered and refused (a missing stream, unknown or
/// wrong credentials, no permission: a 4xx other than throttling), as
/// against an error that may pass by itself (no answer, a 5xx, throttling).
fn refused<E: ProvideErrorMetadata>(e: &aws_sdk_kinesis::error::SdkError<E>) -> bool {
    let Some(status) = e.raw_response().map(|r| r.status().as_u16()) else {
        return false;
    };
    let throttled = e.code().is_some_and(|c| {
        c.contains("Throttl") || c.contains("LimitExceeded") || c.contains("ThroughputExceeded")
    });
    (400..500).contains(&status) && status != 429 && !throttled
}

/// An SDK error on one line, with the service's code and message.
fn describe<E: std::error::Error + ProvideErrorMetadata + 'static>(
    e: &aws_sdk_kinesis::error::SdkError<E>,
) -> String {
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => DisplayErrorContext(e).to_string(),
    }
}

/// A shard as listed: its parents (for reshards).
#[derive(Clone, Debug)]
struct ShardInfo {
    parents: Vec<String>,
}

struct KinesisPlanner {
    name: String,
    params: KinesisParams,
    client: Client,
    position: StreamPosition,
    /// Live shard iterators (not checkpointed: they expire).
    iterators: HashMap<String, String>,
    /// Shards as last listed.
    listed: BTreeMap<String, ShardInfo>,
    /// The first listing is done (shards found then start at the initial
    /// position, shards found later at their start).
    first_listing_done: bool,
    /// When a failing call was last logged, by shard ("" for listings).
    warned: HashMap<String, std::time::Instant>,
}

impl KinesisPlanner {
    fn warn(&mut self, key: &str, message: String) {
        let due = self
            .warned
            .get(key)
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(30));
        if due {
            self.warned
                .insert(key.to_string(), std::time::Instant::now());
            tracing::warn!(source = %self.name, "{message} (tried again every batch; logged again in 30 s while it fails)");
        }
    }

    fn list_shards(&mut self) -> Result<(), String> {
        let mut listed = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let mut call = self.client.list_shards();
            call = match &token {
                Some(t) => call.next_token(t),
                None => call.stream_name(&self.params.stream_name),
            };
            let out = runtime().block_on(call.send()).map_err(|e| describe(&e))?;
            for shard in out.shards() {
                let parents = [shard.parent_shard_id(), shard.adjacent_parent_shard_id()]
                    .into_iter()
                    .flatten()
                    .map(str::to_string)
                    .collect();
                listed.insert(shard.shard_id().to_string(), ShardInfo { parents });
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let first = !self.first_listing_done;
        for id in listed.keys() {
            if !self.position.shards.contains_key(id) {
                let start = if first {
                    ShardPosition::Initial
                } else {
                    ShardPosition::Start
                };
                self.position.shards.insert(id.clone(), start);
            }
        }
        self.listed = listed;
        self.first_listing_done = true;
        Ok(())
    }

    /// A shard is read once every parent it has that the stream still
    /// lists has been read to its end.
    fn ready(&self, shard: &str) -> bool {
        self.listed.get(shard).is_some_and(|info| {
            info.parents.iter().all(|p| {
                !self.listed.contains_key(p)
                    || matches!(self.position.shards.get(p), Some(ShardPosition::Done))
            })
        })
    }

    fn iterator(&mut self, shard: &str) -> Result<Option<String>, String> {
        if let Some(it) = self.iterators.get(shard) {
            return Ok(Some(it.clone()));
        }
        let call = self
            .client
            .get_shard_iterator()
            .stream_name(&self.params.stream_name)
            .shard_id(shard);
        let call = match self.position.shards.get(shard) {
            None | Some(ShardPosition::Done) => return Ok(None),
            Some(ShardPosition::After(seq)) => call
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
            Some(ShardPosition::Start) => call.shard_iterator_type(ShardIteratorType::TrimHorizon),
            Some(ShardPosition::Initial) => match self.params.initial_position {
                InitialPosition::TrimHorizon => {
                    call.shard_iterator_type(ShardIteratorType::TrimHorizon)
                }
                InitialPosition::AtTimestamp(t) => call
                    .shard_iterator_type(ShardIteratorType::AtTimestamp)
                    .timestamp(aws_sdk_kinesis::primitives::DateTime::from(t)),
                InitialPosition::Latest => {
                    let ms = self.position.started_ms.unwrap_or(0);
                    call.shard_iterator_type(ShardIteratorType::AtTimestamp)
                        .timestamp(aws_sdk_kinesis::primitives::DateTime::from_millis(
                            ms as i64,
                        ))
                }
            },
        };
        let out = runtime().block_on(call.send()).map_err(|e| describe(&e))?;
        let it = out.shard_iterator().map(str::to_string);
        if let Some(it) = &it {
            self.iterators.insert(shard.to_string(), it.clone());
        }
        Ok(it)
    }

    /// One `GetRecords` call on each of `shards`, all at once, their
    /// records appended to `out` shard by shard.
    fn read_shards(&mut self, shards: &[String], limit: i32, out: &mut Vec<KinesisRecord>) {
        // Position the shards that need it (at the start, after an error).
        let mut calls = Vec::new();
        for shard in shards {
            match self.iterator(shard) {
                Ok(Some(it)) => calls.push((shard.clone(), it)),
                Ok(None) => {}
                Err(e) => self.warn(shard, format!("cannot position on shard {shard}: {e}")),
            }
        }
        let client = &self.client;
        let answers =
            runtime().block_on(futures::future::join_all(calls.iter().map(|(_, it)| {
                client.get_records().shard_iterator(it).limit(limit).send()
            })));
        for ((shard, _), answer) in calls.iter().zip(answers) {
            let got = match answer {
                Ok(got) => got,
                Err(e) => {
                    if e.code() == Some("ExpiredIteratorException") {
                        self.iterators.remove(shard);
                    } else {
                        self.warn(
                            shard,
                            format!("cannot read shard {shard}: {}", describe(&e)),
                        );
                    }
                    continue;
                }
            };
            self.warned.remove(shard);
            for r in got.records() {
                out.push(KinesisRecord {
                    shard_id: shard.to_string(),
                    sequence_number: r.sequence_number().to_string(),
                    partition_key: r.partition_key().unwrap_or_default().to_string(),
                    arrival_ms: r
                        .approximate_arrival_timestamp()
                        .and_then(|t| t.to_millis().ok())
                        .unwrap_or(0),
                    data: r.data().as_ref().to_vec(),
                });
            }
            if let Some(last) = got.records().last() {
                self.position.shards.insert(
                    shard.to_string(),
                    ShardPosition::After(last.sequence_number().to_string()),
                );
            }
            match got.next_shard_iterator() {
                Some(next) => {
                    self.iterators.insert(shard.to_string(), next.to_string());
                }
                None => {
                    // Closed and read to its end: its children may start.
                    self.iterators.remove(shard);
                    self.position
                        .shards
                        .insert(shard.to_string(), ShardPosition::Done);
                    tracing::info!(source = %self.name, "shard {shard} was read to its end (resharded)");
                }
            }
        }
    }
}

impl BatchPlanner for KinesisPlanner {
    type Item = KinesisRecord;
    type Position = StreamPosition;

    fn plan(&mut self, _time: Time, cap: Option<u64>) -> ember_core::Result<Vec<KinesisRecord>> {
        if self.position.started_ms.is_none() {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            self.position.started_ms = Some(now);
        }
        if let Err(e) = self.list_shards() {
            self.warn(
                "",
                format!("cannot list the shards of {}: {e}", self.params.stream_name),
            );
            if self.listed.is_empty() {
                return Ok(Vec::new());
            }
        } else {
            self.warned.remove("");
        }
        let shards: Vec<String> = self
            .position
            .shards
            .keys()
            .filter(|s| self.ready(s))
            .cloned()
            .collect();
        let per_shard = match cap {
            Some(c) => (c / shards.len().max(1) as u64).clamp(1, 10_000) as i32,
            None => self.params.max_records_per_call,
        }
        .min(self.params.max_records_per_call);
        let mut out = Vec::new();
        self.read_shards(&shards, per_shard, &mut out);
        Ok(out)
    }

    fn records(&self, _item: &KinesisRecord) -> u64 {
        1
    }

    fn position(&self) -> StreamPosition {
        self.position.clone()
    }

    fn restore(&mut self, position: StreamPosition) {
        self.position = position;
        self.iterators.clear();
        self.first_listing_done = !self.position.shards.is_empty();
    }

    fn replayed(&mut self, _time: Time, items: &[KinesisRecord]) {
        for r in items {
            self.position.shards.insert(
                r.shard_id.clone(),
                ShardPosition::After(r.sequence_number.clone()),
            );
            self.iterators.remove(&r.shard_id);
        }
    }
}

/// Spark's `KinesisInputDStream`: the records of `params.stream_name`, each
/// batch's records spread over the workers. See the [crate docs](crate).
#[doc(alias = "KinesisInputDStream")]
pub fn create_stream<'s>(
    s: &StreamingScope<'s>,
    params: KinesisParams,
) -> DStream<'s, KinesisRecord> {
    let name = format!("kinesis_stream({})", params.stream_name);
    let kinesis = client(&params);
    // The stream must exist: a typo or a missing stream fails the start.
    let described = runtime().block_on(
        kinesis
            .describe_stream_summary()
            .stream_name(&params.stream_name)
            .send(),
    );
    match described {
        Ok(_) => {}
        Err(e) if refused(&e) => {
            s.fail_definition(Error::Source {
                source_name: name.clone(),
                message: format!(
                    "cannot read stream {}: {} (check the stream name, region, endpoint and \
                     credentials)",
                    params.stream_name,
                    describe(&e)
                ),
                cause: None,
            });
        }
        Err(e) => tracing::warn!(
            source = %name,
            "cannot reach Kinesis yet ({}); starting anyway, the shards are listed again every \
             batch",
            describe(&e)
        ),
    }
    let planner_name = name.clone();
    let records = s.planned_source(&name, move || KinesisPlanner {
        name: planner_name,
        params,
        client: kinesis,
        position: StreamPosition::default(),
        iterators: HashMap::new(),
        listed: BTreeMap::new(),
        first_listing_done: false,
        warned: HashMap::new(),
    });
    records.repartition(s.workers())
}
