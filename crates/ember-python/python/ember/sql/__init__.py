"""Spark SQL inside ``foreachRDD``: ``pyspark.sql``'s ``SparkSession``,
``DataFrame`` and ``Row`` for a streaming program's batches, on Apache
DataFusion (the same SQL engine as ember's Rust ``sql`` feature).

Each batch's records become a DataFrame (``spark.createDataFrame(rdd)`` or
``rdd.toDF()``), a temporary view names it, ``spark.sql`` queries the views
and ``show()`` prints Spark's table text::

    def process(time, rdd):
        spark = SparkSession.builder.getOrCreate()
        words = spark.createDataFrame(rdd.map(lambda w: Row(word=w)))
        words.createOrReplaceTempView("words")
        spark.sql("select word, count(*) as total from words group by word").show()

    lines.flatMap(lambda l: l.split(" ")).foreachRDD(process)

Under ``python -m ember.submit``, ``pyspark.sql`` is this module, so Spark's
``sql_network_wordcount.py`` runs unchanged. It needs the ``sql`` extra
(``pip install "ember-streaming[sql]"``: DataFusion's Python package and
pyarrow).

The SQL dialect is DataFusion's, which for the queries of a streaming
job (selection, grouping, joins, window functions) reads as Spark's does;
Spark-only functions and Hive syntax are not there. Queries run on the
calling thread, on the batch's rows, which are in this process.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

try:
    import datafusion
    import pyarrow as pa
except ImportError as missing:  # pragma: no cover - depends on the install
    raise ImportError(
        f"ember.sql needs DataFusion's Python package and pyarrow ({missing.name} is missing): "
        'pip install "ember-streaming[sql]"'
    ) from missing

from ember.sql import types as _types
from ember.sql._show import show_string as _show_string
from ember.sql.types import DataType, StructField, StructType

__all__ = ["AnalysisException", "DataFrame", "ParseException", "Row", "SparkSession"]


class AnalysisException(Exception):
    """A query that cannot run: an unknown table or column, a type
    mismatch (Spark's ``AnalysisException``). The message quotes the
    query and DataFusion's reason."""


class ParseException(AnalysisException):
    """A query that does not parse (Spark's ``ParseException``)."""


def _engine_call(query: str, call):
    """Runs ``call``; DataFusion's errors (and panics, which PyO3 raises as
    a BaseException) become :class:`AnalysisException` quoting ``query``."""
    try:
        return call()
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as e:  # noqa: B036 - PyO3's PanicException is a BaseException
        reason = str(e)
        kind = ParseException if "ParserError" in reason or "SQL error" in reason else AnalysisException
        raise kind(f"query `{query}` failed: {reason}") from None


# ---------------------------------------------------------------------------
# Row
# ---------------------------------------------------------------------------

class Row(tuple):
    """A row: a tuple whose fields also have names, as PySpark's ``Row``.

    ``Row(word="a", total=2)`` is a row with fields ``word`` and ``total``
    (in that order); ``Row("word", "total")`` is a row class, called with
    the values: ``Point = Row("x", "y"); Point(1, 2)``.
    """

    __fields__: Optional[List[str]]

    def __new__(cls, *args: Any, **kwargs: Any) -> "Row":
        if args and kwargs:
            raise ValueError("Can not use both args and kwargs to create Row")
        if kwargs:
            row = tuple.__new__(cls, list(kwargs.values()))
            row.__fields__ = list(kwargs.keys())
            return row
        row = tuple.__new__(cls, args)
        row.__fields__ = None
        return row

    def __call__(self, *values: Any) -> "Row":
        """A row of this row class's fields with ``values``."""
        if len(values) > len(self):
            raise ValueError(f"Can not create Row with fields {self}, expected {len(self)} values "
                             f"but got {values}")
        row = tuple.__new__(Row, values)
        row.__fields__ = list(self)
        return row

    def asDict(self, recursive: bool = False) -> Dict[str, Any]:
        """The row as a dict of field name to value."""
        if self.__fields__ is None:
            raise TypeError("Cannot convert a Row class into dict")

        def conv(v: Any) -> Any:
            if not recursive:
                return v
            if isinstance(v, Row):
                return v.asDict(True)
            if isinstance(v, list):
                return [conv(x) for x in v]
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            return v

        return {k: conv(v) for k, v in zip(self.__fields__, self)}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        fields = self.__fields__ or []
        try:
            return self[fields.index(name)]
        except ValueError:
            raise AttributeError(name) from None

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, str):
            try:
                return tuple.__getitem__(self, (self.__fields__ or []).index(item))
            except ValueError:
                raise KeyError(item) from None
        return tuple.__getitem__(self, item)

    def __contains__(self, item: Any) -> bool:
        if self.__fields__ is not None:
            return item in self.__fields__
        return tuple.__contains__(self, item)

    def __setattr__(self, key: str, value: Any) -> None:
        if key != "__fields__":
            raise RuntimeError("Row is read-only")
        object.__setattr__(self, key, value)

    def __reduce__(self):
        if self.__fields__ is not None:
            return (_row_from_fields, (tuple(self.__fields__), tuple(self)))
        return (Row, tuple(self))

    def __repr__(self) -> str:
        if self.__fields__ is not None:
            return "Row(" + ", ".join(f"{k}={v!r}" for k, v in zip(self.__fields__, self)) + ")"
        return "<Row(" + ", ".join(repr(f) for f in self) + ")>"


