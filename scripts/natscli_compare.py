#!/usr/bin/env python3
"""Cross-check with the official `nats` CLI (natscli v0.5.0, `nats bench pub`
and `nats bench sub`): pub-only 16 B, 1→1 16 B, 1→1 128 B and 1→4 128 B,
natrium vs nats-server alternating, medians of the rounds, ratio natrium /
nats-server, spread of the per-round ratios and each server's CPU time per
message (utime+stime over in_msgs + out_msgs). Servers on CPU 0, every `nats`
process on CPU 1. The subscribers (`nats bench sub --clients C`) start first;
the publisher starts once the server's /varz counts their subscriptions.
Delivered msgs/s = all subscribers' messages over the slowest one's duration
(from its CSV); published msgs/s from the publisher's CSV.

    scripts/natscli_compare.py [--rounds 3] [--scale 1.0] [--only pub16,1to4-128]
        [--nats target/peers/bin/nats] [--natrium target/release/natrium] [--nats-server PATH]
About 1 minute with the defaults. perf_table.py imports run().
"""
import argparse, csv, os, subprocess, sys, tempfile

from benchcommon import (LOAD_CPU, log, md_table, median, ns_per_msg, peer, ratio, release_bin, spread,
                         servers_running)

# key, label, size, subscribers, messages
WORKLOADS = [
    ("pub16", "pub-only 16 B", 16, 0, 4_000_000),
    ("1to1-16", "1→1 16 B", 16, 1, 2_000_000),
    ("1to1-128", "1→1 128 B", 128, 1, 2_000_000),
    ("1to4-128", "1→4 128 B", 128, 4, 600_000),
]


def read_csv(path):
    with open(path) as f:
        return [r for r in csv.reader(f) if r and not r[0].startswith("#")]


def nats_cmd(nats, what, srv, subject, msgs, size, clients, out_csv):
    return ["taskset", "-c", LOAD_CPU, nats, "--no-context", "-s", srv.url, "bench", what, subject,
            "--msgs", str(msgs), "--size", str(size), "--clients", str(clients), "--no-progress",
            "--csv", out_csv]


def one(nats, srv, size, subs, msgs, tmp, timeout=300):
    """One run: (published msgs/s, delivered msgs/s or None, server CPU ns/msg)."""
    subject = f"natscli.{size}.{subs}"
    pub_csv, sub_csv = os.path.join(tmp, "pub.csv"), os.path.join(tmp, "sub.csv")
    for p in (pub_csv, sub_csv):
        if os.path.exists(p):
            os.remove(p)
    before = srv.sample()
    sub = None
    if subs:
        base = srv.varz()["subscriptions"]
        cmd = nats_cmd(nats, "sub", srv, subject, msgs, size, subs, sub_csv)
        log("+", " ".join(cmd))
        sub = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        srv.wait_subscriptions(base + subs)
    cmd = nats_cmd(nats, "pub", srv, subject, msgs, size, 1, pub_csv)
    log("+", " ".join(cmd))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode:
        sys.exit(f"nats bench pub failed: {out.stderr.strip()}")
    delivered = None
    if sub:
        try:
            _, err = sub.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            sub.kill()
            sys.exit(f"nats bench sub against {srv.name} did not get all {msgs} messages")
        if sub.returncode:
            sys.exit(f"nats bench sub failed: {err.strip()}")
        rows = read_csv(sub_csv)
        delivered = sum(int(r[2]) for r in rows) / max(float(r[6]) for r in rows)
    published = float(read_csv(pub_csv)[0][4])
    return published, delivered, ns_per_msg(before, srv.sample())


def run(servers, rounds=3, scale=1.0, only=None, nats=None):
    """servers = [natrium, nats-server]. Returns one dict per workload: label,
    metric, rate ([natrium, nats-server] medians), ratio, per_round, ns."""
    nats = nats or peer("nats")
    if not nats:
        sys.exit("no nats CLI: install it in target/peers/bin (README)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for key, label, size, subs, msgs in WORKLOADS:
            if only and key not in only:
                continue
            n = max(1000, int(msgs * scale))
            res = {s.name: [] for s in servers}
            for _ in range(rounds):
                for s in servers:
                    res[s.name].append(one(nats, s, size, subs, n, tmp))
            a, b = (res[s.name] for s in servers)
            k = 1 if subs else 0  # delivered when there are subscribers
            rate = [median([x[k] for x in r]) for r in (a, b)]
            rows.append({"key": key, "label": label, "metric": "sub msgs/s" if subs else "pub msgs/s",
                         "rate": rate, "ratio": ratio(*rate),
                         "per_round": [ratio(x[k], y[k]) for x, y in zip(a, b)],
                         "ns": [median([x[2] for x in r]) for r in (a, b)]})
    return rows


def table(rows):
    return md_table(["workload", "metric", "natrium", "nats-server", "natrium / nats-server", "per-round ratios",
                     "CPU ns/msg natrium / nats-server"],
                    [[r["label"], r["metric"], f"{r['rate'][0]:,.0f}", f"{r['rate'][1]:,.0f}",
                      f"**{r['ratio']:.2f}×**", spread(r["per_round"]), f"{r['ns'][0]:,.0f} / {r['ns'][1]:,.0f}"]
                     for r in rows])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--natrium", default=release_bin("natrium"))
    ap.add_argument("--nats-server", default=peer("nats-server"))
    ap.add_argument("--nats", default=peer("nats"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply message counts")
    ap.add_argument("--only", help="comma-separated keys: " + ",".join(w[0] for w in WORKLOADS))
    a = ap.parse_args()
    with servers_running(a.natrium, a.nats_server) as servers:
        rows = run(servers, a.rounds, a.scale, a.only and a.only.split(","), a.nats)
    print(table(rows))


if __name__ == "__main__":
    main()
