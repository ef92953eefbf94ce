"""Spark SQL's data types, as far as ``createDataFrame`` needs them: the
classes of ``pyspark.sql.types``, a DDL parser (``"word string, total
bigint"``), Spark's inference of a column's type from Python values, and
each type's Arrow counterpart.
"""

from __future__ import annotations

import datetime
import decimal
from typing import Any, Iterator, List, Optional, Tuple

import pyarrow as pa

__all__ = [
    "ArrayType",
    "BinaryType",
    "BooleanType",
    "ByteType",
    "DataType",
    "DateType",
    "DecimalType",
    "DoubleType",
    "FloatType",
    "IntegerType",
    "LongType",
    "MapType",
    "NullType",
    "ShortType",
    "StringType",
    "StructField",
    "StructType",
    "TimestampType",
]


class DataType:
    """Base class of Spark SQL's types."""

    _name = "?"

    def simpleString(self) -> str:
        """The type as Spark's DDL spells it (``bigint``, ``array<string>``)."""
        return self._name

    def _arrow(self) -> pa.DataType:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(self.simpleString())

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _atomic(name: str, spark: str, arrow: pa.DataType) -> type:
    def to_arrow(self: DataType) -> pa.DataType:
        return arrow

    return type(name, (DataType,), {"_name": spark, "_arrow": to_arrow,
                                     "__doc__": f"Spark's ``{spark}``."})


NullType = _atomic("NullType", "void", pa.null())
StringType = _atomic("StringType", "string", pa.string())
BinaryType = _atomic("BinaryType", "binary", pa.binary())
BooleanType = _atomic("BooleanType", "boolean", pa.bool_())
ByteType = _atomic("ByteType", "tinyint", pa.int8())
ShortType = _atomic("ShortType", "smallint", pa.int16())
IntegerType = _atomic("IntegerType", "int", pa.int32())
LongType = _atomic("LongType", "bigint", pa.int64())
FloatType = _atomic("FloatType", "float", pa.float32())
DoubleType = _atomic("DoubleType", "double", pa.float64())
DateType = _atomic("DateType", "date", pa.date32())
TimestampType = _atomic("TimestampType", "timestamp", pa.timestamp("us"))


class DecimalType(DataType):
    """Spark's ``decimal(precision, scale)``."""

    def __init__(self, precision: int = 10, scale: int = 0):
        self.precision = precision
        self.scale = scale

    def simpleString(self) -> str:
        return f"decimal({self.precision},{self.scale})"

    def _arrow(self) -> pa.DataType:
        return pa.decimal128(self.precision, self.scale)

    def __repr__(self) -> str:
        return f"DecimalType({self.precision}, {self.scale})"


class ArrayType(DataType):
    """Spark's ``array<element>``."""

    def __init__(self, elementType: DataType, containsNull: bool = True):
        self.elementType = elementType
        self.containsNull = containsNull

    def simpleString(self) -> str:
        return f"array<{self.elementType.simpleString()}>"

    def _arrow(self) -> pa.DataType:
        return pa.list_(self.elementType._arrow())

    def __repr__(self) -> str:
        return f"ArrayType({self.elementType!r}, {self.containsNull})"


class MapType(DataType):
    """Spark's ``map<key, value>``."""

    def __init__(self, keyType: DataType, valueType: DataType, valueContainsNull: bool = True):
        self.keyType = keyType
        self.valueType = valueType
        self.valueContainsNull = valueContainsNull

    def simpleString(self) -> str:
        return f"map<{self.keyType.simpleString()},{self.valueType.simpleString()}>"

    def _arrow(self) -> pa.DataType:
        return pa.map_(self.keyType._arrow(), self.valueType._arrow())

    def __repr__(self) -> str:
        return f"MapType({self.keyType!r}, {self.valueType!r}, {self.valueContainsNull})"


class StructField:
    """A named field of a :class:`StructType`."""

    def __init__(self, name: str, dataType: DataType, nullable: bool = True):
        self.name = name
        self.dataType = dataType
        self.nullable = nullable

    def simpleString(self) -> str:
        return f"{self.name}:{self.dataType.simpleString()}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StructField) and self.__dict__ == other.__dict__

    def __repr__(self) -> str:
        return f"StructField('{self.name}', {self.dataType!r}, {self.nullable})"


