"""Helpers of the tests that run programs as a user would: a program's
output read line by line, pprint's batches parsed, and a real ``nc -lk``."""

from __future__ import annotations

import ast
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable, List

import pytest

DEADLINE = 60.0  # seconds a run may take on a busy machine before it fails


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Job:
    """A program running in its own process, its stdout read line by line."""

    def __init__(self, command: List[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: List[str] = []
        self.stderr = ""
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def wait_for(self, done: Callable[[List[str]], bool], what: str) -> None:
        """Waits until the output so far satisfies ``done``."""
        end = time.monotonic() + DEADLINE
        with self._changed:
            while not done(self.lines):
                left = end - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not done(self.lines)):
                    self.stop()
                    pytest.fail(f"{what}; output:\n" + "\n".join(self.lines[-40:])
                                + "\nstderr:\n" + self.stderr[-3000:])
                self._changed.wait(min(left, 0.5))

    def finish(self) -> int:
        """Waits until the program ends by itself and its output is read."""
        try:
            self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail("the program did not stop by itself")
        for reader in self._readers:
            reader.join()
        return self.proc.returncode

    def stop(self) -> int:
        """Stops the program as Ctrl-C would (gracefully) and returns its status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def batches(lines: List[str]) -> List[List[str]]:
    """The records of each batch printed by pprint."""
    out: List[List[str]] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("Time: ") and i + 1 < len(lines) and lines[i + 1] == "-" * 43:
            records = []
            j = i + 2
            while j < len(lines) and lines[j] != "":
                records.append(lines[j])
                j += 1
            if j < len(lines):  # the batch is complete
                out.append(records)
            i = j
        else:
            i += 1
    return out


def word_counts(lines: List[str]) -> Counter:
    total: Counter = Counter()
    for records in batches(lines):
        for record in records:
            word, n = ast.literal_eval(record)
            total[word] += n
    return total


def table_counts(lines: List[str]) -> Counter:
    """The totals of every ``|word|total|`` row that ``show()`` printed,
    summed over all batches (the SQL word counts)."""
    counts: Counter = Counter()
    for line in lines:
        cells = line.split("|")
        if len(cells) == 4 and cells[0] == cells[3] == "" and cells[2].strip().isdigit():
            counts[cells[1].strip()] += int(cells[2])
    return counts


class Netcat:
    """``nc -lk`` on a free port, fed from this test."""

    def __init__(self) -> None:
        nc = shutil.which("nc")
        if nc is None:
            pytest.fail("nc (netcat) is needed: .ci/setup.sh installs it")
        self.port = free_port()
        self.proc = subprocess.Popen([nc, "-lk", "127.0.0.1", str(self.port)],
                                     stdin=subprocess.PIPE, text=True)

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def need_service(value, what: str):
    """``value`` (a service's address from the environment), or a skip, or a
    failure when services are required (``EMBER_REQUIRE_SERVICES=1``, or
    ``CI`` set, as in CI)."""
    if not value:
        if services_required():
            pytest.fail(f"{what} is required (in CI or with EMBER_REQUIRE_SERVICES=1) but not set")
        pytest.skip(f"{what} not set")
    return value


def services_required() -> bool:
    """Whether a missing service or tool fails a test rather than skipping it."""
    def is_set(var: str) -> bool:
        v = os.environ.get(var, "")
        return v not in ("", "0") and v.lower() != "false"

    return is_set("EMBER_REQUIRE_SERVICES") or is_set("CI")


def create_topic(brokers: str, topic: str, partitions: int) -> None:
    """Creates a Kafka topic with the broker's own tool."""
    tansu = shutil.which("tansu")
    if tansu is None:
        pytest.fail("tansu is needed to create topics: .ci/setup.sh installs it")
    subprocess.run([tansu, "topic", "create", topic, "--partitions", str(partitions),
                    "--broker", f"tcp://{brokers}"], check=True, capture_output=True)
