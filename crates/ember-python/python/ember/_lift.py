"""Recognises the small functions streaming programs pass most often, so that
the engine can run them natively instead of calling the interpreter.

:func:`recognize` reads a function's bytecode (through :mod:`dis`, whose
instruction names and resolved arguments are stable enough across CPython
3.10 to 3.13) by running it symbolically: every instruction pops and pushes
expressions instead of values. What comes out is an expression tree of
nested tuples that the engine evaluates with Python's semantics:

- ``("arg", i)``: the i-th argument;
- ``("const", value)``: a constant;
- ``("tuple", [e, ...])``, ``("list", [e, ...])``;
- ``("bin", op, a, b)`` with ``op`` one of ``+ - *``;
- ``("cmp", op, a, b)`` with ``op`` one of ``< <= == != > >=``;
- ``("index", a, b)``: ``a[b]``;
- ``("call", name, [args])``: the builtins ``len int float str sum abs``;
- ``("method", name, receiver, [args])``: ``split lower upper strip``;
- ``("or", a, b)``, ``("and", a, b)``: Python's short-circuit operators,
  which give one of their operands; ``("not", a)``.

Only functions that read nothing but their arguments and constants qualify:
no globals (other than builtins the function's module does not shadow), no
closures, no defaults, no loops or statements other than ``return``. The
engine evaluates the tree and, for any input it cannot handle exactly as
Python would (another type, an int that outgrows 64 bits, a missing index, an
error to raise), calls the Python function on that input instead; so a
recognised function never gives another result than the function itself.

Set ``EMBER_LIFT=0`` to run every function in Python, and
``EMBER_LIFT_CHECK=1`` to run both and stop at the first difference.
"""

from __future__ import annotations

import builtins
import dis
import operator
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["recognize", "describe", "enabled", "checking"]

Expr = Tuple[Any, ...]

_BUILTINS = {"len": 1, "int": 1, "float": 1, "str": 1, "sum": 1, "abs": 1}
_METHODS = {"split": (0, 1), "lower": (0, 0), "upper": (0, 0), "strip": (0, 1)}
_BINARY = {"+": "+", "-": "-", "*": "*"}
_BINARY_310 = {"BINARY_ADD": "+", "BINARY_SUBTRACT": "-", "BINARY_MULTIPLY": "*"}
_COMPARE = {"<", "<=", "==", "!=", ">", ">="}
_CONSTANT_TYPES = (type(None), bool, int, float, str, bytes)

# Callables recognised by identity, with the tree they stand for given
# their arguments.
_KNOWN: Dict[int, Tuple[int, Callable[[List[Expr]], Expr]]] = {
    id(operator.add): (2, lambda a: ("bin", "+", a[0], a[1])),
    id(operator.sub): (2, lambda a: ("bin", "-", a[0], a[1])),
    id(operator.mul): (2, lambda a: ("bin", "*", a[0], a[1])),
    id(str.split): (1, lambda a: ("method", "split", a[0], [])),
    id(str.lower): (1, lambda a: ("method", "lower", a[0], [])),
    id(str.upper): (1, lambda a: ("method", "upper", a[0], [])),
    id(str.strip): (1, lambda a: ("method", "strip", a[0], [])),
    id(len): (1, lambda a: ("call", "len", a)),
    id(int): (1, lambda a: ("call", "int", a)),
    id(float): (1, lambda a: ("call", "float", a)),
    id(str): (1, lambda a: ("call", "str", a)),
    id(sum): (1, lambda a: ("call", "sum", a)),
    id(abs): (1, lambda a: ("call", "abs", a)),
}
# Keep the objects alive so that their ids stay theirs.
_KEEP = (operator.add, operator.sub, operator.mul, str.split, str.lower, str.upper, str.strip)


def enabled() -> bool:
    """Whether functions may run natively (``EMBER_LIFT``, on by default)."""
    return os.environ.get("EMBER_LIFT", "1").strip().lower() not in ("0", "false", "no", "off")


def checking() -> bool:
    """Whether natively run functions are also run in Python and compared
    (``EMBER_LIFT_CHECK``, off by default)."""
    return os.environ.get("EMBER_LIFT_CHECK", "0").strip().lower() in ("1", "true", "yes", "on")


