"""Functions the engine runs natively: recognised as ``lift_cases`` expects,
giving exactly what Python gives (the expectations here are computed by
calling the same functions in plain Python), deferring to Python where the
native evaluation cannot match it, and watched by ``EMBER_LIFT_CHECK``."""

from __future__ import annotations

import operator
from collections import Counter

import pytest

import lift_cases
from ember import _lift
from test_streaming import Sink, master, no_launcher_settings, ordered, run, ssc  # noqa: F401

HOSTILE_LINES = [
    ["to be or not", "  to\tbe\x1c that\u3000is ", "", "Ünïcode WORDS ß", "İstanbul ΣΑΣ"],
    ["a  b", "\u200bzero width", "x" * 300, "1 2 3"],
    [],
]


@pytest.fixture(autouse=True)
def lifting_as_by_default(monkeypatch):
    monkeypatch.delenv("EMBER_LIFT", raising=False)
    monkeypatch.delenv("EMBER_LIFT_CHECK", raising=False)


def test_the_installed_recogniser_agrees_with_the_cases():
    assert lift_cases.problems(_lift) == []


def test_word_count_runs_natively_and_counts_as_python_does(ssc):
    split = lambda line: line.split()  # noqa: E731
    pair = lambda w: (w.lower(), 1)  # noqa: E731
    add = lambda a, b: a + b  # noqa: E731
    out = Sink(ssc.queueStream(HOSTILE_LINES).flatMap(split).map(pair).reduceByKey(add))
    plan = ssc._explain_text()
    assert "flatMap" in plan and "native line.split()" in plan
    assert "native (w.lower(), 1)" in plan
    assert "reduceByKey" in plan and "native (a + b)" in plan
    run(ssc, 3)
    for got, lines in zip(out.batches(), HOSTILE_LINES):
        want = Counter(w.lower() for line in lines for w in line.split())
        assert ordered(got) == ordered(want.items())


def test_ints_that_outgrow_64_bits_promote_as_in_python(ssc):
    big = 2**62
    sums = Sink(ssc.queueStream([[("k", big), ("k", big), ("k", big), ("j", -big)]])
                .reduceByKey(operator.add))
    tripled = Sink(ssc.queueStream([[big, -big, 3]]).map(lambda x: x * 3))
    run(ssc, 1)
    assert ordered(sums.batches()[0]) == ordered([("k", 3 * big), ("j", -big)])
    assert tripled.batches()[0] == [3 * big, -3 * big, 9]


def test_mixed_types_give_pythons_results(ssc):
    records = [1, 2.5, True, "7", " 8 ", "9.5e1", "x", None, (1, 2), b"ab", 10**30, "1_000"]

    def as_python(x):
        try:
            return ("ok", int(x))
        except (TypeError, ValueError):
            return ("error",)

    plain = Sink(ssc.queueStream([records]).map(lambda x: str(x)))
    kept = Sink(ssc.queueStream([records]).filter(lambda x: x == 1))
    strings = [r for r in records if isinstance(r, str)]
    floats = Sink(ssc.queueStream([strings]).filter(lambda s: s.strip() != "x")
                  .filter(lambda s: s != "1_000").map(lambda s: float(s)))
    run(ssc, 1)
    assert plain.batches()[0] == [str(x) for x in records]
    assert kept.batches()[0] == [x for x in records if x == 1]
    assert floats.batches()[0] == [float(s) for s in strings if s.strip() != "x" and s != "1_000"]
    assert as_python("1_000") == ("ok", 1000)  # a case the engine defers


def test_a_record_the_function_fails_on_raises_pythons_own_error(ssc):
    Sink(ssc.queueStream([["a b", 5]]).flatMap(lambda line: line.split(" ")))
    ssc.start()
    with pytest.raises(AttributeError, match="'int' object has no attribute 'split'"):
        ssc._run_batches(1)


