"""``ember.sql`` (``pyspark.sql`` under the launcher): DataFrames and SQL
inside ``foreachRDD``.

``show()`` is compared byte for byte with the text PySpark 4.3 printed for
the same DataFrames (``crates/ember-sql/tests/spark-show``: the cases are
built by the same code on both); the streaming tests run on a manual clock
at ``local[1]`` and ``local[3]`` and compare with counts made here in plain
Python. Needs the ``sql`` extra (``datafusion``, ``pyarrow``); without it
these tests are skipped, unless ``EMBER_REQUIRE_SQL=1`` (as in CI).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import io
import os
import subprocess
import sys
from collections import Counter, namedtuple
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

if importlib.util.find_spec("datafusion") is None and os.environ.get("EMBER_REQUIRE_SQL") != "1":
    pytest.skip("the sql extra (datafusion, pyarrow) is not installed", allow_module_level=True)

from ember.context import SparkConf, SparkContext
from ember.sql import AnalysisException, ParseException, Row, SparkSession
from ember.sql.types import LongType, StringType, StructField, StructType
from ember.streaming import StreamingContext

SPARK_SHOW = Path(__file__).resolve().parents[2] / "ember-sql" / "tests" / "spark-show"


def _cases():
    spec = importlib.util.spec_from_file_location("spark_show_cases", SPARK_SHOW / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build


@pytest.fixture
def spark():
    session = SparkSession.builder.getOrCreate()
    yield session
    session.stop()


def test_show_prints_what_spark_prints(spark) -> None:
    cases = _cases()(spark, Row)
    assert len(cases) == len(list(SPARK_SHOW.glob("*.txt")))
    for name, df, n, truncate, vertical in cases:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            df.show(n, truncate, vertical)
        want = (SPARK_SHOW / f"{name}.txt").read_text(encoding="utf-8")
        assert printed.getvalue() == want, f"{name}:\n{printed.getvalue()}\n--- spark:\n{want}"


def test_schemas_are_inferred_as_pyspark_infers_them(spark) -> None:
    Point = namedtuple("Point", ["x", "y"])
    assert spark.createDataFrame([Row(word="a", total=1)]).dtypes == [("word", "string"), ("total", "bigint")]
    assert spark.createDataFrame([("a", 1.5, True)]).dtypes == [("_1", "string"), ("_2", "double"), ("_3", "boolean")]
    # A dict's keys are sorted, as PySpark sorts them.
    assert spark.createDataFrame([{"b": 1, "a": "x"}]).columns == ["a", "b"]
    assert spark.createDataFrame([Point(1, 2)]).columns == ["x", "y"]
    assert spark.createDataFrame([("a", 1)], ["word", "n"]).columns == ["word", "n"]
    # A first row with a None looks further for the type.
    df = spark.createDataFrame([Row(a=None), Row(a=3)])
    assert df.dtypes == [("a", "bigint")] and df.collect() == [Row(a=None), Row(a=3)]
    schema = StructType([StructField("word", StringType()), StructField("n", LongType())])
    assert spark.createDataFrame([("x", 2)], schema).collect() == [Row(word="x", n=2)]
    assert spark.createDataFrame(["x", "y"], "string").collect() == [Row(value="x"), Row(value="y")]
    assert spark.createDataFrame([(datetime.date(2024, 1, 2),)]).dtypes == [("_1", "date")]

    with pytest.raises(ValueError, match="CANNOT_INFER_EMPTY_SCHEMA"):
        spark.createDataFrame([])
    with pytest.raises(TypeError, match="CANNOT_INFER_SCHEMA_FOR_TYPE"):
        spark.createDataFrame(["plain", "strings"])
    with pytest.raises(TypeError, match="CANNOT_MERGE_TYPE"):
        spark.createDataFrame([Row(a=1), Row(a="one")])
    with pytest.raises(TypeError, match="FIELD_DATA_TYPE_UNACCEPTABLE"):
        spark.createDataFrame([("x",)], "n bigint")
    with pytest.raises(ValueError, match="CANNOT_DETERMINE_TYPE"):
        spark.createDataFrame([Row(a=None)])

    # DataFrames made for batches do not stay registered in the session:
    # only the views a program names are there.
    for i in range(50):
        spark.createDataFrame([Row(n=i)]).createOrReplaceTempView("latest")
    assert set(spark._ctx.catalog().schema().names()) == {"latest"}
    assert spark.sql("select n from latest").collect() == [Row(n=49)]


def test_sql_mistakes_raise_errors_quoting_the_query(spark) -> None:
    spark.createDataFrame([Row(word="a")]).createOrReplaceTempView("words")
    with pytest.raises(ParseException, match="selec word from words"):
        spark.sql("selec word from words")
    with pytest.raises(AnalysisException, match="nowhere"):
        spark.sql("select word from nowhere")
    with pytest.raises(AnalysisException, match="wrd"):
        spark.sql("select wrd from words")
    with pytest.raises(AnalysisException):
        spark.sql("select word + 1 from words").collect()
    with pytest.raises(AnalysisException, match="already exists"):
        spark.createDataFrame([Row(word="b")]).createTempView("words")
    # Hostile text: an error each time, never a crash of the interpreter.
    for query in ["", ";;", "\x00", "select " + "(" * 20000 + "1" + ")" * 20000,
                  "select 'unterminated", "select 💥 from words"]:
        with pytest.raises(AnalysisException):
            spark.sql(query).collect()
    # The session still works.
    assert spark.sql("select count(*) as n from words").collect() == [Row(n=1)]


def _manual_context(master: str) -> Tuple[SparkContext, StreamingContext]:
    conf = (SparkConf(loadDefaults=False).set("spark.ui.enabled", "false")
            .set("spark.streaming.clock", "org.apache.spark.util.ManualClock"))
    sc = SparkContext(master, "test_sql", conf=conf)
    return sc, StreamingContext(sc, 1)


BATCHES = [
    ["to be or not to be", "that is the question"],
    [],
    ["be be be", "日本 語 日本"],
    ["x"] * 200,
]


@pytest.mark.parametrize("master", ["local[1]", "local[3]"])
def test_sql_word_count_in_foreach_rdd_equals_counting(master: str) -> None:
    sc, ssc = _manual_context(master)
    seen: List[Tuple[int, Dict[str, int], str]] = []

    def process(time, rdd):
        spark = SparkSession.builder.config(conf=rdd.context.getConf()).getOrCreate()
        try:
            words = spark.createDataFrame(rdd.map(lambda w: Row(word=w)))
        except ValueError:
            seen.append((len(seen), {}, "empty"))
            return
        words.createOrReplaceTempView("words")
        counts = spark.sql("select word, count(*) as total from words group by word")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            counts.show()
        seen.append((len(seen), {r.word: r.total for r in counts.collect()}, out.getvalue()))

    try:
        lines = ssc.queueStream([sc.parallelize(b) for b in BATCHES])
        lines.flatMap(lambda line: line.split(" ")).foreachRDD(process)
        # toDF with column names, in another output of the same batches.
        totals: List[int] = []
        lines.map(lambda line: (line, len(line))).foreachRDD(
            lambda rdd: totals.append(rdd.toDF(["line", "n"]).count() if not rdd.isEmpty() else 0))
        ssc.start()
        ssc._run_batches(len(BATCHES))
    finally:
        ssc.stop(stopSparkContext=True)
        sc.stop()
        StreamingContext._activeContext = None
        SparkSession.builder.getOrCreate().stop()

    assert totals == [len(b) for b in BATCHES]
    assert len(seen) == len(BATCHES)
    for (_, counts, text), batch in zip(seen, BATCHES):
        want = Counter(w for line in batch for w in line.split(" "))
        assert counts == dict(want)
        if want:
            width = max(3, max(len(w) + sum(1 for c in w if ord(c) > 0x2E80) for w in want), 4)
            assert text.startswith(f"+{'-' * width}+-----+\n|{'word'.rjust(width)}|total|\n")
            assert text.endswith("+\n\n")


def _launcher_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_pyspark_sql_imports_resolve_to_ember_under_the_launcher(tmp_path: Path) -> None:
    program = tmp_path / "imports.py"
    program.write_text(
        "from pyspark.sql import Row, SparkSession\n"
        "from pyspark.sql.types import StructType, StringType\n"
        "from pyspark.errors import AnalysisException\n"
        "spark = SparkSession.builder.appName('x').getOrCreate()\n"
        "df = spark.createDataFrame([Row(word='a', total=1)])\n"
        "df.show()\n"
        "print(type(StructType()).__module__, AnalysisException.__module__)\n"
    )
    done = subprocess.run([sys.executable, "-m", "ember.submit", str(program)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path, env=_launcher_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout == ("+----+-----+\n|word|total|\n+----+-----+\n|   a|    1|\n+----+-----+\n\n"
                           "ember.sql.types ember.sql\n")