def _row_from_fields(fields: Tuple[str, ...], values: Tuple[Any, ...]) -> Row:
    return Row(*fields)(*values)


# ---------------------------------------------------------------------------
# From Python records to an Arrow table
# ---------------------------------------------------------------------------

def _fields_of(record: Any) -> Optional[List[Tuple[str, Any]]]:
    """A record's (name, value) pairs, as PySpark reads a row to infer a
    schema: a Row's fields, a dict's items by key, a namedtuple's fields,
    a tuple's as ``_1``, ``_2``…; ``None`` for a value that is not a row."""
    if isinstance(record, Row) and record.__fields__ is not None:
        return list(zip(record.__fields__, record))
    if isinstance(record, dict):
        return sorted(record.items())
    if isinstance(record, tuple) and hasattr(record, "_fields"):
        return list(zip(record._fields, record))
    if isinstance(record, (tuple, list)):
        return [(f"_{i + 1}", v) for i, v in enumerate(record)]
    if hasattr(record, "__dict__") and not isinstance(record, type):
        return sorted(vars(record).items())
    return None


def _infer_schema(records: List[Any], names: Optional[List[str]], every_row: bool) -> StructType:
    """The schema PySpark infers: from every row of a local list, merged;
    from an RDD's first row, and up to 100 rows while a type is unknown."""
    if not records:
        raise ValueError("[CANNOT_INFER_EMPTY_SCHEMA] Can not infer schema from an empty dataset.")
    schema: Optional[StructType] = None
    for i, record in enumerate(records):
        if not every_row and i >= 100:
            break
        fields = _fields_of(record)
        if fields is None:
            raise TypeError(f"[CANNOT_INFER_SCHEMA_FOR_TYPE] Can not infer schema for type: "
                            f"`{type(record).__name__}`.")
        inferred = StructType([StructField(k, _types._infer_type(v)) for k, v in fields])
        schema = inferred if schema is None else _types._merge(schema, inferred)
        if not every_row and not _types._has_null(schema):
            break
    assert schema is not None
    if names:
        for field, name in zip(schema.fields, names):
            field.name = name
    if _types._has_null(schema):
        raise ValueError("[CANNOT_DETERMINE_TYPE] Some of types cannot be determined after "
                         "inferring.")
    return schema


def _to_arrow_value(value: Any, t: DataType) -> Any:
    """A Python value in the form pyarrow takes for the Arrow type of ``t``."""
    if value is None:
        return None
    if isinstance(t, _types.MapType):
        return [(_to_arrow_value(k, t.keyType), _to_arrow_value(v, t.valueType))
                for k, v in value.items()]
    if isinstance(t, _types.ArrayType):
        return [_to_arrow_value(v, t.elementType) for v in value]
    if isinstance(t, StructType):
        fields = _fields_of(value)
        if fields is None:
            raise TypeError(f"a {type(value).__name__} is not a struct of {t.simpleString()}")
        by_name = dict(fields)
        positional = [v for _, v in fields]
        return {
            f.name: _to_arrow_value(by_name.get(f.name, positional[i] if i < len(positional) else None),
                                    f.dataType)
            for i, f in enumerate(t.fields)
        }
    if isinstance(t, _types.BinaryType) and isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value