def test_pysparks_stateful_updater_runs_natively(ssc):
    def updateFunc(new_values, last_sum):
        return sum(new_values) + (last_sum or 0)

    batches = [["a", "b", "a"], ["a"], [], ["b", "c"]]
    out = Sink(ssc.queueStream(batches).map(lambda w: (w, 1)).updateStateByKey(updateFunc))
    assert "updateStateByKey updateFunc" in ssc._explain_text()
    assert "native (sum(new_values) + (last_sum or 0))" in ssc._explain_text()
    run(ssc, 4)
    totals: Counter = Counter()
    for got, words in zip(out.batches(), batches):
        totals.update(words)
        assert ordered(got) == ordered(totals.items())


def test_windowed_counts_with_native_functions(ssc):
    batches = [["a", "b"], ["a"], ["c"], [], ["a"]]
    counts = (ssc.queueStream(batches).map(lambda w: (w, 1))
              .reduceByKeyAndWindow(lambda x, y: x + y, lambda x, y: x - y, 2, 1,
                                    filterFunc=lambda kv: kv[1] > 0))
    out = Sink(counts)
    assert "reduceByKeyAndWindow (inverse)" in ssc._explain_text()
    assert "native (kv[1] > 0)" in ssc._explain_text()
    run(ssc, 5)
    for t, got in enumerate(out.batches(), 1):
        window = [w for i, b in enumerate(batches, 1) if t - 2 < i <= t for w in b]
        assert ordered(got) == ordered(Counter(window).items())


def test_functions_with_globals_or_closures_run_in_python(ssc):
    suffix = "!"
    out = Sink(ssc.queueStream([["a", "b"]]).map(lambda w: w + suffix))
    assert "Python (reads variables of an enclosing function)" in ssc._explain_text()
    run(ssc, 1)
    assert out.batches() == [["a!", "b!"]]


def test_lifting_can_be_turned_off(ssc, monkeypatch):
    monkeypatch.setenv("EMBER_LIFT", "0")
    out = Sink(ssc.queueStream([["a b"]]).flatMap(lambda l: l.split()).map(lambda w: (w, 1)))
    assert "native" not in ssc._explain_text()
    assert "Python (EMBER_LIFT=0)" in ssc._explain_text()
    run(ssc, 1)
    assert out.batches() == [[("a", 1), ("b", 1)]]


def test_explain_prints_the_plan(ssc, capsys):
    ssc.queueStream([["a"]]).map(lambda w: (w, 1)).pprint()
    ssc.explain()
    printed = capsys.readouterr().out
    assert "== ember: functions of the program ==" in printed
    assert "map <lambda> (test_lift.py:" in printed and "native (w, 1)" in printed


@pytest.mark.parametrize("where", ["pipeline", "reduce"])
def test_the_differential_mode_stops_at_a_wrong_native_result(ssc, monkeypatch, where):
    real = _lift.recognize

    def wrong(func, nargs):
        tree, why = real(func, nargs)
        if tree == ("tuple", [("arg", 0), ("const", 1)]):
            return ("tuple", [("arg", 0), ("const", 2)]), ""
        if tree == ("bin", "+", ("arg", 0), ("arg", 1)):
            return ("bin", "-", ("arg", 0), ("arg", 1)), ""
        return tree, why

    monkeypatch.setattr(_lift, "recognize", wrong)
    monkeypatch.setenv("EMBER_LIFT_CHECK", "1")
    words = ssc.queueStream([["a", "b", "a"]])
    if where == "pipeline":
        Sink(words.map(lambda w: (w, 1)))
    else:
        Sink(words.map(lambda w: [w, 1]).reduceByKey(lambda a, b: a + b))
    ssc.start()
    with pytest.raises(AssertionError, match="EMBER_LIFT_CHECK: the native .* differs from Python's"):
        ssc._run_batches(1)


def test_the_wrong_native_result_would_show_without_the_check(ssc, monkeypatch):
    # The same wrong tree as above, unchecked: what the check guards against.
    monkeypatch.setattr(_lift, "recognize", lambda f, n: (("tuple", [("arg", 0), ("const", 2)]), ""))
    out = Sink(ssc.queueStream([["a"]]).map(lambda w: (w, 1)))
    run(ssc, 1)
    assert out.batches() == [[("a", 2)]]
