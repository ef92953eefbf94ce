#!/usr/bin/env python3
"""Runs the ember-vs-Spark comparison; called by run.sh (see README.md).

For each job (wordcount, window, state) and each system (ember, Spark), one
run at a time: starts `ember-bench serve` at a rate, starts the job (ember:
`ember-bench ember-job`; Spark: `java ... SparkJobs`), reads its per-batch
lines, samples its VmHWM, kills both, and judges whether the rate was
sustained. Searches the highest sustained rate (doubling, then bisecting),
then measures latency at a rate both hold, and prints one markdown table.
Only the standard library is used.
"""

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time

PYJOBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyjobs.py")

JOBS = ["wordcount", "window", "state", "regex"]
# `regex` splits lines with a compiled regular expression: a function ember
# cannot run natively, for the Python systems only.
PYTHON_ONLY_JOBS = {"regex"}
# "ember" runs the job as first written (an owned String per word, as Spark's
# split makes one); "ember-borrowed" the same job with words borrowed from
# their lines (flat_map_str), searched for its maximum only.
SYSTEMS = ["ember", "spark", "ember-borrowed", "ember-python", "pyspark", "ember-python-2p"]
# The Python programs (pyjobs.py, one program for both): on ember through
# `python -m ember.submit`, on PySpark with its Python workers.
# `ember-python-2p` runs the program in two processes of one worker each
# (`ember.submit --processes 2`): two interpreters for what stays in Python.
PYTHON_SYSTEMS = {"ember-python", "pyspark", "ember-python-2p"}
# Which system is compared with which in the table.
PAIRS = {"ember": "spark", "ember-python": "pyspark"}

# Batch interval, window and slide of the jobs (ms).
INTERVAL = 1000
WINDOW = 30_000
SLIDE = 10_000

PLANS = {
    # warmup: batches skipped; last: the last batch measured (1-based), so
    # batches warmup+1 ..= last are measured; steps: runs per search.
    "quick": {
        "wordcount": {"warmup": 3, "last": 11},
        "state": {"warmup": 3, "last": 11},
        "window": {"warmup": 3, "last": 30},
        "steps": 3,
        "start": {
            ("ember", "wordcount"): 16e6, ("ember", "state"): 8e6, ("ember", "window"): 12e6,
            ("ember-borrowed", "wordcount"): 16e6, ("ember-borrowed", "state"): 8e6,
            ("ember-borrowed", "window"): 12e6,
            ("spark", "wordcount"): 2e6, ("spark", "state"): 1e6, ("spark", "window"): 1e6,
            ("ember-python", "wordcount"): 6e6, ("ember-python", "state"): 4e6,
            ("ember-python", "window"): 6e6, ("ember-python", "regex"): 1e6,
            ("ember-python-2p", "regex"): 2e6, ("ember-python-2p", "wordcount"): 6e6,
            ("pyspark", "wordcount"): 2e5, ("pyspark", "state"): 2e5,
            ("pyspark", "window"): 2e5, ("pyspark", "regex"): 2e5,
        },
        "regex": {"warmup": 3, "last": 11},
    },
    "full": {
        "wordcount": {"warmup": 5, "last": 35},
        "state": {"warmup": 5, "last": 35},
        "window": {"warmup": 5, "last": 60},
        "steps": 7,
        "start": {
            ("ember", "wordcount"): 8e6, ("ember", "state"): 4e6, ("ember", "window"): 8e6,
            ("ember-borrowed", "wordcount"): 16e6, ("ember-borrowed", "state"): 8e6,
            ("ember-borrowed", "window"): 16e6,
            ("spark", "wordcount"): 1e6, ("spark", "state"): 1e6, ("spark", "window"): 1e6,
            ("ember-python", "wordcount"): 4e6, ("ember-python", "state"): 2e6,
            ("ember-python", "window"): 4e6, ("ember-python", "regex"): 1e6,
            ("ember-python-2p", "regex"): 2e6, ("ember-python-2p", "wordcount"): 4e6,
            ("pyspark", "wordcount"): 2e5, ("pyspark", "state"): 2e5,
            ("pyspark", "window"): 2e5, ("pyspark", "regex"): 2e5,
        },
        "regex": {"warmup": 5, "last": 35},
    },
}