def _arrow_table(records: List[Any], schema: DataType) -> "pa.Table":
    """The records as an Arrow table of ``schema`` (a struct: one column per
    field; any other type: one column ``value``)."""
    if not isinstance(schema, StructType):
        column = [_to_arrow_value(r, schema) for r in records]
        return pa.table({"value": pa.array(column, type=schema._arrow())})
    columns: List[List[Any]] = [[] for _ in schema.fields]
    names = schema.names
    for record in records:
        if isinstance(record, Row) and record.__fields__ is not None:
            values = dict(zip(record.__fields__, record))
            row = [values.get(n) for n in names]
        elif isinstance(record, dict):
            row = [record.get(n) for n in names]
        elif isinstance(record, (tuple, list)):
            row = list(record)
        else:
            fields = _fields_of(record)
            if fields is None:
                raise TypeError(f"a {type(record).__name__} record does not fit {schema.simpleString()}")
            values = dict(fields)
            row = [values.get(n) for n in names]
        if len(row) != len(names):
            raise ValueError(f"[LENGTH_SHOULD_BE_THE_SAME] a record has {len(row)} fields, the schema "
                             f"{len(names)}: {record!r}")
        for column, value, field in zip(columns, row, schema.fields):
            column.append(_to_arrow_value(value, field.dataType))
    arrays = []
    for column, field in zip(columns, schema.fields):
        try:
            arrays.append(pa.array(column, type=field.dataType._arrow()))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as e:
            raise TypeError(f"[FIELD_DATA_TYPE_UNACCEPTABLE] field {field.name}: "
                            f"{field.dataType.simpleString()} can not accept its values: {e}") from None
    return pa.Table.from_arrays(arrays, schema=pa.schema(
        [pa.field(f.name, f.dataType._arrow(), f.nullable) for f in schema.fields]))


# ---------------------------------------------------------------------------
# DataFrame
# ---------------------------------------------------------------------------

class DataFrame:
    """A batch's rows or a query's result (PySpark's ``DataFrame``):
    ``show``, ``collect``, ``count``, ``createOrReplaceTempView``, …
    Operations run when a result is asked for."""

    def __init__(self, df: "datafusion.DataFrame", session: "SparkSession", query: str = ""):
        self._df = df
        self._session = session
        self._query = query or "(DataFrame)"

    def _run(self, call):
        return _engine_call(self._query, call)

    @property
    def sparkSession(self) -> "SparkSession":
        """The session that made this DataFrame."""
        return self._session

    @property
    def schema(self) -> StructType:
        """The columns and their Spark types."""
        arrow = self._run(lambda: self._df.schema())
        return StructType([StructField(f.name, _types._from_arrow(f.type), f.nullable) for f in arrow])

    @property
    def columns(self) -> List[str]:
        """The column names, in order."""
        return self.schema.names

    @property
    def dtypes(self) -> List[Tuple[str, str]]:
        """(name, Spark type) for each column."""
        return [(f.name, f.dataType.simpleString()) for f in self.schema.fields]

    def printSchema(self) -> None:
        """Prints the schema as Spark's tree."""
        lines = ["root"]
        for f in self.schema.fields:
            lines.append(f" |-- {f.name}: {f.dataType.simpleString()} (nullable = {str(f.nullable).lower()})")
        print("\n".join(lines) + "\n")

    def _show_string(self, n: int = 20, truncate: Union[bool, int] = True, vertical: bool = False) -> str:
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"[NOT_INT] Argument `n` should be an int, got {type(n).__name__}.")
        width = 20 if truncate is True else (0 if truncate is False else int(truncate))
        rows = max(n, 0)
        table = self._run(lambda: self._df.limit(rows + 1).to_arrow_table())
        return _show_string(table, rows, width, vertical)

    def show(self, n: int = 20, truncate: Union[bool, int] = True, vertical: bool = False) -> None:
        """Prints the first ``n`` rows in Spark's table format: cells cut to
        20 characters (``truncate=False`` for whole cells, an int for
        another width), or one block per row with ``vertical=True``."""
        print(self._show_string(n, truncate, vertical))

    def toArrow(self) -> "pa.Table":
        """The rows as a pyarrow Table."""
        return self._run(lambda: self._df.to_arrow_table())

    def toPandas(self):
        """The rows as a pandas DataFrame (needs pandas)."""
        return self.toArrow().to_pandas()

    def collect(self) -> List[Row]:
        """Every row, as :class:`Row` objects."""
        table = self.toArrow()
        names = table.schema.names
        make = Row(*names)
        return [make(*(d[n] for n in names)) for d in table.to_pylist()]

    def take(self, num: int) -> List[Row]:
        """The first ``num`` rows."""
        return self.limit(num).collect()

    def head(self, n: Optional[int] = None) -> Any:
        """The first row (``None`` if empty), or the first ``n`` rows."""
        if n is None:
            rows = self.take(1)
            return rows[0] if rows else None
        return self.take(n)

    def first(self) -> Optional[Row]:
        """The first row, or ``None``."""
        return self.head()

    def count(self) -> int:
        """How many rows there are."""
        return self._run(lambda: self._df.count())

    def isEmpty(self) -> bool:
        """Whether there are no rows."""
        return self.limit(1).count() == 0

    def limit(self, num: int) -> "DataFrame":
        """The first ``num`` rows."""
        return DataFrame(self._run(lambda: self._df.limit(num)), self._session, self._query)

    def createOrReplaceTempView(self, name: str) -> None:
        """Names this DataFrame for :meth:`SparkSession.sql`, replacing a
        view of that name."""
        self._session._register(name, self, replace=True)

    def createTempView(self, name: str) -> None:
        """Names this DataFrame for :meth:`SparkSession.sql`; fails if the
        name is taken."""
        self._session._register(name, self, replace=False)

    def registerTempTable(self, name: str) -> None:
        """Spark's old name of :meth:`createOrReplaceTempView`."""
        self.createOrReplaceTempView(name)

    def __repr__(self) -> str:
        return "DataFrame[" + ", ".join(f"{n}: {t}" for n, t in self.dtypes) + "]"


