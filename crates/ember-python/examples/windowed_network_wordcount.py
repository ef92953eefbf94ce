"""Windowed word counts in Python: the counts of the last 30 seconds, every
10 seconds, kept incrementally with an inverse function (words whose count
falls to 0 are dropped), and shown live on the web UI's dashboard.

    nc -lk 9999                                                                 # terminal 1
    python crates/ember-python/examples/windowed_network_wordcount.py localhost 9999   # terminal 2

The dashboard's address is printed at start (http://127.0.0.1:4040/dashboard/0
unless that port is taken).
"""

import sys
from operator import add, sub

from ember import SparkContext
from ember.streaming import StreamingContext

if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("Usage: windowed_network_wordcount.py <hostname> <port>", file=sys.stderr)
        sys.exit(2)
    sc = SparkContext(master="local[2]", appName="PythonWindowedNetworkWordCount")
    ssc = StreamingContext(sc, 1)
    pairs = ssc.socketTextStream(sys.argv[1], int(sys.argv[2])) \
        .flatMap(lambda line: line.split()) \
        .map(lambda word: (word, 1))
    counts = pairs.reduceByKeyAndWindow(add, sub, 30, 10, filterFunc=lambda kv: kv[1] > 0)
    counts.pprint()
    counts.toDashboard("words in the last 30 s")
    ssc.start()
    print(f"dashboard: {ssc.uiWebUrl}/dashboard/0", file=sys.stderr)
    ssc.awaitTermination()
