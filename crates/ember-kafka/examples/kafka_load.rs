//! A load generator for Kafka benchmarks: writes lines of words to a topic,
//! as fast as the broker takes them or at a fixed rate.
//!
//! ```text
//! cargo run --release -p ember-streaming-kafka --example kafka_load -- BROKERS TOPIC LINES [LINES_PER_SECOND]
//! ```
//!
//! Line `i` holds three words from a vocabulary of 1,000, so the word
//! counts of any run can be computed independently. Prints the lines
//! written and the rate achieved.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

/// Counts deliveries the broker refused, and keeps the first reason.
#[derive(Clone, Default)]
struct Failures(Arc<(AtomicU64, std::sync::Mutex<Option<String>>)>);

impl ClientContext for Failures {}

impl ProducerContext for Failures {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.0 .0.fetch_add(1, Ordering::Relaxed);
            self.0
                 .1
                .lock()
                .unwrap()
                .get_or_insert_with(|| e.to_string());
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (brokers, topic, lines) = match args.as_slice() {
        [b, t, n, ..] => (
            b.clone(),
            t.clone(),
            n.parse::<u64>().expect("LINES is a number"),
        ),
        _ => {
            eprintln!("usage: kafka_load BROKERS TOPIC LINES [LINES_PER_SECOND]");
            std::process::exit(2);
        }
    };
    let rate: Option<f64> = args.get(3).map(|r| r.parse().expect("a rate in lines/s"));
    let failures = Failures::default();
    let producer: BaseProducer<Failures> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("message.timeout.ms", "30000")
        .create_with_context(failures.clone())
        .expect("a producer");
    let start = Instant::now();
    for i in 0..lines {
        if let Some(r) = rate {
            let due = start + Duration::from_secs_f64(i as f64 / r);
            let now = Instant::now();
            if due > now {
                producer.poll(Duration::ZERO);
                std::thread::sleep(due - now);
            }
        }
        let value = format!("w{} w{} w{}", i % 1000, (i * 7 + 3) % 1000, (i / 3) % 1000);
        let key = i.to_string();
        loop {
            match producer.send(BaseRecord::to(&topic).key(&key).payload(&value)) {
                Ok(()) => break,
                Err(_) => {
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("all lines delivered");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "kafka_load: {lines} lines in {secs:.1} s ({:.0} lines/s)",
        lines as f64 / secs
    );
}
