"""Runs a PySpark streaming program unchanged on ember, as ``spark-submit``
would run it on Spark::

    python -m ember.submit [--master local[2]] [--conf key=value]... job.py [args...]

Inside the program, ``pyspark``, ``pyspark.streaming`` and the modules they
import from resolve to ember's. Importing a part of PySpark ember does not
offer (``pyspark.sql``, ``pyspark.ml``, …) fails with an ImportError saying
so.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import os
import runpy
import sys
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

_NOT_YET = {
    "pyspark.sql": "Spark SQL (DataFrames inside foreachRDD) is not supported by ember yet",
    "pyspark.streaming.kafka": "use ember's Kafka direct stream instead (Spark removed this module in 3.0)",
    "pyspark.streaming.kinesis": "the Kinesis source is not supported by ember yet",
}


class _Refuse(importlib.abc.MetaPathFinder):
    """Fails imports of the parts of PySpark that ember does not offer, with
    a message saying so instead of a bare ModuleNotFoundError."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None, target=None):
        if fullname != "pyspark" and not fullname.startswith("pyspark."):
            return None
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
    parser.add_argument("program", help="the Python file to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the program's arguments")
    options = parser.parse_args(argv)
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


if __name__ == "__main__":
    main()
