"""SqlNetworkWordCount in Python: each second's words from a TCP server
become a DataFrame, a SQL query counts them, and ``show()`` prints the
counts as Spark's table.

    pip install "./crates/ember-python[sql]"                             # DataFusion, pyarrow
    nc -lk 9999                                                          # terminal 1
    python crates/ember-python/examples/sql_network_wordcount.py localhost 9999   # terminal 2

An empty batch prints its time only. Ctrl-C stops it gracefully.
"""

import sys

from ember import SparkContext
from ember.sql import Row, SparkSession
from ember.streaming import StreamingContext


def count_words(time, rdd):
    """One batch: its words as the view ``words``, counted with SQL."""
    print(f"========= {time} =========")
    if rdd.isEmpty():
        return
    spark = SparkSession.builder.getOrCreate()
    spark.createDataFrame(rdd.map(lambda w: Row(word=w))).createOrReplaceTempView("words")
    spark.sql("select word, count(*) as total from words group by word order by total desc, word").show()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("Usage: sql_network_wordcount.py <hostname> <port>", file=sys.stderr)
        sys.exit(2)
    sc = SparkContext(master="local[2]", appName="PythonSqlNetworkWordCount")
    ssc = StreamingContext(sc, 1)
    words = ssc.socketTextStream(sys.argv[1], int(sys.argv[2])).flatMap(lambda line: line.split(" "))
    words.foreachRDD(count_words)
    ssc.start()
    ssc.awaitTermination()
