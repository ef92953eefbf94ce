"""mapWithState for Python: Spark's StateSpec and State (not in PySpark)."""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

from ember.streaming.dstream import _items, _ms

__all__ = ["State", "StateSpec"]

_KEEP, _UPDATE, _REMOVE = 0, 1, 2


class State:
    """The state of one key inside a ``mapWithState`` function."""

    def __init__(self, exists: bool, value: Any, timing_out: bool) -> None:
        self._exists = exists
        self._value = value
        self._timing_out = timing_out
        self._action = _KEEP

    def exists(self) -> bool:
        """Whether the key has a state."""
        return self._exists

    def get(self) -> Any:
        """The state; raises ValueError when there is none."""
        if not self._exists:
            raise ValueError("State is not set")
        return self._value

    def getOption(self) -> Optional[Any]:
        """The state, or None."""
        return self._value if self._exists else None

    def update(self, newState: Any) -> None:
        """Sets the state. Not allowed on a key that is timing out."""
        if self._timing_out:
            raise ValueError("Cannot update the state of a key that is timing out")
        if self._action == _REMOVE:
            raise ValueError("Cannot update a state that has been removed")
        self._exists, self._value, self._action = True, newState, _UPDATE

    def remove(self) -> None:
        """Removes the state. Not allowed on a key that is timing out."""
        if self._timing_out:
            raise ValueError("Cannot remove the state of a key that is timing out")
        if self._action == _REMOVE:
            raise ValueError("Cannot remove a state that has already been removed")
        self._exists, self._value, self._action = False, None, _REMOVE

    def isTimingOut(self) -> bool:
        """Whether this call is the key's timeout (the value is then None)."""
        return self._timing_out


class StateSpec:
    """What ``mapWithState`` does: ``StateSpec.function(f)`` with
    ``f(key, value, state) -> mapped``, and optionally a timeout and an
    initial state."""

    def __init__(self, func: Callable[[Any, Any, State], Any]) -> None:
        self._func = func
        self._timeout_ms: Optional[int] = None
        self._initial: Optional[list] = None

    @staticmethod
    def function(func: Callable[[Any, Any, State], Any]) -> "StateSpec":
        """A spec calling ``func(key, value, state)`` for each record; its result
        is the record of the mapped DStream."""
        return StateSpec(func)

    def timeout(self, idleDuration: float) -> "StateSpec":
        """Keys without records for ``idleDuration`` seconds time out: ``func``
        is called once more with ``value = None`` and ``state.isTimingOut()``."""
        self._timeout_ms = _ms(idleDuration, "timeout")
        return self

    def initialState(self, rdd: Any) -> "StateSpec":
        """The states to start from: an RDD or list of ``(key, state)``."""
        self._initial = _items(rdd)
        return self

    def numPartitions(self, numPartitions: int) -> "StateSpec":
        """Accepted for Spark's sake: state is partitioned by worker."""
        return self

    def _args(self) -> dict:
        func = self._func

        def call(key: Any, value: Any, has_value: bool, exists: bool, state: Any,
                 timing_out: bool) -> Tuple[bool, Any, int, Any]:
            st = State(exists, state, timing_out)
            mapped = func(key, value if has_value else None, st)
            return True, mapped, st._action, st._value

        return {"call": call, "timeout_ms": self._timeout_ms, "initial": self._initial}
