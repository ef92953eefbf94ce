"""The comparison's jobs written the PySpark way, one program for both
sides: ``python pyjobs.py …`` runs it on PySpark (Python workers fed by the
JVM), ``python -m ember.submit pyjobs.py …`` on ember, unchanged.

Usage: pyjobs.py <wordcount|window|state|regex> <host> <port> <master>
                 <interval ms> <seconds> <checkpoint dir>

``regex`` splits lines with a compiled regular expression, a function ember
cannot run natively (it stays in Python on both sides), then counts words as
``wordcount`` does.

stdout gets the lines compare.py reads, as SparkJobs.java prints them:
``STARTED``, ``OUT <batch ms> <wall ms> <words> <keys>`` and ``DONE …``.
After <seconds> batch intervals the process exits at once.
"""

import os
import re
import sys
import time

from pyspark import SparkConf, SparkContext
from pyspark.streaming import StreamingContext
from pyspark.streaming.listener import StreamingListener

WORD = re.compile(r"[^ ]+")


def emit(line):
    # One write(2) of a short line: whole even when the listener's thread
    # and the output write at once (and nothing here stops PySpark from
    # pickling the functions into its checkpoint).
    os.write(1, (line + "\n").encode())


def ms(value):
    """A time in ms: ember gives an int (-1 for none), PySpark a Scala Option."""
    if isinstance(value, int):
        return value
    return value.get() if value.isDefined() else -1


class Done(StreamingListener):
    def onBatchCompleted(self, batchCompleted):
        b = batchCompleted.batchInfo()
        emit(f"DONE {b.batchTime().milliseconds()} {ms(b.processingEndTime())} {b.numRecords()} "
             f"{ms(b.schedulingDelay())} {ms(b.processingDelay())} {ms(b.totalDelay())}")

    class Java:
        implements = ["org.apache.spark.streaming.api.java.PythonStreamingListener"]


def updateFunc(new_values, last_sum):
    return sum(new_values) + (last_sum or 0)


def output(time, rdd):
    counts = rdd.collect()
    words = sum(c for _, c in counts)
    emit(f"OUT {round(time.timestamp() * 1000)} {round(_now())} {words} {len(counts)}")


def _now():
    return time.time() * 1000


def main():
    job, host, port, master, interval_ms, seconds, checkpoint = sys.argv[1:8]
    interval_ms, seconds = int(interval_ms), int(seconds)
    conf = (SparkConf().setMaster(master).setAppName("ember-compare-py-" + job)
            .set("spark.ui.enabled", "false")
            .set("spark.driver.host", "127.0.0.1")
            .set("spark.driver.bindAddress", "127.0.0.1"))
    sc = SparkContext(conf=conf)
    sc.setLogLevel("ERROR")
    ssc = StreamingContext(sc, interval_ms / 1000)
    lines = ssc.socketTextStream(host, int(port))
    if job == "regex":
        words = lines.flatMap(WORD.findall)
    else:
        words = lines.flatMap(lambda line: line.split(" "))
    pairs = words.map(lambda word: (word, 1))
    if job in ("wordcount", "regex"):
        counts = pairs.reduceByKey(lambda a, b: a + b)
    elif job == "window":
        ssc.checkpoint(checkpoint)
        counts = pairs.reduceByKeyAndWindow(lambda a, b: a + b, lambda a, b: a - b, 30, 10,
                                            filterFunc=lambda kv: kv[1] > 0)
    elif job == "state":
        ssc.checkpoint(checkpoint)
        counts = pairs.updateStateByKey(updateFunc)
    else:
        raise SystemExit(f"unknown job {job}")
    counts.foreachRDD(output)
    ssc.addStreamingListener(Done())
    ssc.start()
    jssc = getattr(ssc, "_jssc", None)
    if jssc is not None:  # PySpark: the graph's zero time is in the JVM
        first = jssc.ssc().graph().zeroTime().milliseconds() + interval_ms
    else:
        first = ssc._native.first_batch_ms()
    emit(f"STARTED {round(_now())} first_batch {first}")
    until = first + seconds * interval_ms
    while _now() < until:
        time.sleep(0.1)
    os._exit(0)


if __name__ == "__main__":
    main()
