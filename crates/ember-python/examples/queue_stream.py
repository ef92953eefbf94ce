"""QueueStream in Python: five batches of 1..1000 pushed through a queue,
each counted by last digit; stops by itself.

    python crates/ember-python/examples/queue_stream.py
"""

import time

from ember import SparkContext
from ember.streaming import StreamingContext

if __name__ == "__main__":
    sc = SparkContext(master="local[2]", appName="PythonQueueStream")
    ssc = StreamingContext(sc, 1)
    queue = [sc.parallelize(range(1, 1001), 10) for _ in range(5)]
    counts = ssc.queueStream(queue).map(lambda x: (x % 10, 1)).reduceByKey(lambda a, b: a + b)
    counts.pprint()
    ssc.start()
    time.sleep(6)
    ssc.stop(stopSparkContext=True, stopGraceFully=True)