# ---------------------------------------------------------------------------
# SparkSession
# ---------------------------------------------------------------------------

class _Builder:
    """``SparkSession.builder``: settings, then :meth:`getOrCreate`."""

    def __init__(self) -> None:
        self._options: Dict[str, str] = {}

    def config(self, key: Optional[str] = None, value: Any = None, conf: Any = None,
               map: Optional[Dict[str, Any]] = None) -> "_Builder":
        """Sets an option, every option of a ``SparkConf``, or a dict of them."""
        if conf is not None:
            for k, v in conf.getAll():
                self._options[k] = str(v)
        if key is not None:
            self._options[key] = str(value)
        for k, v in (map or {}).items():
            self._options[k] = str(v)
        return self

    def appName(self, name: str) -> "_Builder":
        """Sets ``spark.app.name``."""
        return self.config("spark.app.name", name)

    def master(self, master: str) -> "_Builder":
        """Sets ``spark.master`` (the streaming context's master governs)."""
        return self.config("spark.master", master)

    def enableHiveSupport(self) -> "_Builder":
        """Accepted for compatibility; there is no Hive metastore."""
        return self

    def getOrCreate(self) -> "SparkSession":
        """The session of this process, made at the first call."""
        with SparkSession._lock:
            if SparkSession._instance is None:
                SparkSession._instance = SparkSession(dict(self._options))
            else:
                SparkSession._instance._options.update(self._options)
            return SparkSession._instance


class _ClassProperty:
    def __init__(self, getter):
        self._getter = getter

    def __get__(self, obj, owner):
        return self._getter(owner)


class _Catalog:
    """``spark.catalog``: the temporary views."""

    def __init__(self, session: "SparkSession"):
        self._session = session

    def dropTempView(self, viewName: str) -> bool:
        """Drops a view; whether it existed."""
        return self._session._drop(viewName)

    def tableExists(self, tableName: str) -> bool:
        """Whether a view of that name exists."""
        return tableName in self._session._views

    def listTables(self) -> List[str]:
        """The names of the temporary views."""
        return sorted(self._session._views)


