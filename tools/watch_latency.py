#!/usr/bin/env python3
"""Measures how long `palisade watch` takes from a line being appended to a followed
file to its alert on stdout.

usage: watch_latency.py [--samples N] [--binary target/release/palisade]

Starts palisade on a temporary folder (loopback only, metrics off), appends one SQL
injection line at a time from a fresh documentation-range IP, and times the arrival of
the matching `fired` detection. Prints the median and p99 in milliseconds.
"""
import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--binary", default="target/release/palisade")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="palisade-latency-")
    log = os.path.join(tmp, "access.log")
    open(log, "w").close()
    cfg = os.path.join(tmp, "palisade.toml")
    with open(cfg, "w") as f:
        f.write('[[sources]]\nname = "nginx"\npath = "access.log"\n'
                'parser = { format = "nginx", log_format = "combined" }\n'
                '[store]\npath = "palisade.db"\n[metrics]\nenabled = false\n')
    proc = subprocess.Popen([args.binary, "-c", cfg, "watch", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    arrivals = queue.Queue()

    def reader():
        for line in proc.stdout:
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if d.get("state") == "fired":
                arrivals.put((time.monotonic(), d.get("key", {}).get("source.ip")))

    threading.Thread(target=reader, daemon=True).start()
    time.sleep(1.0)
    latencies = []
    try:
        for i in range(args.samples):
            ip = f"198.51.{100 + i // 250}.{1 + i % 250}" if i < 250 else f"203.0.113.{i % 250 + 1}"
            ts = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
            line = (f'{ip} - - [{ts}] "GET /item?id=1%20UNION%20SELECT%20pass%20FROM%20users-- '
                    f'HTTP/1.1" 200 120 "-" "curl/8.5.0"\n')
            t0 = time.monotonic()
            with open(log, "a") as f:
                f.write(line)
            deadline = t0 + 5.0
            while True:
                try:
                    t1, key = arrivals.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    print(f"no alert for {ip} within 5 s", file=sys.stderr)
                    latencies.append(5.0)
                    break
                if key == ip:
                    latencies.append(t1 - t0)
                    break
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    print(f"watch alert latency over {len(ms)} lines: median {statistics.median(ms):.0f} ms, "
          f"p99 {p99:.0f} ms, max {ms[-1]:.0f} ms")


if __name__ == "__main__":
    main()
