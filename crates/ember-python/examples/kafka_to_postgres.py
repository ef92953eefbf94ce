"""Kafka → ember → PostgreSQL, exactly once, in Python: running word counts
of a topic's values upserted into a table after every batch. With the
checkpoint, a restart after kill -9 re-reads exactly the offsets of the
batches that were not committed, and the sink skips or replaces batches
already written, so every word is counted once.

    python crates/ember-python/examples/kafka_to_postgres.py \\
        localhost:9092 words postgres://postgres@localhost/postgres /tmp/k2p-checkpoint
"""

import sys

from ember import SparkContext
from ember.streaming import StreamingContext
from ember.streaming.kafka import KafkaUtils


def create(brokers, topic, url, checkpoint):
    sc = SparkContext(master="local[2]", appName="PythonKafkaToPostgres")
    ssc = StreamingContext(sc, 1)
    ssc.checkpoint(checkpoint)
    words = KafkaUtils.createDirectStream(ssc, [topic], {"bootstrap.servers": brokers}) \
        .flatMap(lambda kv: kv[1].split())
    totals = words.map(lambda w: (w, 1)).updateStateByKey(lambda new, old: sum(new) + (old or 0))
    totals.checkpoint(2)
    totals.saveToPostgres(url, "word_counts", ["word", "total"], keys=["word"],
                          createTableSql="CREATE TABLE word_counts (word TEXT PRIMARY KEY, total BIGINT)")
    return ssc


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print("Usage: kafka_to_postgres.py <brokers> <topic> <postgres-url> <checkpoint-dir>",
              file=sys.stderr)
        sys.exit(2)
    ssc = StreamingContext.getOrCreate(sys.argv[4], lambda: create(*sys.argv[1:]))
    ssc.start()
    ssc.awaitTermination()