class _Unsupported(Exception):
    """The function uses something the engine does not run natively."""


class _Null:
    """The NULL CPython pushes beside a callable."""


class _Callable:
    """A builtin or a bound method, waiting for its call."""

    def __init__(self, name: str, receiver: Optional[Expr] = None) -> None:
        self.name = name
        self.receiver = receiver


class _Value:
    """An expression on the symbolic stack (a distinct object per push, so
    that a copy can be told from an equal expression)."""

    def __init__(self, expr: Expr) -> None:
        self.expr = expr


def recognize(func: Any, nargs: int) -> Tuple[Optional[Expr], str]:
    """The expression tree of ``func`` called with ``nargs`` positional
    arguments, or ``None`` and the reason it runs in Python."""
    known = _KNOWN.get(id(func))
    if known is not None:
        if known[0] != nargs:
            return None, f"takes {known[0]} argument(s), called with {nargs}"
        return known[1]([("arg", i) for i in range(nargs)]), ""
    code = getattr(func, "__code__", None)
    if code is None or not callable(func) or getattr(func, "__self__", None) is not None:
        return None, "not a plain function"
    try:
        _check_function(func, code, nargs)
        return _run(func, code), ""
    except _Unsupported as e:
        return None, str(e)


def _check_function(func: Any, code: Any, nargs: int) -> None:
    if code.co_argcount != nargs or code.co_kwonlyargcount or code.co_posonlyargcount > nargs:
        raise _Unsupported(f"takes {code.co_argcount} argument(s), called with {nargs}")
    # Varargs, **kwargs, generators, coroutines: anything but a plain body.
    if code.co_flags & (0x04 | 0x08 | 0x20 | 0x80 | 0x100 | 0x200):
        raise _Unsupported("not a plain function (varargs, generator or coroutine)")
    if func.__closure__ or code.co_freevars or code.co_cellvars:
        raise _Unsupported("reads variables of an enclosing function")
    if func.__defaults__ or func.__kwdefaults__:
        raise _Unsupported("has default arguments")


def _is_builtin(func: Any, name: str) -> bool:
    """``name`` is the builtin of that name where ``func`` was defined."""
    if name not in _BUILTINS:
        return False
    if name in func.__globals__:
        return False
    found = func.__builtins__
    found = found.get(name) if isinstance(found, dict) else getattr(found, name, None)
    return found is getattr(builtins, name)


def _pop(stack: List[Any]) -> Any:
    if not stack:
        raise _Unsupported("unexpected bytecode")
    return stack.pop()


def _expr(cell: Any) -> Expr:
    if not isinstance(cell, _Value):
        raise _Unsupported("unexpected bytecode")
    return cell.expr


def _constant(value: Any) -> Expr:
    if isinstance(value, tuple):
        return ("tuple", [_constant(v) for v in value])
    if type(value) not in _CONSTANT_TYPES:
        raise _Unsupported(f"uses a constant of type {type(value).__name__}")
    return ("const", value)


def _call(callee: Any, args: List[Expr]) -> Expr:
    if not isinstance(callee, _Callable):
        raise _Unsupported("calls something other than a known builtin or str method")
    if callee.receiver is None:
        if len(args) != _BUILTINS[callee.name]:
            raise _Unsupported(f"calls {callee.name} with {len(args)} arguments")
        return ("call", callee.name, args)
    low, high = _METHODS[callee.name]
    if not low <= len(args) <= high:
        raise _Unsupported(f"calls .{callee.name} with {len(args)} arguments")
    return ("method", callee.name, callee.receiver, args)


def _merge(pending: Tuple[List[Any], Any, str], stack: Optional[List[Any]]) -> List[Any]:
    """Where a short-circuit ``or`` / ``and`` joins again: the jump kept the
    tested operand on top, the fall-through computed the other one."""
    saved, tested, kind = pending
    if stack is None or len(stack) != len(saved) or not saved or saved[-1] is not tested:
        raise _Unsupported("has branches other than 'or' and 'and'")
    if any(a is not b for a, b in zip(saved[:-1], stack[:-1])):
        raise _Unsupported("has branches other than 'or' and 'and'")
    return stack[:-1] + [_Value((kind, tested.expr, _expr(stack[-1])))]


