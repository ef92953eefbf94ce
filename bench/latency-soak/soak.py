#!/usr/bin/env python3
"""A latency soak: one ember comparison job fed at a fixed rate for minutes.

Starts `ember-bench serve --rate R` and `ember-bench ember-job` against it,
reads the job's per-batch lines (`OUT`, `DONE`), samples the job's RSS and
CPU every second, and prints, per minute of batches, the total delay p50 /
p99 / max (completion wall time minus batch time), how many batches
exceeded the interval + 50 ms, the words counted against the words offered,
RSS and CPU. The verdict: p99 within the interval + 50 ms in every minute,
and everything offered counted. Standard library only.
"""

import argparse
import os
import subprocess
import sys
import threading
import time


def now_ms():
    return time.time() * 1000.0


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def proc_stat(pid):
    """(RSS kB, CPU seconds of all threads) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return rss, (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def offered_by(points, t_ms):
    """Words the server had offered by wall time t_ms (all clients)."""
    import bisect
    total = 0
    for pts in points.values():
        i = bisect.bisect_right(pts[0], t_ms)
        if i > 0:
            total += pts[1][i - 1]
    return total


def start_serve(ember_bin, rate, log):
    """Starts `ember-bench serve` on a free port, logging to `log`; returns
    the process and its port once it listens (exits if it never does)."""
    serve = subprocess.Popen([ember_bin, "serve", "--port", "0", "--rate", str(int(rate))],
                             stdout=open(log, "w"))
    for _ in range(500):
        time.sleep(0.02)
        with open(log) as f:
            first = f.readline().split()
        if len(first) >= 2 and first[0] == "LISTENING":
            return serve, int(first[1])
    serve.kill()
    sys.exit("ember-bench serve did not start")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ember-bin", default="target/release/ember-bench")
    ap.add_argument("--job", default="wordcount", choices=["wordcount", "window", "state"])
    ap.add_argument("--words", default="owned", choices=["owned", "borrowed"])
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--rate", type=float, required=True, help="words/s offered")
    ap.add_argument("--interval-ms", type=int, default=1000)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--warmup-s", type=float, default=10.0, help="seconds not measured")
    ap.add_argument("--example-outputs", action="store_true",
                    help="add the network_word_count example's print() and dashboard")
    ap.add_argument("--out", default="target/latency-soak")
    a = ap.parse_args()

    os.makedirs(a.out, exist_ok=True)
    tag = (f"{time.strftime('%Y%m%d-%H%M%S')}-{a.job}-{a.words}-{int(a.rate)}-{a.interval_ms}ms"
           + ("-example-outputs" if a.example_outputs else ""))
    serve_log = os.path.join(a.out, tag + ".serve")
    job_log = os.path.join(a.out, tag + ".out")
    batches = int((a.minutes * 60 + a.warmup_s) * 1000 / a.interval_ms) + 2

    serve, port = start_serve(a.ember_bin, a.rate, serve_log)
    job = subprocess.Popen(
        [a.ember_bin, "ember-job", "--job", a.job, "--words", a.words, "--port", str(port),
         "--master", a.master, "--interval-ms", str(a.interval_ms),
         "--batches", str(batches)] + (["--example-outputs"] if a.example_outputs else []),
        stdout=subprocess.PIPE, stderr=open(os.path.join(a.out, tag + ".err"), "w"),
        text=True, bufsize=1)
    done, outs, started = {}, {}, [None]

    def reader():
        with open(job_log, "w") as out:
            for line in job.stdout:
                out.write(line)
                p = line.split()
                if p[:1] == ["DONE"]:
                    done[int(p[1])] = int(p[2])
                elif p[:1] == ["OUT"]:
                    outs[int(p[1])] = (int(p[2]), int(p[3]), int(p[4]))
                elif p[:1] == ["STARTED"]:
                    started[0] = int(p[3])

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    samples = []  # (wall ms, rss kB, cpu s)
    end = now_ms() + (batches * a.interval_ms + 30_000)
    while job.poll() is None and now_ms() < end:
        s = proc_stat(job.pid)
        if s:
            samples.append((now_ms(), s[0], s[1]))
        time.sleep(1.0)
    if job.poll() is None:
        job.kill()
    job.wait()
    th.join(timeout=5)
    serve.kill()
    serve.wait()

    if started[0] is None or not done:
        sys.exit(f"the job never completed a batch; see {a.out}/{tag}.err")
    points = {}
    with open(serve_log) as f:
        for line in f:
            p = line.split()
            if len(p) == 4 and p[0] == "OFFER":
                xs, ys = points.setdefault(p[1], ([], []))
                xs.append(int(p[2]) / 1000.0)
                ys.append(int(p[3]))
    first = started[0]
    warm = first + int(a.warmup_s * 1000 / a.interval_ms) * a.interval_ms
    measured = sorted(t for t in done if t > warm)
    bound = a.interval_ms + 50
    extra = ", with the example's print() and dashboard" if a.example_outputs else ""
    print(f"# {a.job} ({a.words} words{extra}), {a.master}, {a.interval_ms} ms batches, "
          f"{a.rate / 1e6:.2f} M words/s offered, {len(measured)} batches measured "
          f"after {a.warmup_s:.0f} s of warm-up; logs: {a.out}/{tag}.*")
    print()
    print("| minute | batches | p50 ms | p99 ms | max ms | > interval + 50 ms | "
          "counted / offered | RSS MB | CPU s/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    ok = True
    minute_ms = 60_000
    worst_p99 = 0
    n_minutes = 0
    for m in range(int(a.minutes + 0.999)):
        lo, hi = warm + m * minute_ms, warm + (m + 1) * minute_ms
        ts = [t for t in measured if lo < t <= hi]
        if not ts:
            continue
        n_minutes += 1
        delays = [done[t] - t for t in ts]
        over = sum(1 for d in delays if d > bound)
        counted = sum(outs[t][1] for t in ts if t in outs)
        offered = offered_by(points, ts[-1]) - offered_by(points, ts[0] - a.interval_ms)
        span = [s for s in samples if lo <= s[0] <= hi + a.interval_ms]
        rss = max((s[1] for s in span), default=0) / 1024
        cpu = ((span[-1][2] - span[0][2]) / ((span[-1][0] - span[0][0]) / 1000)
               if len(span) > 1 else float("nan"))
        p99 = pct(delays, 99)
        worst_p99 = max(worst_p99, p99)
        share = counted / offered if offered else float("nan")
        if p99 > bound or not (0.97 <= share <= 1.03):
            ok = False
        print(f"| {m + 1} | {len(ts)} | {pct(delays, 50):.0f} | {p99:.0f} | {max(delays):.0f} | "
              f"{over} | {share:.3f} | {rss:.0f} | {cpu:.2f} |")
    print()
    all_delays = [done[t] - t for t in measured]
    print(f"all: p50 {pct(all_delays, 50):.0f} ms, p99 {pct(all_delays, 99):.0f} ms, "
          f"max {max(all_delays):.0f} ms; worst minute's p99 {worst_p99:.0f} ms "
          f"(bound {bound} ms)")
    print("HOLDS" if ok and n_minutes else "DOES NOT HOLD")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