BACKLOG_S = 0.5      # allowed uncounted input at a batch time, seconds of input
GROWTH = 0.15        # allowed delay growth, fraction of the output period
COUNT_TOL = 0.03     # counted vs offered
OFFER_MIN = 0.97     # offered vs asked (TCP back-pressure)
STARTUP_TIMEOUT_S = 90  # launch to context started
FIRST_OUTPUT_S = 30     # context started to its first output completed


def per_second():
    """Batches of INTERVAL in a second, at least 1: what the plans' counts
    of 1 s batches are multiplied by."""
    return max(1, math.ceil(1000 / INTERVAL))


def now_ms():
    return time.time() * 1000.0


def log(msg, fh=None):
    print(msg, flush=True)
    if fh:
        fh.write(msg + "\n")
        fh.flush()


def percentile(xs, p):
    if not xs:
        return float("nan")
    v = sorted(xs)
    rank = max(1, math.ceil(p / 100.0 * len(v)))
    return v[min(rank, len(v)) - 1]


def cpu_s(pid):
    """CPU seconds (user + system, all threads) a process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class ProcessTree:
    """CPU and memory of a job and every process it starts (PySpark's
    driver starts a JVM, which starts Python workers): CPU seconds summed
    over every process seen (an exited one keeps its last reading), memory
    as the peak of the summed resident sets of the live ones, sampled (and
    at least the root's own peak)."""

    def __init__(self, root):
        self.root = root
        self.cpu_by_pid = {}
        self.peak_kb = 0

    def _members(self):
        children = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
        members, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            members.append(pid)
            todo.extend(children.get(pid, []))
        return members

    def sample(self):
        """Reads the tree now; returns the CPU seconds used so far."""
        rss = 0
        for pid in self._members():
            c = cpu_s(pid)
            if c is not None:
                self.cpu_by_pid[pid] = c
            rss += vm_rss_kb(pid) or 0
        self.peak_kb = max(self.peak_kb, rss, vm_hwm_kb(self.root) or 0)
        return sum(self.cpu_by_pid.values())


def status_kb(pid, field):
    """A `VmRSS:`-like field of /proc/<pid>/status, in kB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def vm_rss_kb(pid):
    return status_kb(pid, "VmRSS")


def vm_hwm_kb(pid):
    return status_kb(pid, "VmHWM")


class Offers:
    """The server's OFFER log: words offered by any wall-clock instant."""

    def __init__(self, path):
        self.points = {}  # client -> [(t_ms, total)]
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 4 and p[0] == "OFFER":
                    self.points.setdefault(p[1], []).append((int(p[2]) / 1000.0, int(p[3])))

    def by(self, t_ms):
        import bisect
        total = 0
        for pts in self.points.values():
            i = bisect.bisect_right([x[0] for x in pts], t_ms)
            if i > 0:
                total += pts[i - 1][1]
        return total


class Harness:
    def __init__(self, args):
        self.a = args
        self.plan = PLANS[args.mode]
        os.makedirs(args.out, exist_ok=True)
        self.logf = open(os.path.join(args.out, "runs.log"), "a")
        self.seq = 0

    # ---------------------------------------------------------------- one run
    def batches(self, job):
        """The plan's warm-up and last measured batch for `job` at INTERVAL.

        The plans count 1 s batches. A shorter interval keeps the same
        seconds of warm-up and of measurement (at 100 ms: 30 batches of
        warm-up, 80 measured), so a start-up's catch-up is not measured and
        a figure rests on as much time as at 1 s; a longer one keeps the
        batch counts."""
        p = self.plan[job]
        return p["warmup"] * per_second(), p["last"] * per_second()

    def job_cmd(self, system, job, port, batches):
        if system in ("ember", "ember-borrowed"):
            words = "borrowed" if system == "ember-borrowed" else "owned"
            return [self.a.ember_bin, "ember-job", "--job", job, "--port", str(port),
                    "--master", "local[2]", "--interval-ms", str(INTERVAL),
                    "--batches", str(batches), "--words", words]
        ckpt = os.path.join(self.a.out, "spark-checkpoint", f"run{self.seq}")
        if system in PYTHON_SYSTEMS:
            program = {
                "ember-python": [self.a.ember_python, "-m", "ember.submit"],
                "ember-python-2p": [self.a.ember_python, "-m", "ember.submit", "--processes", "2"],
            }.get(system, [self.a.pyspark_python])
            return program + [PYJOBS, job, "127.0.0.1", str(port), "local[2]", str(INTERVAL),
                              str(batches), ckpt]
        return (["java"] + self.a.java_opts.split() +
                ["-cp", self.a.spark_cp, "SparkJobs", job, "127.0.0.1", str(port),
                 "local[2]", str(INTERVAL), str(batches), ckpt])

    def run_one(self, system, job, rate):
        self.seq += 1
        warmup, last = self.batches(job)
        period = SLIDE if job == "window" else INTERVAL
        tag = f"run{self.seq:03d}-{system}-{job}-{int(rate)}"
        serve_log = os.path.join(self.a.out, tag + ".serve")
        job_log = os.path.join(self.a.out, tag + ".out")
        job_err = open(os.path.join(self.a.out, tag + ".err"), "w")

        serve = subprocess.Popen([self.a.ember_bin, "serve", "--port", "0", "--rate",
                                  str(int(rate))], stdout=open(serve_log, "w"))
        port = None
        for _ in range(200):
            time.sleep(0.02)
            with open(serve_log) as f:
                first = f.readline().split()
            if len(first) >= 2 and first[0] == "LISTENING":
                port = int(first[1])
                break
        if port is None:
            serve.kill()
            raise SystemExit("ember-bench serve did not start")

        lines = []
        t0 = now_ms()
        # The job's own end is a backstop 60 s of batches past the measured
        # span (the run kills it once the span is in): a start-up shift of up
        # to 15 s, the wait for a window's next slide and that output's own
        # delay of seconds must all fit before it (20 s did not: Spark's
        # window job once halted before its last measured output).
        env = dict(os.environ)
        if system == "pyspark":
            env["PYSPARK_PYTHON"] = self.a.pyspark_python  # the workers' Python
        backstop = last + 60 * per_second()
        proc = subprocess.Popen(self.job_cmd(system, job, port, backstop),
                                stdout=subprocess.PIPE, stderr=job_err, text=True, bufsize=1,
                                env=env)

        def reader():
            with open(job_log, "w") as out:
                for line in proc.stdout:
                    out.write(line)
                    lines.append((now_ms(), line.split()))

        th = threading.Thread(target=reader, daemon=True)
        th.start()

        tree = ProcessTree(proc.pid)
        cpu = []    # (wall ms, CPU seconds of the job and its processes so far)
        first_batch = None
        started_at = None
        done = {}   # batch ms -> completion wall ms
        outs = {}   # batch ms -> (wall ms, words, keys)
        failures = []
        seen = 0
        target = None
        shift = None  # batches of start-up before the warm-up
        while True:
            time.sleep(0.1)
            if proc.poll() is None:
                cpu.append((now_ms(), tree.sample()))
            while seen < len(lines):
                _, f = lines[seen]
                seen += 1
                if not f:
                    continue
                if f[0] == "STARTED":
                    first_batch = int(f[3])
                    started_at = int(f[1])
                    target = first_batch + (last - 1) * INTERVAL
                elif f[0] == "OUT":
                    outs[int(f[1])] = (int(f[2]), int(f[3]), int(f[4]))
                elif f[0] == "DONE":
                    done[int(f[1])] = int(f[2])
            if proc.poll() is not None and seen >= len(lines):
                th.join(1)
                if not (target and any(t >= target for t in done)):
                    failures.append(f"the job exited early (code {proc.returncode})")
                break
            if target is None:
                if now_ms() - t0 > STARTUP_TIMEOUT_S * 1000:
                    failures.append("no batch started in time")
                    break
                continue
            out_done = [t for t in done if t in outs]
            if out_done and shift is None:
                # Warm-up counts from the first completed output: batches
                # queued behind a slow start are start-up, not the rate.
                t_first = min(out_done)
                late = done[t_first] - t_first  # ms after its batch time
                shift = max(0, math.ceil(late / INTERVAL) - 1)
                # The job runs 60 s past `last`: at most 15 s of start-up
                # (`last` is moved by the shift).
                shift = min(shift, math.ceil(15_000 / INTERVAL))
                target = first_batch + (last + shift - 1) * INTERVAL
            if any(t >= target for t in done) and (job != "window" or
                                                   any(t >= target for t in out_done)):
                break
            # Abort when the next output is more than two periods overdue.
            # The first output gets a start-up allowance instead: a JVM's
            # first jobs (class loading, JIT, a receiver being launched) can
            # take seconds on a slow or busy machine, and warm-up batches are
            # not measured anyway.
            zero = first_batch - INTERVAL
            last_out = max(out_done, default=None)
            nxt = (last_out + period) if last_out else zero + period
            # Warm-up outputs get the start-up allowance too: PySpark's
            # first batches start its Python workers.
            in_warmup = nxt < first_batch + warmup * INTERVAL
            allowance = 2 * period if last_out and not in_warmup else \
                max(2 * period, FIRST_OUTPUT_S * 1000)
            if now_ms() > nxt + allowance:
                what = "output" if last_out else "first output (start-up allowance spent)"
                failures.append(f"aborted: {what} of batch {nxt} still missing "
                                f"{(now_ms() - nxt) / 1000:.1f} s after its time")
                break
        tree.sample()
        hwm = tree.peak_kb
        for pid in reversed(tree._members()[1:]):
            try:
                os.kill(pid, signal.SIGKILL)  # PySpark's JVM and workers
            except OSError:
                pass
        proc.kill()
        proc.wait()
        th.join(2)
        serve.send_signal(signal.SIGTERM)
        serve.wait()
        job_err.close()
        offers = Offers(serve_log)
        warmup, last = warmup + (shift or 0), last + (shift or 0)
        r = self.judge(system, job, rate, first_batch, warmup, last, period, outs, done,
                       offers, failures)
        r["startup_batches"] = shift or 0
        r["rss_mb"] = hwm / 1024.0 if hwm else float("nan")
        r["words_per_cpu_s"] = self.words_per_cpu_s(first_batch, warmup, last, cpu, offers)
        first_out = min((w for (w, _, _) in outs.values()), default=None)
        r["startup_s"] = (first_out - t0) / 1000.0 if first_out else float("nan")
        r["started_s"] = (started_at - t0) / 1000.0 if started_at else float("nan")
        r["tag"] = tag
        verdict = "SUSTAINED" if r["ok"] else "NOT sustained: " + "; ".join(r["failures"])
        log(f"  {system:14} {job:9} {rate / 1e6:7.2f} M words/s: delay p50 {r['p50']:.0f} "
            f"p99 {r['p99']:.0f} max {r['max']:.0f} ms over {r['n']} outputs, offered "
            f"{r['offered_rate'] / 1e6:.2f} M/s, {r['words_per_cpu_s'] / 1e6:.1f} M words per "
            f"CPU-second, peak RSS {r['rss_mb']:.0f} MB, start-up "
            f"{r['startup_s']:.1f} s -> {verdict}  [{tag}]", self.logf)
        return r

    def run_repeated(self, system, job, rate):
        """`--repeat` runs at one rate: sustained when most runs are, each
        figure the median of the runs'."""
        runs = [self.run_one(system, job, rate) for _ in range(self.a.repeat)]
        if len(runs) == 1:
            return runs[0]
        oks = sum(1 for r in runs if r["ok"])
        merged = dict(runs[0])

        def median(key):
            xs = sorted(r[key] for r in runs if not math.isnan(r[key]))
            return xs[len(xs) // 2] if xs else float("nan")
        for key in ("p50", "p99", "max", "rss_mb", "words_per_cpu_s", "startup_s",
                    "started_s", "offered_rate"):
            merged[key] = median(key)
        merged["ok"] = oks * 2 > len(runs)
        merged["failures"] = [f for r in runs for f in r["failures"]]
        merged["tag"] = ",".join(r["tag"] for r in runs)
        log(f"  -> {system} {job} {rate / 1e6:.2f} M words/s: {oks} of {len(runs)} runs "
            f"sustained; medians p50 {merged['p50']:.0f} p99 {merged['p99']:.0f} ms, "
            f"{merged['words_per_cpu_s'] / 1e6:.1f} M words per CPU-second", self.logf)
        return merged

    @staticmethod
    def words_per_cpu_s(first, warmup, last, cpu, offers):
        """Words offered per CPU-second of the job over the measured batches."""
        if first is None:
            return float("nan")
        lo = first + warmup * INTERVAL - INTERVAL
        hi = first + (last - 1) * INTERVAL
        after = [s for s in cpu if s[0] >= lo]
        before = [s for s in cpu if s[0] <= hi]
        if not after or not before or before[-1][0] - after[0][0] < INTERVAL:
            return float("nan")
        (w0, c0), (w1, c1) = after[0], before[-1]
        if c1 <= c0:
            return float("nan")
        return (offers.by(w1) - offers.by(w0)) / (c1 - c0)

    def judge(self, system, job, rate, first, warmup, last, period, outs, done, offers,
              failures):
        failures = list(failures)
        res = {"system": system, "job": job, "rate": rate, "failures": failures, "n": 0,
               "p50": float("nan"), "p99": float("nan"), "max": float("nan"),
               "offered_rate": 0.0, "delays": []}
        if first is None:
            res["ok"] = False
            return res
        zero = first - INTERVAL
        lo = first + warmup * INTERVAL
        hi = first + (last - 1) * INTERVAL
        expected = [t for t in range(lo, hi + 1, INTERVAL) if (t - zero) % period == 0]
        measured = [t for t in expected if t in done and t in outs]
        delays = [done[t] - t for t in measured]
        res.update(n=len(measured), delays=delays, p50=percentile(delays, 50),
                   p99=percentile(delays, 99), max=percentile(delays, 100))
        span_s = (hi - lo + INTERVAL) / 1000.0
        offered = offers.by(hi) - offers.by(lo - INTERVAL)
        # A run aborted before its measured span offered nothing in it: no
        # figure, rather than a low one that reads like TCP back-pressure.
        res["offered_rate"] = offered / span_s if measured else float("nan")
        if failures:
            res["ok"] = False
            return res
        if len(measured) < len(expected) or not expected:
            failures.append(f"only {len(measured)} of {len(expected)} measured outputs ran")
        bad = [(t, d) for t, d in zip(measured, delays) if d >= period]
        if bad:
            failures.append(f"batch {bad[0][0]}: total delay {bad[0][1]} ms >= the "
                            f"{period} ms output period")
        half = len(delays) // 2
        if half > 0:
            growth = (sum(delays[-half:]) - sum(delays[:half])) / half
            if growth > GROWTH * period:
                failures.append(f"delay grows by {growth:.0f} ms (first to second half)")
        if measured and not res["offered_rate"] >= OFFER_MIN * rate:
            failures.append(f"the generator could offer only {res['offered_rate'] / 1e6:.2f} "
                            f"M words/s (TCP back-pressure: the receiver fell behind)")
        allowed = BACKLOG_S * rate
        if job in ("wordcount", "state"):
            def through(t):
                if job == "wordcount":
                    return sum(w for (bt, (_, w, _)) in outs.items() if bt <= t)
                return outs[t][1]
            for t in measured:
                backlog = offers.by(t) - through(t)
                if backlog > allowed:
                    failures.append(f"batch {t}: {backlog} offered words not counted yet "
                                    f"(> {BACKLOG_S} s of input)")
                    break
            if measured:
                counted = through(measured[-1]) - through(measured[0] - INTERVAL) \
                    if job in ("wordcount", "regex") or (measured[0] - INTERVAL) in outs else None
                want = offers.by(measured[-1]) - offers.by(measured[0] - INTERVAL)
                if counted is not None and abs(counted - want) > COUNT_TOL * want:
                    failures.append(f"counted {counted} words in the measured batches, "
                                    f"{want} offered")
        else:
            for t in measured:
                if t - WINDOW < zero:
                    continue  # partial window
                want = offers.by(t) - offers.by(t - WINDOW)
                got = outs[t][1]
                if abs(got - want) > COUNT_TOL * max(want, 1):
                    failures.append(f"window at {t}: {got} words, {want} offered in its span")
                    break
        res["ok"] = not failures
        return res

    # ---------------------------------------------------------------- search
    @staticmethod
    def nice(rate):
        step = 100_000 if rate >= 1e6 else 10_000
        return max(step, int(rate // step * step))

    def search(self, system, job):
        rate = self.nice(self.a.start.get(f"{system}-{job}") or self.plan["start"][(system, job)])
        best, failed = None, None
        log(f"== search: {system} {job} (from {rate / 1e6:.2f} M words/s, "
            f"<= {self.plan['steps']} runs)", self.logf)
        for _ in range(self.plan["steps"]):
            r = self.run_repeated(system, job, rate)
            if r["ok"]:
                best = r
            else:
                failed = rate
            lo = best["rate"] if best else 0
            if failed is None:
                nxt = rate * 2
            elif best is None:
                nxt = self.nice(rate / 2)
                if nxt >= rate:
                    break
            else:
                if failed - lo <= 0.1 * lo:
                    break
                nxt = self.nice((lo + failed) / 2)
                if nxt <= lo or nxt >= failed:
                    break
            rate = nxt
        return best, failed

    # ---------------------------------------------------------------- main
    def baseline(self):
        """The machine's one-thread limits now (words/s by name), from
        `ember-bench baseline`: the same program with no engine."""
        out = subprocess.run([self.a.ember_bin, "baseline", "--seconds", "2"],
                             capture_output=True, text=True).stdout
        limits = {}
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 3 and f[0] == "BASELINE":
                limits[f[1]] = float(f[2])
        log("== one-thread limits: " + ", ".join(f"{k} {v / 1e6:.1f} M words/s"
                                                 for k, v in limits.items()), self.logf)
        return limits

    def main(self):
        t_start = time.time()
        results = {}
        limits_before = self.baseline()
        for job in self.a.jobs:
            res = {}
            for system in self.a.systems:
                if job in PYTHON_ONLY_JOBS and system not in PYTHON_SYSTEMS:
                    continue
                best, failed = self.search(system, job)
                res[system] = {"best": best, "failed": failed}
            latency = [s for pair in PAIRS.items() for s in pair if s in res]
            maxes = [res[s]["best"]["rate"] for s in latency if res[s]["best"]]
            if self.a.latency_rate:
                lat_rate = self.a.latency_rate
            elif len(maxes) == 2:
                lat_rate = self.nice(min(maxes) / 2)
            else:
                lat_rate = 100_000
            if latency:
                log(f"== latency: {job} at {lat_rate / 1e6:.2f} M words/s", self.logf)
            for system in latency:
                res[system]["lat"] = self.run_repeated(system, job, lat_rate)
            res["lat_rate"] = lat_rate
            results[job] = res
        elapsed = time.time() - t_start
        limits_after = self.baseline()
        table = self.table(results) + "\n" + self.limits_rows(limits_before, limits_after)
        log("\n" + table, self.logf)
        log(f"(comparison runs took {elapsed / 60:.1f} min)", self.logf)
        with open(os.path.join(self.a.out, "table.md"), "w") as f:
            f.write(table + "\n")
        with open(os.path.join(self.a.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1, default=str)

    @staticmethod
    def limits_rows(before, after):
        """The one-thread limits measured before and after the runs: what a
        core of this machine did while the table was made."""
        rows = ["", "| one thread, no engine (M words/s) | before the runs | after the runs |",
                "|---|---|---|"]
        names = {"fxhash-borrowed": "split + count, words borrowed",
                 "fxhash-owned-string": "split + count, a String per word",
                 "job-program-fxhash": "the jobs' own split and count"}
        for key, name in names.items():
            b, a = before.get(key), after.get(key)
            rows.append(f"| {name} | {'–' if b is None else f'{b / 1e6:.1f}'} | "
                        f"{'–' if a is None else f'{a / 1e6:.1f}'} |")
        return "\n".join(rows)

    def table(self, results):
        python = any(s in PYTHON_SYSTEMS for s in self.a.systems)
        mine, theirs = ("ember-python", "pyspark") if python else ("ember", "spark")
        if python:
            rows = ["| job | figure | ember, Python | PySpark 3.5.5 | ember / PySpark |",
                    "|---|---|---|---|---|"]
        else:
            rows = ["| job | figure | ember | Spark 3.5.5 | ember / Spark |",
                    "|---|---|---|---|---|"]

        def ratio(e, s):
            if e is None or s is None or not s or math.isnan(e) or math.isnan(s):
                return "–"
            return f"{e / s:.2f}"

        def fmt(x, spec):
            return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)

        none = {"best": None, "failed": None,
                "lat": {k: None for k in ("p50", "p99", "rss_mb", "startup_s", "started_s",
                                          "ok")}}
        for job, res in results.items():
            e, s = res.get(mine, none), res.get(theirs, none)
            b = res.get("ember-borrowed")
            two = res.get("ember-python-2p")

            def maxrate(r):
                if r["best"]:
                    return r["best"]["rate"] / 1e6
                return None

            def maxcell(r):
                if r is none:
                    return "–"
                v = maxrate(r)
                bound = f" (< {r['failed'] / 1e6:.2f})" if r["failed"] else " (not bounded)"
                if v is None:
                    lowest = f"{r['failed'] / 1e6:.2f}" if r["failed"] else "?"
                    return f"none ≥ {lowest}"
                return f"{v:.2f}{bound}"
            rows.append(f"| {job} | max sustained rate (M words/s) | {maxcell(e)} | "
                        f"{maxcell(s)} | {ratio(maxrate(e), maxrate(s))} |")
            if two is not None:
                rows.append(f"| {job} | max sustained rate, 2 processes (`--processes 2`) "
                            f"(M words/s) | {maxcell(two)} | {maxcell(s)} | "
                            f"{ratio(maxrate(two), maxrate(s))} |")
            if b is not None:
                rows.append(f"| {job} | max sustained rate, words borrowed (`flat_map_str`) "
                            f"(M words/s) | {maxcell(b)} | {maxcell(s)} | "
                            f"{ratio(maxrate(b), maxrate(s))} |")

            def per_cpu(r):
                v = r["best"]["words_per_cpu_s"] if r["best"] else None
                return None if v is None else v / 1e6
            rows.append(f"| {job} | words per CPU-second at own max rate (M) | "
                        f"{fmt(per_cpu(e), '.1f')} | {fmt(per_cpu(s), '.1f')} | "
                        f"{ratio(per_cpu(e), per_cpu(s))} |")
            if b is not None:
                rows.append(f"| {job} | words per CPU-second at own max rate, words "
                            f"borrowed (M) | {fmt(per_cpu(b), '.1f')} | "
                            f"{fmt(per_cpu(s), '.1f')} | {ratio(per_cpu(b), per_cpu(s))} |")
            if e is none or s is none:
                continue  # the latency runs compare ember with Spark
            lr = res["lat_rate"] / 1e6
            what = "per 10 s window output" if job == "window" else "per batch"
            for key, name in (("p50", "p50"), ("p99", "p99")):
                ev, sv = e["lat"][key], s["lat"][key]
                rows.append(f"| {job} | total delay {name} at {lr:.2f} M words/s, {what} (ms) | "
                            f"{fmt(ev, '.0f')}{'' if e['lat']['ok'] else ' (not sustained)'} | "
                            f"{fmt(sv, '.0f')}{'' if s['lat']['ok'] else ' (not sustained)'} | "
                            f"{ratio(ev, sv)} |")
            ev, sv = e["lat"]["rss_mb"], s["lat"]["rss_mb"]
            rows.append(f"| {job} | peak RSS at {lr:.2f} M words/s (MB) | {fmt(ev, '.0f')} | "
                        f"{fmt(sv, '.0f')} | {ratio(ev, sv)} |")
            eb = e["best"]["rss_mb"] if e["best"] else None
            sb = s["best"]["rss_mb"] if s["best"] else None
            rows.append(f"| {job} | peak RSS at own max rate (MB) | {fmt(eb, '.0f')} | "
                        f"{fmt(sb, '.0f')} | – |")
            ev, sv = e["lat"]["startup_s"], s["lat"]["startup_s"]
            rows.append(f"| {job} | start-up to first completed output (s) | {fmt(ev, '.2f')} | "
                        f"{fmt(sv, '.2f')} | {ratio(ev, sv)} |")
            ev, sv = e["lat"]["started_s"], s["lat"]["started_s"]
            rows.append(f"| {job} | of which launch to context started (s) | {fmt(ev, '.2f')} | "
                        f"{fmt(sv, '.2f')} | {ratio(ev, sv)} |")
        return "\n".join(rows)


def main():
    global INTERVAL
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mode", choices=PLANS, default="full")
    ap.add_argument("--ember-bin", required=True)
    ap.add_argument("--spark-cp", required=True)
    ap.add_argument("--java-opts", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ember-python", default=sys.executable,
                    help="a Python with ember installed (for ember-python)")
    ap.add_argument("--pyspark-python", default=sys.executable,
                    help="a Python with pyspark installed (for pyspark)")
    ap.add_argument("--interval-ms", type=int, default=INTERVAL,
                    help="batch interval of every job (a divisor of 10 s; default 1000)")
    ap.add_argument("--jobs", default=None,
                    help="of " + ", ".join(JOBS) + " (default: all the systems run)")
    ap.add_argument("--systems", default=",".join(SYSTEMS),
                    help="which to run, of " + ", ".join(SYSTEMS))
    ap.add_argument("--repeat", type=int, default=None,
                    help="runs per rate; a rate is sustained when most are, figures are "
                    "medians (default: 1 in quick mode, 3 in full mode)")
    ap.add_argument("--latency-rate", type=float, default=None,
                    help="words/s of the latency runs (default: half the lower max)")
    ap.add_argument("--start", action="append", default=[],
                    help="first rate of a search, e.g. spark-window=2e6 (repeatable)")
    a = ap.parse_args()
    if a.interval_ms <= 0 or SLIDE % a.interval_ms:
        ap.error("--interval-ms must divide the window's 10 s slide")
    INTERVAL = a.interval_ms
    if a.repeat is None:
        a.repeat = 1 if a.mode == "quick" else 3
    if a.repeat < 1:
        ap.error("--repeat must be at least 1")
    a.systems = [s for s in a.systems.split(",") if s]
    python = any(s in PYTHON_SYSTEMS for s in a.systems)
    default_jobs = [j for j in JOBS if python or j not in PYTHON_ONLY_JOBS]
    a.jobs = [j for j in (a.jobs.split(",") if a.jobs else default_jobs) if j]
    for s in a.systems:
        if s not in SYSTEMS:
            ap.error(f"unknown system {s}")
    if any(s in PYTHON_SYSTEMS for s in a.systems) and not all(s in PYTHON_SYSTEMS for s in a.systems):
        ap.error("run the Python systems (ember-python, pyspark) apart from the others")
    for j in a.jobs:
        if j not in JOBS:
            ap.error(f"unknown job {j}")
    a.start = {k: float(v) for k, v in (s.split("=", 1) for s in a.start)}
    Harness(a).main()


if __name__ == "__main__":
    main()
