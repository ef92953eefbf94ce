"""Running word counts with mapWithState (Spark's StateSpec, which PySpark
lacks): each word's total so far, and words idle for 30 s dropped. Words
come from a directory: drop text files into it. With a checkpoint
directory, a restart resumes the counts.

    mkdir -p /tmp/words
    python crates/ember-python/examples/stateful_word_count.py /tmp/words /tmp/words-checkpoint
    echo "to be or not to be" > /tmp/words/1.txt     # in another terminal
"""

import sys

from ember import SparkContext
from ember.streaming import StateSpec, StreamingContext


def running_total(word, one, state):
    if state.isTimingOut():
        return (word, "idle, dropped")
    total = (state.get() if state.exists() else 0) + one
    state.update(total)
    return (word, total)


def create(directory, checkpoint):
    sc = SparkContext(master="local[2]", appName="PythonStatefulWordCount")
    ssc = StreamingContext(sc, 1)
    ssc.checkpoint(checkpoint)
    words = ssc.textFileStream(directory).flatMap(lambda line: line.split())
    totals = words.map(lambda w: (w, 1)).mapWithState(StateSpec.function(running_total).timeout(30))
    totals.pprint()
    return ssc


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("Usage: stateful_word_count.py <directory> <checkpoint-directory>", file=sys.stderr)
        sys.exit(2)
    directory, checkpoint = sys.argv[1:]
    ssc = StreamingContext.getOrCreate(checkpoint, lambda: create(directory, checkpoint))
    ssc.start()
    ssc.awaitTermination()