class StructType(DataType):
    """Spark's ``struct<…>``: a row's schema, a list of :class:`StructField`."""

    def __init__(self, fields: Optional[List[StructField]] = None):
        self.fields = list(fields or [])

    def add(self, field: Any, data_type: Optional[DataType] = None, nullable: bool = True) -> "StructType":
        """Appends a field (a :class:`StructField`, or a name and a type)."""
        if isinstance(field, StructField):
            self.fields.append(field)
        else:
            dt = _parse_type(data_type) if isinstance(data_type, str) else data_type
            self.fields.append(StructField(field, dt, nullable))
        return self

    @property
    def names(self) -> List[str]:
        """The field names, in order."""
        return [f.name for f in self.fields]

    def fieldNames(self) -> List[str]:
        """The field names, in order."""
        return self.names

    def __iter__(self) -> Iterator[StructField]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def simpleString(self) -> str:
        return "struct<" + ",".join(f.simpleString() for f in self.fields) + ">"

    def _arrow(self) -> pa.DataType:
        return pa.struct([pa.field(f.name, f.dataType._arrow(), f.nullable) for f in self.fields])

    def __repr__(self) -> str:
        return "StructType([" + ", ".join(repr(f) for f in self.fields) + "])"


_ATOMIC = {
    t._name: t
    for t in (NullType, StringType, BinaryType, BooleanType, ByteType, ShortType, IntegerType,
              LongType, FloatType, DoubleType, DateType, TimestampType)
}
_ATOMIC.update({"byte": ByteType, "short": ShortType, "integer": IntegerType, "long": LongType,
                "bool": BooleanType, "real": FloatType, "null": NullType})


# ---------------------------------------------------------------------------
# DDL: "word string, total bigint", "array<int>", "`a b` map<string,int>"
# ---------------------------------------------------------------------------

