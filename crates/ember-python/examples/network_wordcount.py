"""NetworkWordCount in Python: counts the words of the lines read from a TCP
server each second, as Spark's guide does.

    nc -lk 9999                                                      # terminal 1
    python crates/ember-python/examples/network_wordcount.py localhost 9999   # terminal 2

Ctrl-C stops it gracefully. The same file with ``pyspark`` imports runs
under ``python -m ember.submit`` too.
"""

import sys

from ember import SparkContext
from ember.streaming import StreamingContext

if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("Usage: network_wordcount.py <hostname> <port>", file=sys.stderr)
        sys.exit(2)
    sc = SparkContext(master="local[2]", appName="PythonNetworkWordCount")
    ssc = StreamingContext(sc, 1)
    lines = ssc.socketTextStream(sys.argv[1], int(sys.argv[2]))
    counts = lines.flatMap(lambda line: line.split(" ")) \
        .map(lambda word: (word, 1)) \
        .reduceByKey(lambda a, b: a + b)
    counts.pprint()
    ssc.start()
    ssc.awaitTermination()