def _run(func: Any, code: Any) -> Expr:
    version = sys.version_info[:2]
    names = code.co_varnames[: code.co_argcount]
    stack: Optional[List[Any]] = []
    pending: Dict[int, Tuple[List[Any], Any, str]] = {}
    result: Optional[Expr] = None

    def push(expr: Expr) -> None:
        stack.append(_Value(expr))

    for ins in dis.get_instructions(code):
        if ins.offset in pending:
            stack = _merge(pending.pop(ins.offset), stack)
        if stack is None:
            raise _Unsupported("has code after its return")
        op, arg, val = ins.opname, ins.arg, ins.argval
        if op in ("RESUME", "NOP", "PRECALL", "CACHE", "EXTENDED_ARG", "TO_BOOL"):
            continue
        if op in ("LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_BORROW"):
            if val not in names:
                raise _Unsupported("uses local variables")
            push(("arg", names.index(val)))
        elif op in ("LOAD_FAST_LOAD_FAST", "LOAD_FAST_BORROW_LOAD_FAST_BORROW"):
            for name in val:
                if name not in names:
                    raise _Unsupported("uses local variables")
                push(("arg", names.index(name)))
        elif op == "LOAD_CONST":
            push(_constant(val))
        elif op == "LOAD_GLOBAL":
            if not _is_builtin(func, val):
                raise _Unsupported(f"reads the global {val!r}")
            with_null = version >= (3, 11) and (arg & 1)
            if with_null and version < (3, 13):
                stack.append(_Null())
            stack.append(_Callable(val))
            if with_null and version >= (3, 13):
                stack.append(_Null())
        elif op == "PUSH_NULL":
            stack.append(_Null())
        elif op == "LOAD_METHOD" or (op == "LOAD_ATTR" and version >= (3, 12) and arg & 1):
            receiver = _expr(_pop(stack))
            if val not in _METHODS:
                raise _Unsupported(f"calls the method {val!r}")
            stack.append(_Callable(val, receiver))
        elif op in ("CALL", "CALL_FUNCTION", "CALL_METHOD"):
            args = [_expr(_pop(stack)) for _ in range(arg)][::-1]
            callee = _pop(stack)
            if isinstance(callee, _Null):
                callee = _pop(stack)
            elif op == "CALL" and isinstance(callee, _Callable) and callee.receiver is None:
                if not isinstance(_pop(stack), _Null):
                    raise _Unsupported("unexpected bytecode")
            push(_call(callee, args))
        elif op in _BINARY_310 or (op == "BINARY_OP" and ins.argrepr in _BINARY):
            b, a = _expr(_pop(stack)), _expr(_pop(stack))
            push(("bin", _BINARY_310.get(op) or _BINARY[ins.argrepr], a, b))
        elif op == "BINARY_SUBSCR":
            b, a = _expr(_pop(stack)), _expr(_pop(stack))
            push(("index", a, b))
        elif op == "COMPARE_OP":
            cmp = str(val)
            if cmp.startswith("bool(") and cmp.endswith(")"):
                cmp = cmp[5:-1]
            if cmp not in _COMPARE:
                raise _Unsupported(f"compares with {cmp}")
            b, a = _expr(_pop(stack)), _expr(_pop(stack))
            push(("cmp", cmp, a, b))
        elif op == "UNARY_NOT":
            push(("not", _expr(_pop(stack))))
        elif op in ("BUILD_TUPLE", "BUILD_LIST"):
            items = [_expr(_pop(stack)) for _ in range(arg)][::-1]
            push(("tuple" if op == "BUILD_TUPLE" else "list", items))
        elif op == "COPY" and arg == 1:
            top = _pop(stack)
            stack.extend([top, top])
        elif op == "POP_TOP":
            _pop(stack)
        elif op in ("JUMP_IF_TRUE_OR_POP", "JUMP_IF_FALSE_OR_POP"):
            # 3.10 / 3.11: the operand stays for the jump, goes otherwise.
            tested = _pop(stack)
            _expr(tested)
            _forward(ins, val, pending, stack + [tested], tested, op)
        elif op in ("POP_JUMP_IF_TRUE", "POP_JUMP_IF_FALSE",
                    "POP_JUMP_FORWARD_IF_TRUE", "POP_JUMP_FORWARD_IF_FALSE"):
            # 3.12+: `COPY 1` kept a copy of the operand for the jump.
            condition = _pop(stack)
            if not stack or stack[-1] is not condition:
                raise _Unsupported("has branches other than 'or' and 'and'")
            _forward(ins, val, pending, list(stack), stack[-1], op)
        elif op == "RETURN_VALUE":
            result = _expr(_pop(stack))
            stack = None
        elif op == "RETURN_CONST":
            result = _constant(val)
            stack = None
        else:
            raise _Unsupported(f"uses {op}")
    if pending or result is None:
        raise _Unsupported("has branches other than 'or' and 'and'")
    return result