def _split_top(text: str, sep: str) -> List[str]:
    """``text`` split at ``sep`` outside ``<…>``, ``(…)`` and backquotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, c in enumerate(text):
        if c == "`":
            quoted = not quoted
        elif not quoted and c in "<(":
            depth += 1
        elif not quoted and c in ">)":
            depth -= 1
        elif not quoted and depth == 0 and c == sep:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _name_and_rest(text: str, sep: str) -> Tuple[str, str]:
    text = text.strip()
    if text.startswith("`"):
        end = text.index("`", 1)
        return text[1:end], text[end + 1:].lstrip().lstrip(sep).strip()
    name, _, rest = text.partition(sep)
    if not rest and sep != " ":
        name, _, rest = text.partition(" ")
    return name.strip(), rest.strip()


def _parse_type(text: str) -> DataType:
    t = text.strip()
    lower = t.lower()
    if lower in _ATOMIC:
        return _ATOMIC[lower]()
    if lower.startswith("decimal"):
        args = lower[len("decimal"):].strip()
        if not args:
            return DecimalType()
        p, _, s = args.strip("()").partition(",")
        return DecimalType(int(p), int(s or 0))
    if lower.startswith("array<") and lower.endswith(">"):
        return ArrayType(_parse_type(t[6:-1]))
    if lower.startswith("map<") and lower.endswith(">"):
        key, value = _split_top(t[4:-1], ",")
        return MapType(_parse_type(key), _parse_type(value))
    if lower.startswith("struct<") and lower.endswith(">"):
        fields = []
        for part in _split_top(t[7:-1], ","):
            name, rest = _name_and_rest(part, ":")
            fields.append(StructField(name, _parse_type(rest)))
        return StructType(fields)
    raise ValueError(f"[PARSE_SYNTAX_ERROR] unknown data type {text!r} in a schema string")


def _parse_schema(ddl: str) -> DataType:
    """A schema string as ``createDataFrame`` takes it: ``"a int, b string"``
    (a struct), or one type (``"string"``) for records that are values."""
    text = ddl.strip()
    if text.lower().startswith("struct<"):
        return _parse_type(text)
    parts = _split_top(text, ",")
    if len(parts) == 1 and not any(c in text.strip("`") for c in " :") and not text.startswith("`"):
        return _parse_type(text)
    fields = []
    for part in parts:
        name, rest = _name_and_rest(part, " ")
        if not rest:
            raise ValueError(f"[PARSE_SYNTAX_ERROR] {part!r} in schema {ddl!r} has no type")
        fields.append(StructField(name.rstrip(":"), _parse_type(rest.lstrip(":").strip())))
    return StructType(fields)


# ---------------------------------------------------------------------------
# Inference, as PySpark infers a column's type from Python values.
# ---------------------------------------------------------------------------

def _infer_type(value: Any) -> DataType:
    from ember.sql import Row

    if value is None:
        return NullType()
    if isinstance(value, bool):
        return BooleanType()
    if isinstance(value, int):
        return LongType()
    if isinstance(value, float):
        return DoubleType()
    if isinstance(value, str):
        return StringType()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return BinaryType()
    if isinstance(value, decimal.Decimal):
        return DecimalType(38, 18)
    if isinstance(value, datetime.datetime):
        return TimestampType()
    if isinstance(value, datetime.date):
        return DateType()
    if isinstance(value, Row) and getattr(value, "__fields__", None) is not None:
        return StructType([StructField(k, _infer_type(v)) for k, v in zip(value.__fields__, value)])
    if isinstance(value, dict):
        key, val = NullType(), NullType()
        for k, v in value.items():
            key, val = _merge(key, _infer_type(k)), _merge(val, _infer_type(v))
        return MapType(key, val)
    if isinstance(value, (list, tuple)):
        element: DataType = NullType()
        for v in value:
            element = _merge(element, _infer_type(v))
        return ArrayType(element)
    raise TypeError(f"[CANNOT_INFER_TYPE_FOR_FIELD] Unable to infer the type of the field "
                    f"from {type(value).__name__!r} value {value!r}.")


def _merge(a: DataType, b: DataType) -> DataType:
    """The type of a column that holds both: NullType gives way; otherwise
    they must agree (Spark's ``_merge_type``)."""
    if isinstance(a, NullType):
        return b
    if isinstance(b, NullType):
        return a
    if isinstance(a, ArrayType) and isinstance(b, ArrayType):
        return ArrayType(_merge(a.elementType, b.elementType))
    if isinstance(a, MapType) and isinstance(b, MapType):
        return MapType(_merge(a.keyType, b.keyType), _merge(a.valueType, b.valueType))
    if isinstance(a, StructType) and isinstance(b, StructType):
        by_name = {f.name: f.dataType for f in b.fields}
        fields = [StructField(f.name, _merge(f.dataType, by_name.pop(f.name, NullType())))
                  for f in a.fields]
        fields += [StructField(n, t) for n, t in by_name.items()]
        return StructType(fields)
    if type(a) is not type(b):
        raise TypeError(f"[CANNOT_MERGE_TYPE] Can not merge type {type(a).__name__} "
                        f"and {type(b).__name__}.")
    return a


def _has_null(t: DataType) -> bool:
    if isinstance(t, NullType):
        return True
    if isinstance(t, ArrayType):
        return _has_null(t.elementType)
    if isinstance(t, MapType):
        return _has_null(t.keyType) or _has_null(t.valueType)
    if isinstance(t, StructType):
        return any(_has_null(f.dataType) for f in t.fields)
    return False


def _from_arrow(t: pa.DataType) -> DataType:
    """The Spark type shown for an Arrow column of a query's result."""
    if pa.types.is_null(t):
        return NullType()
    if pa.types.is_boolean(t):
        return BooleanType()
    if pa.types.is_int8(t) or pa.types.is_uint8(t):
        return ByteType()
    if pa.types.is_int16(t) or pa.types.is_uint16(t):
        return ShortType()
    if pa.types.is_int32(t) or pa.types.is_uint32(t):
        return IntegerType()
    if pa.types.is_integer(t):
        return LongType()
    if pa.types.is_float32(t) or pa.types.is_float16(t):
        return FloatType()
    if pa.types.is_floating(t):
        return DoubleType()
    if pa.types.is_string(t) or pa.types.is_large_string(t) or str(t) == "string_view":
        return StringType()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t) \
            or str(t) == "binary_view":
        return BinaryType()
    if pa.types.is_date(t):
        return DateType()
    if pa.types.is_timestamp(t):
        return TimestampType()
    if pa.types.is_decimal(t):
        return DecimalType(t.precision, t.scale)
    if pa.types.is_map(t):
        return MapType(_from_arrow(t.key_type), _from_arrow(t.item_type))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t) \
            or str(t).startswith("list_view"):
        return ArrayType(_from_arrow(t.value_type))
    if pa.types.is_struct(t):
        return StructType([StructField(t.field(i).name, _from_arrow(t.field(i).type), t.field(i).nullable)
                           for i in range(t.num_fields)])
    return StringType()