class SparkSession:
    """The entry point to SQL (PySpark's ``SparkSession``): one per process,
    from ``SparkSession.builder.getOrCreate()``. Holds the temporary views
    and a DataFusion session that runs the queries."""

    _instance: Optional["SparkSession"] = None
    _lock = threading.RLock()
    _made = 0

    builder = _ClassProperty(lambda cls: _Builder())

    def __init__(self, options: Optional[Dict[str, str]] = None):
        self._options = dict(options or {})
        config = datafusion.SessionConfig().with_target_partitions(1).with_information_schema(True)
        self._ctx = datafusion.SessionContext(config)
        self._views: Dict[str, DataFrame] = {}
        self.catalog = _Catalog(self)

    @classmethod
    def getActiveSession(cls) -> Optional["SparkSession"]:
        """The session of this process, if one was made."""
        return cls._instance

    @classmethod
    def active(cls) -> "SparkSession":
        """The session of this process, made if needed."""
        return cls.builder.getOrCreate()

    @property
    def sparkContext(self):
        """The active ``SparkContext``."""
        from ember.context import SparkContext

        return SparkContext._active_spark_context

    @property
    def version(self) -> str:
        """The DataFusion version that runs the queries."""
        return f"datafusion {datafusion.__version__}"

    def createDataFrame(self, data: Any, schema: Any = None, samplingRatio: Optional[float] = None,
                        verifySchema: bool = True) -> DataFrame:
        """A DataFrame of ``data``: an RDD (a ``foreachRDD`` batch), a list of
        Rows, tuples, dicts or values, a pandas DataFrame or a pyarrow
        Table. ``schema`` is a :class:`StructType`, a DDL string
        (``"word string, total bigint"``), a list of column names, or
        ``None`` to infer the types from the rows as PySpark does."""
        if isinstance(data, pa.Table):
            table = data
        elif type(data).__module__.startswith("pandas"):
            table = pa.Table.from_pandas(data, preserve_index=False)
        else:
            from ember.rdd import RDD

            is_rdd = isinstance(data, RDD)
            records = data.collect() if is_rdd else list(data)
            names = None
            if isinstance(schema, (list, tuple)):
                names, schema = list(schema), None
            if isinstance(schema, str):
                schema = _types._parse_schema(schema)
            if schema is None:
                schema = _infer_schema(records, names, every_row=not is_rdd)
            elif not isinstance(schema, DataType):
                raise TypeError(f"[NOT_STRUCT] schema should be a StructType, a DDL string or a list "
                                f"of names, got {type(schema).__name__}")
            table = _arrow_table(records, schema)
        return DataFrame(self._from_arrow(table), self, "(createDataFrame)")

    def _from_arrow(self, table: "pa.Table") -> "datafusion.DataFrame":
        """A DataFusion DataFrame over ``table``. DataFusion registers the
        table under a name to make it; the name is dropped at once (the
        DataFrame keeps the table), or every batch would stay registered."""
        with SparkSession._lock:
            SparkSession._made += 1
            name = f"__ember_frame_{SparkSession._made}"
        df = _engine_call("(createDataFrame)", lambda: self._ctx.from_arrow(table, name=name))
        self._ctx.deregister_table(name)
        return df

    def sql(self, sqlQuery: str, args: Optional[Dict[str, Any]] = None, **kwargs: Any) -> DataFrame:
        """Runs a query over the temporary views; the result is a DataFrame.
        Mistakes raise :class:`ParseException` or :class:`AnalysisException`
        quoting the query."""
        if args or kwargs:
            raise NotImplementedError("ember.sql: parameterised queries (args=) are not supported")
        df = _engine_call(sqlQuery, lambda: self._ctx.sql(sqlQuery))
        return DataFrame(df, self, sqlQuery)

    def table(self, tableName: str) -> DataFrame:
        """The view ``tableName``."""
        return self.sql(f'SELECT * FROM "{tableName}"')

    def range(self, start: int, end: Optional[int] = None, step: int = 1,
              numPartitions: Optional[int] = None) -> DataFrame:
        """A DataFrame with one column ``id``: ``start`` to ``end`` by ``step``."""
        if end is None:
            start, end = 0, start
        return self.createDataFrame(pa.table({"id": pa.array(list(range(start, end, step)), pa.int64())}))

    def stop(self) -> None:
        """Forgets the session (the streaming context is not stopped)."""
        with SparkSession._lock:
            if SparkSession._instance is self:
                SparkSession._instance = None

    def _register(self, name: str, df: DataFrame, replace: bool) -> None:
        with SparkSession._lock:
            if name in self._views:
                if not replace:
                    raise AnalysisException(f"[TEMP_TABLE_OR_VIEW_ALREADY_EXISTS] Cannot create the "
                                            f"temporary view `{name}` because it already exists.")
                self._ctx.deregister_table(name)
            view = _engine_call(df._query, lambda: df._df.into_view())
            self._ctx.register_table(name, view)
            self._views[name] = df

    def _drop(self, name: str) -> bool:
        with SparkSession._lock:
            if name not in self._views:
                return False
            self._ctx.deregister_table(name)
            del self._views[name]
            return True
