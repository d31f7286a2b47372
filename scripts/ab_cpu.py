#!/usr/bin/env python3
"""A/B of server builds (or a build against nats-server) at saturation:
delivered msgs/s and the server's CPU time per message handled, each round
on freshly started servers, alternating, medians of the rounds. What the
outbound changes of issue 13 were decided by (docs/perf-log/2026-12-06-direct-writes.md).

    scripts/ab_cpu.py --server base=/tmp/natrium-before --server new=target/release/natrium \
        [--only 1to1-16,1to4-128] [--rounds 3] [--secs 2]
Servers on CPU 0, natrium-bench on CPU 1. Environment variables in a NAME=
value are not supported: wrap a variant in a small shell script instead.
"""
import argparse

from benchcommon import Server, bench, md_table, median, ns_per_msg

WORKLOADS = {
    "1to1-16": ["pubsub", "--size", "16", "-p", "1", "-c", "1"],
    "1to1-128": ["pubsub", "--size", "128", "-p", "1", "-c", "1"],
    "1to4-128": ["fanout", "--size", "128", "-c", "4"],
    "4x4-128": ["pubsub", "--size", "128", "-p", "4", "-c", "4"],
    "1to100-128": ["fanout", "--size", "128", "-c", "100"],
}


def one(binary, args, secs):
    srv = Server("server", binary)
    try:
        before = srv.sample()
        r = bench(args + ["-s", srv.url, "-d", f"{secs}s"])
        return r["subscribers"]["msgs_per_s"], ns_per_msg(before, srv.sample())
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", action="append", required=True, help="NAME=BINARY (two or more)")
    ap.add_argument("--only", default=",".join(WORKLOADS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=2.0)
    a = ap.parse_args()
    servers = [s.split("=", 1) for s in a.server]
    rows = []
    for key in a.only.split(","):
        res = {name: [] for name, _ in servers}
        for _ in range(a.rounds):
            for name, binary in servers:
                res[name].append(one(binary, WORKLOADS[key], a.secs))
        row = [key]
        for name, _ in servers:
            rates = [r for r, _ in res[name]]
            cpus = [c for _, c in res[name]]
            row.append(f"{median(rates) / 1e6:.2f} M/s, {median(cpus):.0f} ns "
                       f"({', '.join(f'{c:.0f}' for c in cpus)})")
        rows.append(row)
        print(md_table(["workload"] + [f"{n}: delivered, CPU/msg (rounds)" for n, _ in servers], rows[-1:]),
              flush=True)
    print()
    print(md_table(["workload"] + [f"{n}: delivered, CPU/msg (rounds)" for n, _ in servers], rows))


if __name__ == "__main__":
    main()
