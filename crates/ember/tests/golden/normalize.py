#!/usr/bin/env python3
"""Normalise GoldenWindows' raw stdout into a golden expected.txt.

Reads the raw stdout on stdin, writes the normalised output to stdout.

* Keeps only DStream.print() blocks:
      -------------------------------------------
      Time: <ms> ms
      -------------------------------------------
      <records, one per line>
      <blank line>
  Any other line outside such a block is dropped.
* Needs the marker line `@@GOLDEN first_batch_ms=F last_batch_ms=L` that
  GoldenWindows prints after stopping. Blocks with time > L are dropped
  (a batch that ran past the cut-off).
* Re-times each block: t' = t - F + 1000 (the first batch of the base
  1-second clock becomes 1000 ms).
"""
import re
import sys

DASHES = "-" * 43
TIME_RE = re.compile(r"^Time: (\d+) ms$")
MARK_RE = re.compile(r"^@@GOLDEN first_batch_ms=(\d+) last_batch_ms=(\d+)$")


def main() -> int:
    lines = sys.stdin.read().split("\n")
    first = last = None
    for line in lines:
        m = MARK_RE.match(line)
        if m:
            first, last = int(m.group(1)), int(m.group(2))
    if first is None:
        sys.stderr.write("normalize.py: no @@GOLDEN marker in the output\n")
        return 1

    blocks = []  # (time, [records])
    i = 0
    n = len(lines)
    while i < n:
        if (
            lines[i] == DASHES
            and i + 2 < n
            and TIME_RE.match(lines[i + 1])
            and lines[i + 2] == DASHES
        ):
            t = int(TIME_RE.match(lines[i + 1]).group(1))
            j = i + 3
            recs = []
            complete = False
            while j < n:
                if lines[j] == "":
                    complete = True
                    break
                if lines[j] == DASHES or MARK_RE.match(lines[j]):
                    break
                recs.append(lines[j])
                j += 1
            if complete:
                blocks.append((t, recs))
                i = j + 1
            else:
                if t <= last:
                    sys.stderr.write(f"normalize.py: incomplete block at {t}\n")
                    return 1
                i = j
        else:
            i += 1

    times = [t for t, _ in blocks]
    if times != sorted(set(times)):
        sys.stderr.write(f"normalize.py: blocks out of order or repeated: {times}\n")
        return 1
    out = []
    for t, recs in blocks:
        if t > last:
            continue
        if t < first or (t - first) % 1000 != 0:
            sys.stderr.write(f"normalize.py: unexpected batch time {t}\n")
            return 1
        out.append(DASHES)
        out.append(f"Time: {t - first + 1000} ms")
        out.append(DASHES)
        out.extend(recs)
        out.append("")
    sys.stdout.write("".join(l + "\n" for l in out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
