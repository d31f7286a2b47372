#!/usr/bin/env python3
"""Efficiency at equal offered load (issue 13): the server's CPU time per
message (utime+stime from /proc over in_msgs + out_msgs from /varz) at the SAME
paced offered rate for natrium and nats-server, on every standard workload.

natrium-bench paces the publishers (`--rate`, msgs/s over all publishers;
requests/s for reqrep), so a faster server is not charged for getting smaller
batches: both see exactly the same offered load. The rate is about half of
nats-server's saturation rate for the workload: measured first (`--rates auto`,
the default: one unpaced natrium-bench run against nats-server per workload,
halved and rounded to two significant digits), or the table below
(`--rates table`), and any workload's rate can be set (`--rate 1to1-16=400000`).
Rounds alternate natrium / nats-server; servers on CPU 0, natrium-bench on
CPU 1. Prints a markdown table: workload, rate, both servers' median ns/msg,
ratio of the medians, spread of the per-round ratios, messages lost
(natrium / nats-server) and the lowest achieved share of the offered rate.

    scripts/equal_load.py [--rounds 3] [--secs 3] [--only 1to1-16,reqrep]
        [--rates auto|table] [--rate KEY=MSGS_PER_S ...]
        [--natrium target/release/natrium] [--nats-server PATH]
Takes about rounds × 2 × secs per workload plus 1–2 s each for `auto`
(7 workloads, 3 rounds, 3 s: about 2.5 minutes). perf_table.py imports run().
"""
import argparse, sys

from benchcommon import (bench, log, md_table, median, ns_per_msg, peer, ratio, release_bin, spread,
                         servers_running)

# key, label, natrium-bench args, default rate (about half of nats-server
# 2.15.3's saturation in docs/perf-log/2026-12-06-natrium-bench.md)
WORKLOADS = [
    ("pub16", "pub-only 16 B", ["pub", "--size", "16"], 1_300_000),
    ("1to1-16", "1→1 16 B", ["pubsub", "--size", "16", "-p", "1", "-c", "1"], 540_000),
    ("1to1-128", "1→1 128 B", ["pubsub", "--size", "128", "-p", "1", "-c", "1"], 630_000),
    ("1to1-16k", "1→1 16 KiB", ["pubsub", "--size", "16384", "-p", "1", "-c", "1"], 37_000),
    ("1to4-128", "1→4 128 B", ["fanout", "--size", "128", "-c", "4"], 180_000),
    ("4x4-128", "4×4 128 B", ["pubsub", "--size", "128", "-p", "4", "-c", "4"], 170_000),
    ("reqrep", "request/reply 16 B", ["reqrep", "--size", "16", "-p", "1", "-c", "1"], 5_000),
]


def sig2(x):
    """Rounded to two significant digits."""
    if x <= 0:
        return 0
    return int(float(f"{x:.2g}"))


def sent_rate(r):
    return r["publishers"]["msgs_per_s"] if r.get("publishers") else 0.0


def saturation_rate(srv, args, secs):
    """One unpaced run against `srv`: msgs/s published (requests/s for reqrep)."""
    if args[0] == "reqrep":
        # Closed loop, one request outstanding: a count, not a duration (the
        # schedule at an unreachable rate would run far past -d).
        run = ["--rate", "10000000", "-n", str(int(20_000 * secs))]
    else:
        run = ["-d", f"{secs}s"]
    return sent_rate(bench(args + run + ["-s", srv.url], ok=(0, 2)))


def paced(srv, args, rate, secs):
    """One paced run: (server CPU ns/msg, lost + duplicated, achieved / offered)."""
    before = srv.sample()
    r = bench(args + ["-s", srv.url, "--rate", str(rate), "-d", f"{secs}s"], ok=(0, 2))
    return ns_per_msg(before, srv.sample()), r["lost"] + r["duplicated"], sent_rate(r) / rate


def run(servers, rounds=3, secs=3.0, only=None, rates="auto", overrides=None, sat_secs=1.0):
    """servers = [natrium, nats-server] (benchcommon.Server). Returns one dict
    per workload: key, label, rate, ns (medians per server), ratio, per_round,
    lost (per server), achieved (lowest share of the offered rate)."""
    overrides = overrides or {}
    rows = []
    for key, label, args, default in WORKLOADS:
        if only and key not in only:
            continue
        if key in overrides:
            rate, how = overrides[key], "set"
        elif rates == "auto":
            rate, how = sig2(saturation_rate(servers[1], args, sat_secs) / 2), "auto"
        else:
            rate, how = default, "table"
        log(f"equal load: {label} at {rate:,}/s ({how})")
        res = {s.name: [] for s in servers}
        for _ in range(rounds):
            for s in servers:
                res[s.name].append(paced(s, args, rate, secs))
        a, b = (res[s.name] for s in servers)
        ns = [median([x[0] for x in r]) for r in (a, b)]
        rows.append({"key": key, "label": label, "rate": rate, "how": how, "ns": ns,
                     "ratio": ratio(*ns), "per_round": [ratio(x[0], y[0]) for x, y in zip(a, b)],
                     "lost": [sum(x[1] for x in r) for r in (a, b)],
                     "achieved": min(x[2] for x in a + b)})
    return rows


def table(rows):
    return md_table(
        ["workload", "offered msgs/s", "natrium ns/msg", "nats-server ns/msg", "natrium / nats-server",
         "per-round ratios", "lost (natrium / nats-server)", "lowest achieved"],
        [[r["label"], f"{r['rate']:,} ({r['how']})", f"{r['ns'][0]:,.0f}", f"{r['ns'][1]:,.0f}",
          f"**{r['ratio']:.2f}×**", spread(r["per_round"]), f"{r['lost'][0]} / {r['lost'][1]}",
          f"{100 * r['achieved']:.0f}%"] for r in rows])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--natrium", default=release_bin("natrium"))
    ap.add_argument("--nats-server", default=peer("nats-server"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=3.0)
    ap.add_argument("--only", help="comma-separated keys: " + ",".join(w[0] for w in WORKLOADS))
    ap.add_argument("--rates", choices=["auto", "table"], default="auto")
    ap.add_argument("--rate", action="append", default=[], metavar="KEY=MSGS_PER_S")
    a = ap.parse_args()
    if not a.nats_server:
        sys.exit("no nats-server: pass --nats-server or install it in target/peers/bin")
    overrides = {k: int(float(v)) for k, v in (x.split("=", 1) for x in a.rate)}
    with servers_running(a.natrium, a.nats_server) as servers:
        rows = run(servers, a.rounds, a.secs, a.only and a.only.split(","), a.rates, overrides)
    print(table(rows))


if __name__ == "__main__":
    main()
