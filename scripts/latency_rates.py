#!/usr/bin/env python3
"""Latency at fixed rates (issue 13): one-way (natrium-bench `latency`, 1
publisher → 1 subscriber, 16 B) and request/reply (`reqrep`, 16 B, one
responder, one requester per 2,000 requests/s so each stays closed-loop below
its round trip) at 1k/s, 10k/s and 50k/s, natrium vs nats-server alternating
(natrium-bench `--compare`, medians of the rounds). Percentiles are corrected
for coordinated omission (from each message's intended send time). Servers on
CPU 0, natrium-bench on CPU 1.

Prints a markdown table (p50, p99.9, ratio, spread of the per-round ratios,
server CPU ns/msg), writes every corrected distribution as .hgrm (rounds
merged) into --hgrm-dir, and ONE percentile plot (SVG, natrium-bench `plot`)
with both servers' curves at each rate: solid natrium, dashed nats-server, one
colour per workload and rate.

    scripts/latency_rates.py [--rates 1000,10000,50000] [--secs 10] [--rounds 3]
        [--hgrm-dir target/perf/hgrm] [--plot docs/latency-2.15.3.svg]
        [--natrium target/release/natrium] [--nats-server PATH]
Takes about 2 kinds × rates × rounds × 2 × secs (3 rates, 3 rounds, 10 s: 6
minutes). perf_table.py imports run() and plot().
"""
import argparse, math, os, re, subprocess, sys

from benchcommon import (ROOT, bench, log, md_table, median, ns_per_msg, peer, pct, ratio, release_bin,
                         spread, servers_running, version)

KINDS = [("one-way", "latency"), ("req/reply", "reqrep")]
PERCENTILES = [50.0, 99.9]


def senders(kind, rate):
    return 1 if kind == "latency" else max(1, math.ceil(rate / 2000))


def rate_label(rate):
    return f"{rate // 1000}k/s" if rate >= 1000 and rate % 1000 == 0 else f"{rate}/s"


def run(servers, rates=(1000, 10000, 50000), secs=10.0, rounds=3, hgrm_dir=None):
    """servers = [natrium, nats-server]. Returns one dict per (kind, rate):
    label, kind, rate, p (percentile -> [natrium µs, nats-server µs]),
    per_round (percentile -> ratios), ns (CPU ns/msg), lost, hgrm ([A, B])."""
    hgrm_dir = hgrm_dir or os.path.join(ROOT, "target", "perf", "hgrm")
    os.makedirs(hgrm_dir, exist_ok=True)
    A, B = (s.url for s in servers)
    rows = []
    for rate in rates:
        for label, kind in KINDS:
            n = senders(kind, rate)
            base = os.path.join(hgrm_dir, f"{kind}-{rate}")
            before = [s.sample() for s in servers]
            c = bench([kind, "--size", "16", "-p", str(n), "-c", "1", "--rate", str(rate),
                       "-d", f"{secs}s", "--compare", A, B, "--rounds", str(rounds),
                       "--hist", base + ".hgrm"], ok=(0, 2), timeout=60 + 4 * rounds * secs)
            ns = [ns_per_msg(b, s.sample()) for b, s in zip(before, servers)]
            files = [f"{base}-natrium.hgrm", f"{base}-nats-server.hgrm"]
            os.replace(base + ".hgrm", files[0])
            os.replace(base + ".b.hgrm", files[1])
            med = {r["metric"]: (r["a"], r["b"]) for r in c["rows"]}
            runs = c["runs"]
            per = {p: [ratio(pct(runs[i]["latency"]["corrected"], p), pct(runs[i + 1]["latency"]["corrected"], p))
                       for i in range(0, len(runs) - 1, 2)] for p in PERCENTILES}
            rows.append({"label": f"{label} {rate_label(rate)}", "kind": label, "rate": rate,
                         "senders": n, "p": {p: med[f"p{p:g} µs"] for p in PERCENTILES},
                         "per_round": per, "ns": ns, "lost": c["lost"], "hgrm": files,
                         "achieved": min(r["latency"]["achieved_rate"] for r in runs) / rate})
    return rows


def plot(rows, out, nats_version="nats-server"):
    """ONE SVG: natrium solid, nats-server dashed, a colour per row."""
    cmd = [release_bin("natrium-bench"), "plot", "--plot", out, "--title",
           f"latency by percentile, corrected for CO: natrium (solid) vs {nats_version} (dashed)"]
    for r in rows:
        cmd += ["--series", f"natrium {r['label']}={r['hgrm'][0]}"]
    for r in rows:
        cmd += ["--dashed-series", f"nats-server {r['label']}={r['hgrm'][1]}"]
    log("+", " ".join(cmd))
    subprocess.run(cmd, check=True)


def table(rows):
    out = []
    for r in rows:
        p50, p999 = r["p"][50.0], r["p"][99.9]
        out.append([r["label"] + (f" ({r['senders']} requesters)" if r["senders"] > 1 else ""),
                    f"{p50[0]:,.1f} / {p50[1]:,.1f}", f"**{ratio(*p50):.2f}×**", spread(r["per_round"][50.0]),
                    f"{p999[0]:,.1f} / {p999[1]:,.1f}", f"**{ratio(*p999):.2f}×**",
                    spread(r["per_round"][99.9]), f"{r['ns'][0]:,.0f} / {r['ns'][1]:,.0f}",
                    r["lost"], f"{100 * r['achieved']:.0f}%"])
    return md_table(["workload", "p50 µs natrium / nats-server", "p50 ratio", "per-round",
                     "p99.9 µs natrium / nats-server", "p99.9 ratio", "per-round",
                     "CPU ns/msg natrium / nats-server", "lost", "lowest achieved"], out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--natrium", default=release_bin("natrium"))
    ap.add_argument("--nats-server", default=peer("nats-server"))
    ap.add_argument("--rates", default="1000,10000,50000")
    ap.add_argument("--secs", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hgrm-dir", default=os.path.join(ROOT, "target", "perf", "hgrm"))
    ap.add_argument("--plot", default=None, help="default docs/latency-<nats-server version>.svg")
    a = ap.parse_args()
    if not a.nats_server:
        sys.exit("no nats-server: pass --nats-server or install it in target/peers/bin")
    ver = re.sub(r"^nats-server:\s*v?", "", version(a.nats_server))
    with servers_running(a.natrium, a.nats_server) as servers:
        rows = run(servers, [int(x) for x in a.rates.split(",")], a.secs, a.rounds, a.hgrm_dir)
    out = a.plot or os.path.join(ROOT, "docs", f"latency-{ver}.svg")
    plot(rows, out, f"nats-server {ver}")
    print(table(rows))
    print(f"\n.hgrm files in {a.hgrm_dir}; plot: {out}")


if __name__ == "__main__":
    main()
