#!/usr/bin/env python3
"""CPU a streaming program uses at a fixed offered rate.

Starts `ember-bench serve --rate R`, then the command given after `--`
with `{port}` replaced by the server's port, lets it run for a warm-up
and a measured span, and prints the words offered per second over the
span (below R when the program fell behind and TCP pushed back), the CPU
seconds per second the program used (all threads) and the words per
CPU-second. Run it twice, on a job with and without its extra outputs, to
see what the outputs cost. Standard library only.

    python3 bench/latency-soak/cpu_at_rate.py --rate 6000000 -- \
        target/release/examples/network_word_count 127.0.0.1 {port}
"""

import argparse
import os
import subprocess
import sys
import time

from soak import start_serve


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def offered(serve_log):
    """Words offered so far (all clients), from the server's OFFER lines."""
    last = {}
    with open(serve_log) as f:
        for line in f:
            p = line.split()
            if len(p) == 4 and p[0] == "OFFER":
                last[p[1]] = int(p[3])
    return sum(last.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ember-bin", default="target/release/ember-bench")
    ap.add_argument("--rate", type=float, required=True, help="words/s offered")
    ap.add_argument("--warmup-s", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=30.0, help="measured span")
    ap.add_argument("--log", default="target/latency-soak/cpu_at_rate.serve")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        sys.exit("give the program to run after --, with {port} for the server's port")
    os.makedirs(os.path.dirname(a.log), exist_ok=True)
    serve, port = start_serve(a.ember_bin, a.rate, a.log)
    prog = subprocess.Popen([c.replace("{port}", str(port)) for c in cmd],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(a.warmup_s)
        if prog.poll() is not None:
            sys.exit(f"the program exited during the warm-up (status {prog.returncode})")
        c0, w0, t0 = cpu_s(prog.pid), offered(a.log), time.time()
        time.sleep(a.seconds)
        c1, w1, t1 = cpu_s(prog.pid), offered(a.log), time.time()
    finally:
        prog.kill()
        prog.wait()
        serve.kill()
        serve.wait()
    span = t1 - t0
    rate = (w1 - w0) / span
    cpu = (c1 - c0) / span
    print(f"offered {rate / 1e6:.2f} M words/s of {a.rate / 1e6:.2f} M asked; "
          f"CPU {cpu:.2f} s/s; {rate / cpu / 1e6:.2f} M words per CPU-second")


if __name__ == "__main__":
    main()
