"""Which functions ``ember._lift`` recognises, and as what, on the running
CPython. Pure Python: it loads ``_lift.py`` from the source tree when run as
a script, so every installed CPython can check it without a build of the
engine (``.ci/python.sh`` runs it under 3.10 to 3.13):

    python3.12 crates/ember-python/tests/lift_cases.py

The expected trees are written by hand. For each recognised function the
reference evaluator of ``_lift`` must also give exactly what calling the
function gives, on sample arguments.
"""

from __future__ import annotations

import importlib.util
import operator
import sys
from pathlib import Path
from typing import Any, Callable, List, Tuple

len_shadowed = {"len": lambda x: 0}
exec("shadowed = lambda w: len(w)", len_shadowed)

STOP = 3


def update_func(new_values, last_sum):
    return sum(new_values) + (last_sum or 0)


def make_closure(k):
    return lambda x: x + k


# (function, number of arguments, expected source of the tree, sample calls)
RECOGNISED: List[Tuple[Callable[..., Any], int, str, List[tuple]]] = [
    (lambda line: line.split(" "), 1, "line.split(' ')", [("a b  c",), ("",)]),
    (lambda line: line.split(), 1, "line.split()", [(" a\tb\x1c c\u3000d ",)]),
    (lambda word: (word, 1), 1, "(word, 1)", [("x",)]),
    (lambda word: (1, word), 1, "(1, word)", [("x",)]),
    (lambda a, b: a + b, 2, "(a + b)", [(1, 2), ("a", "b"), (2**62, 2**62), (0.5, True)]),
    (lambda a, b: a - b, 2, "(a - b)", [(1, 2), (1.5, 1)]),
    (lambda x: x * 3, 1, "(x * 3)", [(2**62,), (1.5,)]),
    (operator.add, 2, "(x0 + x1)", [(3, 4)]),
    (operator.sub, 2, "(x0 - x1)", [(3, 4)]),
    (str.split, 1, "x0.split()", [("a  b",)]),
    (len, 1, "len(x0)", [("abc",), ([1, 2],)]),
    (int, 1, "int(x0)", [(" 12 ",), (2.7,)]),
    (lambda kv: kv[1] > 5, 1, "(kv[1] > 5)", [(("a", 7),), (("a", 5.0),)]),
    (lambda kv: kv[1] >= 5 and kv[0] != "x", 1, "((kv[1] >= 5) and (kv[0] != 'x'))",
     [(("a", 7),), (("x", 7),), (("a", 1),)]),
    (lambda w: len(w) > 3, 1, "(len(w) > 3)", [("abcd",), ("ab",)]),
    (lambda line: line.lower().split(), 1, "line.lower().split()", [("A B",)]),
    (lambda s: (s.strip(), float(s)), 1, "(s.strip(), float(s))", [(" 1.5 ",)]),
    (lambda s: s.strip("xy").upper(), 1, "s.strip('xy').upper()", [("xaby",)]),
    (lambda new, last: sum(new) + (last or 0), 2, "(sum(new) + (last or 0))",
     [([1, 2], None), ([1, 2], 5), ([], 0)]),
    (update_func, 2, "(sum(new_values) + (last_sum or 0))", [([1], 2), ([3], None)]),
    (lambda x: not x, 1, "(not x)", [(0,), ("a",)]),
    (lambda x: str(x), 1, "str(x)", [(1.5,), (10**20,), (None,)]),
    (lambda x: x or "d", 1, "(x or 'd')", [("",), ("a",)]),
    (lambda x: (x[0], x[1] * 2), 1, "(x[0], (x[1] * 2))", [(("a", 3),)]),
    (lambda x: x[-1], 1, "x[-1]", [([1, 2, 3],)]),
    (lambda x: abs(x), 1, "abs(x)", [(-3,), (-2.5,)]),
    (lambda kv: (kv[1], kv[0]), 1, "(kv[1], kv[0])", [(("a", 1),)]),
    (lambda w: [w, w], 1, "[w, w]", [("a",)]),
    (lambda w: ("const", (1, 2)), 1, "('const', (1, 2))", [("a",)]),
    (lambda x: x == 1, 1, "(x == 1)", [(1,), (1.0,), ("1",), (True,)]),
]

# (function, number of arguments, a word of the reason it runs in Python)
REFUSED: List[Tuple[Callable[..., Any], int, str]] = [
    (lambda x: x if x else 0, 1, "branches"),
    (lambda x, y=1: x + y, 1, "argument"),
    (lambda x, y=1: x + y, 2, "default"),
    (lambda x: print(x), 1, "print"),
    (lambda x: x.encode(), 1, "encode"),
    (lambda x: [w for w in x], 1, ""),
    (lambda x: min(x), 1, "min"),
    (lambda x: x + STOP, 1, "STOP"),
    (make_closure(3), 1, "enclosing"),
    (len_shadowed["shadowed"], 1, "len"),
    (lambda *xs: xs, 1, ""),
    (lambda x: x % 2, 1, ""),
    (lambda x: x < 1 < 2, 1, ""),
    (lambda x: x in ("a", "b"), 1, ""),
    (operator.add, 1, "argument"),
    (print, 1, "plain"),
]


def load_lift() -> Any:
    """``ember._lift`` from the source tree, without the rest of the package."""
    path = Path(__file__).resolve().parent.parent / "python" / "ember" / "_lift.py"
    spec = importlib.util.spec_from_file_location("ember_lift_source", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def problems(lift: Any) -> List[str]:
    """Every way the recogniser disagrees with the tables above."""
    found = []
    for func, nargs, source, samples in RECOGNISED:
        code = getattr(func, "__code__", None)
        names = list(code.co_varnames[: code.co_argcount]) if code else None
        tree, why = lift.recognize(func, nargs)
        if tree is None:
            found.append(f"not recognised: {source} ({why})")
            continue
        shown = lift.describe(tree, names)
        if shown != source:
            found.append(f"recognised as {shown}, expected {source}")
        for args in samples:
            want = func(*args)
            got = lift.evaluate(tree, list(args))
            if not same(got, want):
                found.append(f"{source} of {args!r}: tree gives {got!r}, function {want!r}")
    for func, nargs, reason in REFUSED:
        tree, why = lift.recognize(func, nargs)
        if tree is not None:
            found.append(f"recognised but must not be: {lift.describe(tree)}")
        elif reason not in why:
            found.append(f"refused for {why!r}, expected a reason naming {reason!r}")
    return found


if __name__ == "__main__":
    found = problems(load_lift())
    version = ".".join(map(str, sys.version_info[:3]))
    for problem in found:
        print(f"python {version}: {problem}")
    print(f"python {version}: {len(RECOGNISED)} recognised and {len(REFUSED)} refused functions, "
          f"{len(found)} problem(s)")
    sys.exit(1 if found else 0)
