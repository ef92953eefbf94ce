"""The DataFrames whose ``show()`` text ember must print as Spark does.

``build(spark, Row)`` makes each case with a session's public API, so the
same cases run on PySpark and on ember (``crates/ember-python/tests/
test_sql.py``). Run with PySpark (and Java) installed to write Spark's text
into ``<name>.txt`` beside this file:

    python generate.py

The Rust test (``../show.rs``) builds the same rows with DataFusion SQL.
"""

import datetime
import decimal
import os


def build(spark, Row):
    """[(name, DataFrame, n, truncate, vertical)] of every case."""
    cases = []

    def case(name, df, n=20, truncate=True, vertical=False):
        cases.append((name, df, n, truncate, vertical))

    case("word_counts", spark.createDataFrame(
        [Row(word="hello", total=2), Row(word="to", total=10), Row(word="a", total=1)]))
    case("strings", spark.createDataFrame([
        Row(s="exactly twenty chars"), Row(s="twenty one characters"), Row(s=""),
        Row(s="a much longer string than twenty characters"), Row(s=None), Row(s="日本語のテキスト"),
        Row(s="tab\there"), Row(s="line\nbreak")]))
    case("strings_untruncated", spark.createDataFrame([
        Row(s="a much longer string than twenty characters"), Row(s="x"), Row(s=None), Row(s="日本語")]),
        truncate=False)
    case("truncate_3", spark.createDataFrame([Row(s="abcdef", n=123456)]), truncate=3)
    case("truncate_8", spark.createDataFrame([Row(s="abcdefghijkl", n=123456)]), truncate=8)
    case("numbers", spark.createDataFrame([
        Row(i=0, f=0.0), Row(i=-7, f=-0.0), Row(i=9223372036854775807, f=1.0), Row(i=1, f=0.1),
        Row(i=2, f=1e7), Row(i=3, f=9999999.0), Row(i=4, f=1e-3), Row(i=5, f=9.99e-4),
        Row(i=6, f=1.5e10), Row(i=7, f=123456.789), Row(i=8, f=float("nan")), Row(i=9, f=float("inf")),
        Row(i=10, f=float("-inf")), Row(i=11, f=1e21), Row(i=12, f=2.5e-10), Row(i=None, f=None),
        Row(i=13, f=100.0), Row(i=14, f=1 / 3)]))
    case("floats32", spark.createDataFrame([(1.5,), (0.1,), (1e10,), (None,)], "x float"))
    case("ints", spark.createDataFrame(
        [(1, 2, 3, True), (-1, -2, -3, False), (None, None, None, None)],
        "a tinyint, b smallint, c int, d boolean"))
    rows25 = [Row(n=i, sq=i * i) for i in range(25)]
    case("many_rows", spark.createDataFrame(rows25))
    case("one_row_shown", spark.createDataFrame(rows25), n=1)
    case("exactly_twenty", spark.createDataFrame(rows25[:20]))
    case("empty", spark.createDataFrame([], "word string, total bigint"))
    case("empty_n_limit", spark.createDataFrame([], "word string, total bigint"), n=0)
    case("nested", spark.createDataFrame([
        Row(xs=[1, 2, 3], m={"a": 1}, st=Row(x=1, y="b"), b=bytearray(b"\x01\xab"),
            d=datetime.date(2024, 2, 29), ts=datetime.datetime(2024, 1, 2, 3, 4, 5),
            dec=decimal.Decimal("1.5")),
        Row(xs=[], m={}, st=Row(x=None, y=None), b=bytearray(b""), d=datetime.date(1970, 1, 1),
            ts=datetime.datetime(2024, 1, 2, 3, 4, 5, 120000), dec=decimal.Decimal("-2")),
        Row(xs=None, m=None, st=None, b=None, d=None, ts=None, dec=None),
        Row(xs=[None, 5], m={"k": None}, st=Row(x=3, y=None), b=bytearray(b"\x00"),
            d=datetime.date(2000, 12, 31), ts=datetime.datetime(1999, 12, 31, 23, 59, 59, 1),
            dec=decimal.Decimal("12345.678")),
    ]))
    case("string_list", spark.createDataFrame(
        [(["a", None, "c"], [[1], [2, 3]])], "xs array<string>, ys array<array<int>>"))
    case("wide_header", spark.createDataFrame(
        [Row(a_rather_long_column_name=1, b=None)], "a_rather_long_column_name bigint, b string"))
    case("vertical", spark.createDataFrame(
        [Row(word="hello", total=2), Row(word="longer word", total=10)]), vertical=True)
    case("vertical_empty", spark.createDataFrame([], "word string"), vertical=True)
    case("unicode_header", spark.createDataFrame([("x",)], "`名前` string"))
    case("sql_group", spark.sql("select 'a' as word, count(*) as total from range(3)"))
    case("tuples", spark.createDataFrame([("a", 1), ("b", 2)]))
    return cases


if __name__ == "__main__":
    from pyspark.sql import Row, SparkSession

    session = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    here = os.path.dirname(os.path.abspath(__file__))
    for name, df, n, truncate, vertical in build(session, Row):
        # What show() prints: showString's text and print's newline.
        text = df._show_string(n, truncate, vertical) + "\n"
        with open(os.path.join(here, f"{name}.txt"), "w", encoding="utf-8") as out:
            out.write(text)
