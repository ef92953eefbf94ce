"""NetworkWordCount written the PySpark way, for measuring: lines from a TCP
server, split, (word, 1), reduceByKey(add); each batch's output is one
cheap pass printed as `OUT <batch ms> <wall ms> <words> <keys>`.

    python bench/python/wordcount_job.py HOST PORT SECONDS
"""

import sys
import time

from ember import SparkConf, SparkContext
from ember.streaming import StreamingContext

host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
conf = SparkConf().set("spark.ui.enabled", "false")
sc = SparkContext(master="local[2]", appName="PyWordCountBench", conf=conf)
ssc = StreamingContext(sc, 1)
counts = ssc.socketTextStream(host, port) \
    .flatMap(lambda line: line.split(" ")) \
    .map(lambda word: (word, 1)) \
    .reduceByKey(lambda a, b: a + b)


def report(t, rdd):
    pairs = rdd.collect()
    words = sum(n for _, n in pairs)
    print(f"OUT {round(t.timestamp() * 1000)} {round(time.time() * 1000)} {words} {len(pairs)}", flush=True)


counts.foreachRDD(report)
ssc.start()
ssc.awaitTerminationOrTimeout(seconds)
ssc.stop(stopGraceFully=False)
