"""Spark's ``Dataset.show()`` text for an Arrow table: the borders, padding,
truncation, value spelling (``NULL``, ``1.0E7``, ``[01 AB]``, ``{a -> 1}``)
and footer Spark prints. The Rust side (``ember_sql::show``) writes the
same text; both are checked against files PySpark itself printed.
"""

from __future__ import annotations

import datetime
import decimal
import math
import struct
from typing import Any, List

import pyarrow as pa

_WIDE = ((0x1100, 0x115F), (0x2E80, 0xA4CF), (0xAC00, 0xD7A3), (0xF900, 0xFAFF),
         (0xFE10, 0xFE19), (0xFE30, 0xFE6F), (0xFF00, 0xFF60), (0xFFE0, 0xFFE6))
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\v": "\\v", "\f": "\\f", "\a": "\\a"}


def _utf16_len(s: str) -> int:
    return sum(2 if ord(c) > 0xFFFF else 1 for c in s)


def _half_width(s: str) -> int:
    """Columns on a terminal as Spark counts them: UTF-16 length plus one
    per East Asian full-width character."""
    wide = sum(1 for c in s if any(lo <= ord(c) <= hi for lo, hi in _WIDE))
    return _utf16_len(s) + wide


def _take_utf16(s: str, units: int) -> str:
    out, used = [], 0
    for c in s:
        used += 2 if ord(c) > 0xFFFF else 1
        if used > units:
            break
        out.append(c)
    return "".join(out)


def _escape(s: str) -> str:
    if not any(c in _ESCAPES for c in s):
        return s
    return "".join(_ESCAPES.get(c, c) for c in s)


def java_double(x: float, single: bool = False) -> str:
    """``x`` as Java's ``Double.toString`` (``Float.toString`` when
    ``single``) writes it: shortest digits, plain in [1e-3, 1e7), else
    ``d.dddE±n``."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    if single:
        # The shortest digits that read back as the same 32-bit float.
        packed = struct.pack("<f", x)
        for precision in range(10):
            text = f"{x:.{precision}e}"
            if struct.pack("<f", float(text)) == packed:
                break
    else:
        text = repr(x)  # the shortest digits that read back
    _, digit_tuple, exp = decimal.Decimal(text).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    exponent = len(digits) - 1 + int(exp)
    sign = "-" if x < 0 else ""
    if 1e-3 <= abs(x) < 1e7:
        if exponent >= 0:
            point = exponent + 1
            digits = digits.ljust(point, "0")
            whole, fraction = digits[:point], digits[point:] or "0"
            return f"{sign}{whole}.{fraction}"
        return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent}"


def _cell(value: Any, t: pa.DataType) -> str:
    """One value as Spark spells it when it casts it to a string."""
    if value is None:
        return "NULL"
    if pa.types.is_boolean(t):
        return "true" if value else "false"
    if pa.types.is_floating(t):
        return java_double(float(value), single=not pa.types.is_float64(t))
    if pa.types.is_decimal(t):
        return format(value, "f") if isinstance(value, decimal.Decimal) else str(value)
    if isinstance(value, (bytes, bytearray)):
        return "[" + " ".join(f"{b:02X}" for b in value) + "]"
    if pa.types.is_timestamp(t) and isinstance(value, datetime.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        if value.microsecond:
            text += "." + f"{value.microsecond:06d}".rstrip("0")
        return text
    if pa.types.is_date(t) and isinstance(value, datetime.date):
        return value.isoformat()
    if pa.types.is_map(t):
        return "{" + ", ".join(f"{_cell(k, t.key_type)} -> {_cell(v, t.item_type)}"
                               for k, v in value) + "}"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return "[" + ", ".join(_cell(v, t.value_type) for v in value) + "]"
    if pa.types.is_struct(t):
        return "{" + ", ".join(_cell(value.get(t.field(i).name), t.field(i).type)
                               for i in range(t.num_fields)) + "}"
    return str(value)


def show_string(table: pa.Table, n: int, truncate: int, vertical: bool) -> str:
    """Spark's ``showString``: the text ``show(n, truncate, vertical)``
    prints (``table`` holds at most ``n + 1`` rows), ending in a newline."""

    def cut(s: str) -> str:
        if truncate <= 0 or _utf16_len(s) <= truncate:
            return s
        if truncate < 4:
            return _take_utf16(s, truncate)
        return _take_utf16(s, truncate - 3) + "..."

    types = [f.type for f in table.schema]
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    rows: List[List[str]] = [
        [cut(_escape(_cell(columns[c][r], types[c]))) for c in range(len(columns))]
        for r in range(min(table.num_rows, n + 1))
    ]
    more = len(rows) > n
    rows = rows[:n]
    header = [_escape(name) for name in table.schema.names]
    out: List[str] = []
    if vertical:
        if not rows:
            out.append("(0 rows)\n")
        else:
            name_width = max([3] + [_half_width(h) for h in header])
            value_width = max([3] + [_half_width(c) for row in rows for c in row])
            for i, row in enumerate(rows):
                title = f"-RECORD {i}"
                out.append(title + "-" * max(name_width + value_width + 5 - len(title), 0) + "\n")
                for name, value in zip(header, row):
                    out.append(f" {name}{' ' * (name_width - _half_width(name))} | "
                               f"{value}{' ' * (value_width - _half_width(value))} \n")
    else:
        widths = [3] * len(header)
        for row in [header] + rows:
            for i, c in enumerate(row):
                widths[i] = max(widths[i], _half_width(c))
        border = "+" + "+".join("-" * w for w in widths) + "+\n"

        def line(row: List[str]) -> str:
            cells = []
            for c, w in zip(row, widths):
                pad = " " * (w - _half_width(c))
                cells.append(pad + c if truncate > 0 else c + pad)
            return "|" + "|".join(cells) + "|\n"

        out.append(border)
        out.append(line(header))
        out.append(border)
        out.extend(line(row) for row in rows)
        out.append(border)
    if more:
        out.append(f"only showing top {n} {'row' if n == 1 else 'rows'}\n")
    return "".join(out)
