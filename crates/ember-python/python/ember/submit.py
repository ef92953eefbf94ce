"""Runs a PySpark streaming program unchanged on ember, as ``spark-submit``
would run it on Spark::

    python -m ember.submit [--master local[2]] [--conf key=value]... job.py [args...]

Inside the program, ``pyspark``, ``pyspark.streaming`` and the modules they
import from resolve to ember's.

``--processes N`` runs the program in N processes on this machine, one
ember cluster over loopback (``--workers W`` each, 1 by default): each
process runs the whole program and builds the same graph, the sources and
the records are spread over all the workers, and the outputs
(``foreachRDD``, ``pprint``) run in process 0, whose standard output passes
through (the others' lines go to stderr, prefixed ``[pN]``). It is the way
past one interpreter lock: the functions ember cannot run natively (see
``ssc.explain()``) then run in N interpreters at once. Programs whose
functions all run natively gain little from it. Importing a part of PySpark ember does not
offer (``pyspark.ml``, ``pyspark.pandas``, …) fails with an ImportError saying
so. ``pyspark.sql`` is ``ember.sql`` (DataFrames and SQL inside
``foreachRDD``), which needs the ``sql`` extra.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import importlib.util
import os
import runpy
import signal
import socket
import subprocess
import sys
import threading
from typing import List, Optional, Sequence

__all__ = ["install", "main"]

# PySpark's module → ember's module offering the same names.
ALIASES = {
    "pyspark": "ember",
    "pyspark.conf": "ember.context",
    "pyspark.context": "ember.context",
    "pyspark.rdd": "ember.rdd",
    "pyspark.resultiterable": "ember.rdd",
    "pyspark.storagelevel": "ember.context",
    "pyspark.accumulators": "ember.context",
    "pyspark.broadcast": "ember.context",
    "pyspark.streaming": "ember.streaming",
    "pyspark.streaming.context": "ember.streaming.context",
    "pyspark.streaming.dstream": "ember.streaming.dstream",
    "pyspark.streaming.listener": "ember.streaming.listener",
}

# Loaded when first imported: ember.sql needs the `sql` extra (DataFusion),
# which a program without SQL does not need installed.
LAZY_ALIASES = {
    "pyspark.sql": "ember.sql",
    "pyspark.sql.session": "ember.sql",
    "pyspark.sql.dataframe": "ember.sql",
    "pyspark.sql.utils": "ember.sql",
    "pyspark.errors": "ember.sql",
    "pyspark.sql.types": "ember.sql.types",
}

_NOT_YET = {
    "pyspark.streaming.kafka": "use ember's Kafka direct stream instead (Spark removed this module in 3.0)",
    "pyspark.streaming.kinesis": "the Kinesis source is not supported by ember yet",
}


class _Existing(importlib.abc.Loader):
    """Loads a PySpark module name as an ember module already imported."""

    def __init__(self, module) -> None:
        self._module = module

    def create_module(self, spec):
        return self._module

    def exec_module(self, module) -> None:
        pass


class _Refuse(importlib.abc.MetaPathFinder):
    """Fails imports of the parts of PySpark that ember does not offer, with
    a message saying so instead of a bare ModuleNotFoundError."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None, target=None):
        if fullname != "pyspark" and not fullname.startswith("pyspark."):
            return None
        if fullname in LAZY_ALIASES:
            module = importlib.import_module(LAZY_ALIASES[fullname])
            return importlib.util.spec_from_loader(fullname, _Existing(module))
        for prefix, why in _NOT_YET.items():
            if fullname == prefix or fullname.startswith(prefix + "."):
                raise ImportError(f"{fullname}: {why}", name=fullname)
        raise ImportError(
            f"{fullname} is not part of what ember offers of PySpark "
            f"(pyspark, pyspark.streaming and their core classes)",
            name=fullname,
        )


def install() -> None:
    """Makes ``import pyspark…`` resolve to ember in this interpreter."""
    for name, target in ALIASES.items():
        sys.modules[name] = importlib.import_module(target)
    if not any(isinstance(f, _Refuse) for f in sys.meta_path):
        sys.meta_path.insert(0, _Refuse())


def main(argv: Optional[List[str]] = None) -> None:
    """The launcher's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m ember.submit",
        description="Run a PySpark streaming program on ember, unchanged.",
    )
    parser.add_argument("--master", help="local, local[N] or local[*] (default: local[*])")
    parser.add_argument("--name", help="the application's name")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="a Spark setting, e.g. spark.ui.enabled=false")
    parser.add_argument("--processes", type=int, default=None, metavar="N",
                        help="run the program in N processes (an ember cluster over loopback)")
    parser.add_argument("--workers", type=int, default=1, metavar="W",
                        help="workers per process with --processes (default 1)")
    parser.add_argument("program", help="the Python file to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the program's arguments")
    options = parser.parse_args(argv)
    if options.processes is not None:
        if options.processes < 1 or options.workers < 1:
            parser.error("--processes and --workers must be at least 1")
        forwarded = list(argv if argv is not None else sys.argv[1:])
        sys.exit(_supervise(options.processes, options.workers, _without_cluster_flags(forwarded)))
    if options.master:
        os.environ["EMBER_MASTER"] = options.master
    if options.name:
        os.environ["EMBER_APP_NAME"] = options.name
    for setting in options.conf:
        key, sep, value = setting.partition("=")
        if not sep:
            parser.error(f"--conf takes KEY=VALUE, got {setting!r}")
        os.environ["EMBER_CONF_" + key] = value
    install()
    sys.argv = [options.program, *options.args]
    program_dir = os.path.dirname(os.path.abspath(options.program))
    sys.path.insert(0, program_dir)
    runpy.run_path(options.program, run_name="__main__")


def _without_cluster_flags(argv: List[str]) -> List[str]:
    """The launcher's arguments less ``--processes`` and ``--workers``
    (before the program's name; the program's own are kept as they are)."""
    out: List[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):
            return out + argv[i:]
        name = arg.split("=", 1)[0]
        if name in ("--processes", "--workers"):
            i += 1 if "=" in arg else 2
            continue
        out.append(arg)
        if "=" not in arg and name in ("--master", "--name", "--conf"):
            out.append(argv[i + 1])
            i += 1
        i += 1
    return out


def _free_ports(count: int) -> List[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _prefix(stream, index: int) -> None:
    for line in stream:
        sys.stderr.write(f"[p{index}] {line}")
        sys.stderr.flush()


def _supervise(processes: int, workers: int, argv: List[str]) -> int:
    """Runs the launcher ``processes`` times as one cluster and waits: the
    first process to fail stops the others and gives the exit status."""
    hosts = ",".join(f"127.0.0.1:{p}" for p in _free_ports(processes))
    children = []
    for index in range(processes):
        env = dict(os.environ, EMBER_MASTER="cluster", EMBER_HOSTS=hosts,
                   EMBER_PROCESS=str(index), EMBER_WORKERS=str(workers))
        out = None if index == 0 else subprocess.PIPE
        child = subprocess.Popen([sys.executable, "-m", "ember.submit", *argv], env=env,
                                 stdout=out, text=True)
        if out is not None:
            threading.Thread(target=_prefix, args=(child.stdout, index), daemon=True).start()
        children.append(child)

    def forward(signum, _frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    status = 0
    waiting = list(children)
    while waiting:
        for child in list(waiting):
            try:
                code = child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
            waiting.remove(child)
            if code != 0 and status == 0:
                status = code
                for other in waiting:
                    other.terminate()
    return status


if __name__ == "__main__":
    main()
