#!/usr/bin/env python3
"""Equal offered load: one-way 1->1 latency workload (natrium-bench `latency`,
paced, CO-corrected) at fixed rates against each server in turn, reporting
p50 / p99.9 and the server's CPU per message handled (utime+stime over
messages in + out). A faster server is not charged for smaller batches: both
see exactly the same offered rate.
    scripts/equal_load.py --server natrium=target/release/natrium \
        --server nats-server=/work/peers/bin/nats-server --rates 1000,10000,50000
"""
import argparse, json, subprocess, time

from benchcommon import cpu_seconds, free_port, wait_port

import os
BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "natrium-bench")


def one(binary, rate, secs, size):
    port = free_port()
    proc = subprocess.Popen(["taskset", "-c", "0", binary, "-a", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        time.sleep(0.3)
        cpu0 = cpu_seconds(proc.pid)
        out = subprocess.run(["taskset", "-c", "1", BENCH, "latency", "-s", f"nats://127.0.0.1:{port}",
                              "--rate", str(rate), "-d", f"{secs}s", "--size", str(size), "--json",
                              "--progress", "never"], capture_output=True, text=True, check=True).stdout
        cpu = cpu_seconds(proc.pid) - cpu0
        d = json.loads(out)
        p = dict((k, v) for k, v in d["latency"]["corrected"]["percentiles_us"])
        msgs = d["expected"] + d["received"]
        return p[50.0], p[99.9], cpu * 1e9 / max(1, msgs), d["lost"]
    finally:
        proc.terminate()
        proc.wait()


def median(v):
    v = sorted(v)
    return v[len(v) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", action="append", required=True, help="NAME=BINARY")
    ap.add_argument("--rates", default="1000,10000,50000")
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    servers = [s.split("=", 1) for s in a.server]
    print("| rate/s | server | p50 µs | p99.9 µs | server CPU ns/msg | lost |")
    print("|---|---|---|---|---|---|")
    for rate in [int(r) for r in a.rates.split(",")]:
        res = {name: [] for name, _ in servers}
        for _ in range(a.rounds):
            for name, binary in servers:
                res[name].append(one(binary, rate, a.secs, a.size))
        for name, _ in servers:
            r = res[name]
            print(f"| {rate:,} | {name} | {median([x[0] for x in r]):.1f} | {median([x[1] for x in r]):.1f} | "
                  f"{median([x[2] for x in r]):.0f} | {sum(x[3] for x in r)} |")
        base = res[servers[-1][0]]
        for name, _ in servers[:-1]:
            r = res[name]
            print(f"| {rate:,} | ratio {name}/{servers[-1][0]} | {median([x[0] for x in r]) / median([x[0] for x in base]):.2f}× | "
                  f"{median([x[1] for x in r]) / median([x[1] for x in base]):.2f}× | "
                  f"{median([x[2] for x in r]) / median([x[2] for x in base]):.2f}× | |")


if __name__ == "__main__":
    main()
