"""``python -m ember.submit --processes N``: one program in N processes (an
ember cluster over loopback), so that the functions that stay in Python run
in N interpreters at once. The expectations are computed here from the text
sent (word counts), and the processes are told apart by their pids."""

from __future__ import annotations

import ast
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from support import Job, Netcat

PROGRAM = textwrap.dedent('''
    import os
    import sys

    from pyspark import SparkContext
    from pyspark.streaming import StreamingContext


    def tag(line):
        # Reads the global `os`: ember cannot run it natively, so it runs in
        # the Python of the process holding the line.
        return [(word, os.getpid()) for word in line.split()]


    def show(rdd):
        pairs = rdd.collect()
        words = Counter(w for w, _ in pairs)
        print("BATCH", dict(words), sorted({pid for _, pid in pairs}), flush=True)


    from collections import Counter

    sc = SparkContext("local[2]", "processes")
    ssc = StreamingContext(sc, 0.5)
    ssc.socketTextStream("127.0.0.1", int(sys.argv[1])).flatMap(tag).foreachRDD(show)
    print("PROCESS", os.environ.get("EMBER_PROCESS"), os.getpid(), flush=True)
    ssc.start()
    ssc.awaitTermination()
''')


def results(lines):
    counts: Counter = Counter()
    pids = set()
    for line in lines:
        if line.startswith("BATCH "):
            words, seen = line[len("BATCH "):].rsplit(" [", 1)
            counts.update(ast.literal_eval(words))
            pids.update(ast.literal_eval("[" + seen))
    return counts, pids


def test_a_program_in_two_processes_counts_every_word_and_runs_python_in_both(tmp_path: Path):
    program = tmp_path / "tagged_words.py"
    program.write_text(PROGRAM)
    nc = Netcat()
    job = Job([sys.executable, "-m", "ember.submit", "--processes", "2", str(program),
               str(nc.port)], tmp_path)
    try:
        job.wait_for(lambda lines: any(line.startswith("PROCESS 0") for line in lines),
                     "process 0 did not start")
        want: Counter = Counter()
        # Text paced over several receiver blocks (one per 200 ms), each dealt
        # to the least loaded worker, until Python has run in both processes
        # (the receiver may connect late and get what was sent as one block).
        for round_ in range(100):
            text = "".join(f"w{round_ % 3} x{i % 5} y\n" for i in range(200))
            want.update(text.split())
            nc.send(text)
            time.sleep(0.1)
            if round_ >= 12 and len(results(job.lines)[1]) == 2:
                break
        job.wait_for(lambda lines: results(lines)[0] == want,
                     f"the counts did not reach {sum(want.values())} words")
        counts, pids = results(job.lines)
        assert counts == want
        assert len(pids) == 2, f"Python ran in {pids}: expected both processes"
    finally:
        status = job.stop()
        nc.close()
    assert status == 0, job.stderr[-3000:]
    # Only process 0 runs the outputs; the other's stdout comes prefixed on stderr.
    assert [line for line in job.lines if line.startswith("PROCESS")] == [
        line for line in job.lines if line.startswith("PROCESS 0")]
    assert "[p1] PROCESS 1" in job.stderr
    # The start logs where the program's functions run (`tag` reads a global).
    assert "0 of 1 functions of the program run natively, 1 in Python" in job.stderr


def test_the_processes_get_the_launchers_arguments_less_the_cluster_ones():
    from ember.submit import _without_cluster_flags

    argv = ["--processes", "2", "--master", "local[2]", "--workers=3", "--conf", "a=b",
            "prog.py", "--processes", "9", "x"]
    assert _without_cluster_flags(argv) == ["--master", "local[2]", "--conf", "a=b",
                                            "prog.py", "--processes", "9", "x"]
    assert _without_cluster_flags(["--processes=2", "p.py"]) == ["p.py"]