def _forward(ins: Any, target: Any, pending: Dict[int, Tuple[List[Any], Any, str]],
             saved: List[Any], tested: Any, op: str) -> None:
    if not isinstance(target, int) or target <= ins.offset or target in pending:
        raise _Unsupported("has loops or nested branches")
    pending[target] = (saved, tested, "or" if "TRUE" in op else "and")


_SHOW_BIN = {"+", "-", "*"}


def describe(expr: Expr, names: Optional[List[str]] = None) -> str:
    """``expr`` as Python source, for :meth:`StreamingContext.explain`."""
    kind = expr[0]
    show = lambda e: describe(e, names)  # noqa: E731
    if kind == "arg":
        return names[expr[1]] if names and expr[1] < len(names) else f"x{expr[1]}"
    if kind == "const":
        return repr(expr[1])
    if kind in ("tuple", "list"):
        items = ", ".join(show(e) for e in expr[1])
        if kind == "list":
            return f"[{items}]"
        return f"({items},)" if len(expr[1]) == 1 else f"({items})"
    if kind in ("bin", "cmp"):
        return f"({show(expr[2])} {expr[1]} {show(expr[3])})"
    if kind == "index":
        return f"{show(expr[1])}[{show(expr[2])}]"
    if kind == "call":
        return f"{expr[1]}({', '.join(show(e) for e in expr[2])})"
    if kind == "method":
        return f"{show(expr[2])}.{expr[1]}({', '.join(show(e) for e in expr[3])})"
    if kind in ("or", "and"):
        return f"({show(expr[1])} {kind} {show(expr[2])})"
    if kind == "not":
        return f"(not {show(expr[1])})"
    return repr(expr)


def evaluate(expr: Expr, args: List[Any]) -> Any:
    """A reference evaluator in Python: what the engine's native evaluation
    must agree with (used by the tests on every CPython version)."""
    kind = expr[0]
    ev = lambda e: evaluate(e, args)  # noqa: E731
    if kind == "arg":
        return args[expr[1]]
    if kind == "const":
        return expr[1]
    if kind == "tuple":
        return tuple(ev(e) for e in expr[1])
    if kind == "list":
        return [ev(e) for e in expr[1]]
    if kind == "bin":
        return {"+": operator.add, "-": operator.sub, "*": operator.mul}[expr[1]](ev(expr[2]), ev(expr[3]))
    if kind == "cmp":
        ops = {"<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
               ">": operator.gt, ">=": operator.ge}
        return ops[expr[1]](ev(expr[2]), ev(expr[3]))
    if kind == "index":
        return ev(expr[1])[ev(expr[2])]
    if kind == "call":
        return getattr(builtins, expr[1])(*[ev(e) for e in expr[2]])
    if kind == "method":
        return getattr(ev(expr[2]), expr[1])(*[ev(e) for e in expr[3]])
    if kind == "or":
        return ev(expr[1]) or ev(expr[2])
    if kind == "and":
        return ev(expr[1]) and ev(expr[2])
    if kind == "not":
        return not ev(expr[1])
    raise ValueError(f"unknown expression {expr!r}")
