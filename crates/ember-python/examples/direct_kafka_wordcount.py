"""Word counts of a Kafka topic's values in Python, with the direct stream
(each batch reads an offset range per partition).

    python crates/ember-python/examples/direct_kafka_wordcount.py localhost:9092 words
"""

import sys

from ember import SparkContext
from ember.streaming import StreamingContext
from ember.streaming.kafka import KafkaUtils

if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("Usage: direct_kafka_wordcount.py <brokers> <topic>", file=sys.stderr)
        sys.exit(2)
    brokers, topic = sys.argv[1:]
    sc = SparkContext(master="local[2]", appName="PythonDirectKafkaWordCount")
    ssc = StreamingContext(sc, 2)
    kvs = KafkaUtils.createDirectStream(ssc, [topic], {"bootstrap.servers": brokers})
    counts = kvs.map(lambda kv: kv[1]) \
        .flatMap(lambda line: line.split(" ")) \
        .map(lambda word: (word, 1)) \
        .reduceByKey(lambda a, b: a + b)
    counts.pprint()
    ssc.start()
    ssc.awaitTermination()
