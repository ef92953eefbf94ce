//! The real services some tests talk to, as `.ci/test.sh` starts them: a
//! Kafka-protocol broker (tansu) and a PostgreSQL server, found through
//! environment variables.

/// The value of `var`, naming the service; `None` (with a note) when
/// `EMBER_SKIP_SERVICE_TESTS=1`. A missing variable otherwise fails the
/// test, saying how to start the service.
pub fn service(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) => Some(v),
        Err(_) if std::env::var("EMBER_SKIP_SERVICE_TESTS").as_deref() == Ok("1") => {
            eprintln!("EMBER_SKIP_SERVICE_TESTS=1: skipping a test that needs {what}");
            None
        }
        Err(_) => panic!(
            "{var} is not set: this test needs {what}; run `bash .ci/test.sh`, which starts it \
             (or set EMBER_SKIP_SERVICE_TESTS=1 to skip)"
        ),
    }
}

/// The Kafka broker's `host:port` (EMBER_TEST_KAFKA_BROKERS).
pub fn kafka_brokers() -> Option<String> {
    service("EMBER_TEST_KAFKA_BROKERS", "a Kafka broker")
}

/// The PostgreSQL server's URL (EMBER_TEST_POSTGRES_URL).
pub fn postgres_url() -> Option<String> {
    service("EMBER_TEST_POSTGRES_URL", "a PostgreSQL server")
}

/// A name no other test run uses: `prefix-<pid>-<nanos>`.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Creates `topic` with `partitions` partitions on the broker at `brokers`,
/// with tansu's command line (installed by `.ci/setup.sh`).
pub fn create_topic(brokers: &str, topic: &str, partitions: u32) {
    let out = std::process::Command::new("tansu")
        .args([
            "topic",
            "create",
            topic,
            "--partitions",
            &partitions.to_string(),
        ])
        .args(["--broker", &format!("tcp://{brokers}")])
        .output()
        .expect("tansu is installed by .ci/setup.sh");
    assert!(
        out.status.success(),
        "creating topic {topic}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
