//! Writing a stream to a Kafka topic.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ember_core::{DStream, Data, Error};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use crate::error::KafkaFailure;

/// Where [`KafkaExt::save_to_kafka`] writes: a topic on some brokers, with an
/// idempotent producer (`enable.idempotence`, `acks=all`), so retries
/// inside the producer never duplicate a record.
#[derive(Clone, Debug)]
pub struct KafkaSink {
    topic: String,
    config: Vec<(String, String)>,
    flush_timeout: Duration,
}

impl KafkaSink {
    /// Writes to `topic` on the brokers at `bootstrap_servers`.
    pub fn new(bootstrap_servers: impl Into<String>, topic: impl Into<String>) -> Self {
        KafkaSink {
            topic: topic.into(),
            config: vec![
                ("bootstrap.servers".into(), bootstrap_servers.into()),
                ("enable.idempotence".into(), "true".into()),
                ("acks".into(), "all".into()),
            ],
            flush_timeout: Duration::from_secs(60),
        }
    }

    /// Sets a librdkafka producer property.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.push((key.into(), value.into()));
        self
    }

    /// How long a batch may wait for its deliveries before the context fails.
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }
}

/// Remembers failed deliveries.
#[derive(Clone, Default)]
struct Deliveries {
    failed: Arc<Mutex<Vec<String>>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed
                .lock()
                .expect("deliveries lock")
                .push(e.to_string());
        }
    }
}

/// Sends every record of one worker's part of a batch and waits for them.
struct Writer {
    sink: KafkaSink,
    producer: Option<(BaseProducer<Deliveries>, Deliveries)>,
}

impl Writer {
    fn write(&mut self, records: Vec<(Option<Vec<u8>>, Vec<u8>)>) -> Result<(), KafkaFailure> {
        if records.is_empty() {
            return Ok(());
        }
        let topic = self.sink.topic.clone();
        let fail = |message: String, cause: Option<KafkaError>| KafkaFailure::Sink {
            topic: topic.clone(),
            message,
            cause: cause.map(Box::new),
        };
        if self.producer.is_none() {
            let mut c = ClientConfig::new();
            for (k, v) in &self.sink.config {
                c.set(k, v);
            }
            let d = Deliveries::default();
            let p = c.create_with_context(d.clone()).map_err(|e| {
                fail(
                    format!("cannot create a producer ({e}): check the sink's settings"),
                    Some(e),
                )
            })?;
            self.producer = Some((p, d));
        }
        let Some((producer, deliveries)) = self.producer.as_mut() else {
            unreachable!("created above");
        };
        let n = records.len() as u64;
        for (key, value) in &records {
            loop {
                let mut r = BaseRecord::<[u8], [u8]>::to(&topic).payload(value.as_slice());
                if let Some(k) = key {
                    r = r.key(k.as_slice());
                }
                match producer.send(r) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        producer.poll(Duration::from_millis(50));
                    }
                    Err((e, _)) => {
                        return Err(fail(format!("cannot send a record: {e}"), Some(e)));
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
        if let Err(e) = producer.flush(self.sink.flush_timeout) {
            return Err(fail(
                format!(
                    "{n} record(s) not confirmed within {:?}: {e} (is the broker up?)",
                    self.sink.flush_timeout
                ),
                Some(e),
            ));
        }
        let failed = std::mem::take(&mut *deliveries.failed.lock().expect("deliveries lock"));
        if let Some(first) = failed.first() {
            return Err(fail(
                format!(
                    "{} of {n} record(s) were not delivered; first error: {first}",
                    failed.len()
                ),
                None,
            ));
        }
        Ok(())
    }
}

/// Kafka outputs on DStreams.
pub trait KafkaExt<T> {
    /// Writes every record to the sink's topic as `(key, value)` bytes made
    /// by `to_bytes`. An output operation: each worker sends its part of the
    /// batch and waits for the broker to confirm every record; a record
    /// that cannot be delivered stops the context with the broker's reason.
    fn save_to_kafka(
        &self,
        sink: KafkaSink,
        to_bytes: impl FnMut(&T) -> (Option<Vec<u8>>, Vec<u8>) + 'static,
    );
}

impl<'s, T: Data> KafkaExt<T> for DStream<'s, T> {
    fn save_to_kafka(
        &self,
        sink: KafkaSink,
        mut to_bytes: impl FnMut(&T) -> (Option<Vec<u8>>, Vec<u8>) + 'static,
    ) {
        let mut writer = Writer {
            sink,
            producer: None,
        };
        self.try_foreach_partition(move |part, _time| {
            let records: Vec<_> = part.iter().map(&mut to_bytes).collect();
            writer.write(records).map_err(Error::connector)
        });
    }
}
