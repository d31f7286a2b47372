#!/usr/bin/env python3
"""Reproduces the top table of docs/PERFORMANCE.md (issue 13): natrium vs
nats-server, every ratio from the same run, medians of alternating rounds,
servers pinned to CPU 0 and all load to CPU 1 (taskset). Parts (each
selectable with --only, comma separated):

  sat      saturation throughput: compare.py's natrium-bench workloads
           (`--compare`, alternating) plus 1→100 and 1→1,000 fan-out over
           several natrium-bench processes (compare.wide_fanout)
  natscli  cross-check with the official `nats bench` (natscli_compare.py)
  equal    server CPU per message at equal offered load (equal_load.py)
  latency  one-way and request/reply p50 / p99.9 at 1k, 10k, 50k/s, .hgrm
           files and one SVG plot (latency_rates.py)
  mem      bytes per subscription and per idle connection (mem_subs.py,
           mem_churn.py)

Prints the top table (markdown) and writes one dated log per run with every
part's detailed table: docs/perf-log/DATE-HHMM-perf-table.md (plot
docs/latency-<version>.svg, .hgrm files in docs/perf-log/DATE-HHMM-hgrm/).
With --quick (development: 1 round, ~1 s runs, small memory counts) the log,
plot and .hgrm files go to target/perf/ instead unless --log-dir is given.

    cargo build --release
    scripts/perf_table.py                      # full: about 15 minutes on 2 cores
    scripts/perf_table.py --quick              # about 2 minutes
    scripts/perf_table.py --only sat,equal --rounds 5
Options: --natrium, --nats-server, --nats (default target/release/natrium,
target/peers/bin/{nats-server,nats} else PATH), --rounds, --log-dir, --no-log.
"""
import argparse, os, re, sys, time

import compare, equal_load, latency_rates, mem_churn, mem_subs, natscli_compare
from benchcommon import (ROOT, SERVER_CPU, git_rev, log, machine, md_table, peer, ratio, release_bin,
                         spread, servers_running, version)

PARTS = ["sat", "natscli", "equal", "latency", "mem"]
# Rows of the top table, in order (labels as the parts name them).
ORDER = ["pub-only 16 B", "1→1 16 B", "1→1 128 B", "1→1 16 KiB", "1→4 128 B", "4×4 128 B",
         "1→100 128 B", "1→1,000 128 B", "pub into 100k wildcard subs", "request/reply 16 B"]
FULL = dict(rounds=3, sat_secs=2.0, fan_secs=2.0, natscli_scale=1.0, equal_secs=3.0, sat_probe=1.0,
            lat_secs=10.0, mem_subs=1_000_000, mem_conns=10_000, mem_settle=6.0)
QUICK = dict(rounds=1, sat_secs=1.0, fan_secs=0.5, natscli_scale=0.2, equal_secs=1.0, sat_probe=0.5,
             lat_secs=1.0, mem_subs=100_000, mem_conns=1_000, mem_settle=2.0)


def cell(r, rounds):
    """"1.23× (1.1–1.4×)": a ratio and its per-round spread."""
    if r != r:
        return ""
    s = spread(rounds)
    return f"{r:.2f}×" + (f" ({s})" if s and len(rounds) > 1 else "")


def top_table(res):
    rows = {k: {} for k in ORDER}
    for name, c, keys, cpu, rounds in res.get("sat", []):
        m = compare.key_metric(keys)
        r = next(x for x in c["rows"] if x["metric"] == m)
        rows[name]["sat"] = cell(r["ratio"], rounds)
        rows[name]["satcpu"] = f"{ratio(*cpu):.2f}×"
    for name, rate, cpu, lost, rounds, _ in res.get("fan", []):
        rows[name]["sat"] = cell(ratio(*rate), rounds)
        rows[name]["satcpu"] = f"{ratio(*cpu):.2f}×"
    for r in res.get("natscli", []):
        rows[r["label"]]["natscli"] = cell(r["ratio"], r["per_round"])
    for r in res.get("equal", []):
        rows[r["label"]]["equal"] = cell(r["ratio"], r["per_round"]) + f" at {r['rate']:,}/s"
    out = []
    for k in ORDER:
        d = rows[k]
        if d:
            out.append([k, d.get("sat", ""), d.get("natscli", ""), d.get("satcpu", ""), d.get("equal", "")])
    lines = [md_table(["workload", "throughput, natrium-bench", "throughput, nats bench",
                       "server CPU/msg at saturation", "server CPU/msg at equal offered load"], out)] if out else []
    if res.get("latency"):
        lines.append("")
        lines.append(md_table(["latency (corrected)", "p50 natrium / nats-server", "p99.9 natrium / nats-server"],
                              [[r["label"], f"{cell(ratio(*r['p'][50.0]), r['per_round'][50.0])} "
                                f"({r['p'][50.0][0]:,.0f} / {r['p'][50.0][1]:,.0f} µs)",
                                f"{cell(ratio(*r['p'][99.9]), r['per_round'][99.9])} "
                                f"({r['p'][99.9][0]:,.0f} / {r['p'][99.9][1]:,.0f} µs)"]
                               for r in res["latency"]]))
    if res.get("mem"):
        m = res["mem"]
        lines.append("")
        lines.append(md_table(["memory", "natrium", "nats-server", "natrium / nats-server"], [
            [f"per subscription at {m['subs']:,}", f"{m['sub'][0]:,.0f} B", f"{m['sub'][1]:,.0f} B",
             f"{ratio(*m['sub']):.2f}×"],
            [f"per connection (one SUB each) at {m['conns']:,}", f"{m['conn'][0]:.1f} KB",
             f"{m['conn'][1]:.1f} KB", f"{ratio(*m['conn']):.2f}×"]]))
    return "\n".join(lines)


def memory(natrium, ns, p):
    sub, conn, lines = [], [], []
    for b in (natrium, ns):
        before, after = mem_subs.run(b, p["mem_subs"], SERVER_CPU)
        sub.append((after - before) * 1024 / p["mem_subs"])
        idle, peak, after_close = mem_churn.run(b, p["mem_conns"], p["mem_settle"], SERVER_CPU)
        conn.append((peak - idle) / p["mem_conns"])
        lines.append(f"- {os.path.basename(b)}: {p['mem_subs']:,} subscriptions RSS {before / 1024:.1f} → "
                     f"{after / 1024:.1f} MB; idle {idle / 1024:.1f} MB, {p['mem_conns']:,} connections "
                     f"{peak / 1024:.1f} MB, {p['mem_settle']:.0f} s after closing {after_close / 1024:.1f} MB")
    return {"subs": p["mem_subs"], "conns": p["mem_conns"], "sub": sub, "conn": conn, "lines": lines}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(PARTS), help="comma separated: " + ",".join(PARTS))
    ap.add_argument("--quick", action="store_true", help="development: 1 round, short runs, small counts")
    ap.add_argument("--rounds", type=int, help="alternating rounds (default 3, --quick 1)")
    ap.add_argument("--natrium", default=release_bin("natrium"))
    ap.add_argument("--nats-server", default=peer("nats-server"))
    ap.add_argument("--nats", default=peer("nats"))
    ap.add_argument("--log-dir", help="default docs/perf-log (target/perf with --quick)")
    ap.add_argument("--no-log", action="store_true", help="print only")
    a = ap.parse_args()
    parts = [x for x in a.only.split(",") if x]
    if bad := set(parts) - set(PARTS):
        sys.exit(f"unknown part(s) {', '.join(bad)}: choose from {', '.join(PARTS)}")
    for b in (a.natrium, a.nats_server, release_bin("natrium-bench")):
        if not b or not os.path.exists(b):
            sys.exit(f"missing binary {b}: cargo build --release; nats-server in target/peers/bin or PATH")
    p = dict(QUICK if a.quick else FULL)
    if a.rounds:
        p["rounds"] = a.rounds
    stamp = time.strftime("%Y-%m-%d-%H%M")
    log_dir = a.log_dir or (os.path.join(ROOT, "target", "perf") if a.quick else os.path.join(ROOT, "docs", "perf-log"))
    docs = log_dir if a.quick else os.path.join(ROOT, "docs")
    ver = re.sub(r"^nats-server:\s*v?", "", version(a.nats_server))
    plot_path = os.path.join(docs, f"latency-{ver}.svg")
    hgrm_dir = os.path.join(log_dir, f"{stamp}-hgrm")
    t0, res, took = time.time(), {}, {}
    with servers_running(a.natrium, a.nats_server) as servers:
        R = p["rounds"]
        if "sat" in parts:
            t = time.time()
            res["sat"] = compare.saturation(servers, R, p["sat_secs"])
            res["fan"] = compare.fanout_rows(servers, R, p["fan_secs"])
            took["sat"] = time.time() - t
        if "natscli" in parts:
            t = time.time()
            res["natscli"] = natscli_compare.run(servers, R, p["natscli_scale"], nats=a.nats)
            took["natscli"] = time.time() - t
        if "equal" in parts:
            t = time.time()
            res["equal"] = equal_load.run(servers, R, p["equal_secs"], sat_secs=p["sat_probe"])
            took["equal"] = time.time() - t
        if "latency" in parts:
            t = time.time()
            res["latency"] = latency_rates.run(servers, secs=p["lat_secs"], rounds=R, hgrm_dir=hgrm_dir)
            took["latency"] = time.time() - t
    if "latency" in parts:
        latency_rates.plot(res["latency"], plot_path, f"nats-server {ver}")
    if "mem" in parts:
        t = time.time()
        res["mem"] = memory(a.natrium, a.nats_server, p)
        took["mem"] = time.time() - t
    total = time.time() - t0
    top = top_table(res)
    print(top)
    rel = lambda path: os.path.relpath(path, log_dir)
    doc = [f"# perf_table {stamp}{' (--quick: indicative only)' if a.quick else ''}", "",
           f"**Command:** `scripts/perf_table.py {' '.join(sys.argv[1:])}`; "
           f"{R} alternating round(s) natrium / nats-server; servers `taskset -c 0`, load `taskset -c 1`.",
           f"**Binaries:** natrium `{a.natrium}` built from `{git_rev()}`; {version(a.nats_server)}; "
           f"nats CLI {version(a.nats) if a.nats else 'absent'}.",
           f"**Machine:** {machine()}; took {total:.0f} s "
           f"({', '.join(f'{k} {v:.0f} s' for k, v in took.items())}). Only same-run ratios are evidence; "
           "ratios are natrium / nats-server (throughput: higher is better; CPU, latency, memory: lower is "
           "better); brackets: spread of the per-round ratios.", "", "## Top table", "", top]
    if "sat" in res:
        doc += ["", "## Saturation throughput (natrium-bench; fan-out over several processes)", "",
                "CPU ns/msg: server utime+stime over in_msgs + out_msgs, all rounds.", ""]
        doc += compare.saturation_table(res["sat"], res["fan"])
        doc += ["", "Fan-out load generator CPU share of the wall time (natrium / nats-server): "
                + "; ".join(f"{n} {t[0]:.0%} / {t[1]:.0%}" for n, _, _, _, _, t in res["fan"])]
    if "natscli" in res:
        doc += ["", "## Cross-check: `nats bench` (natscli)", "",
                "The Go client on one CPU is the limit for both servers here; the CPU column is what "
                "compares the servers.", "", natscli_compare.table(res["natscli"])]
    if "equal" in res:
        doc += ["", "## Server CPU per message at equal offered load (paced natrium-bench `--rate`)", "",
                equal_load.table(res["equal"])]
    if "latency" in res:
        doc += ["", "## Latency at fixed rates (corrected for coordinated omission)", "",
                latency_rates.table(res["latency"]), "",
                f"![latency by percentile]({rel(plot_path)})", "",
                f".hgrm files (rounds merged): `{rel(hgrm_dir)}/`."]
    if "mem" in res:
        doc += ["", "## Memory", ""] + res["mem"]["lines"]
    if not a.no_log:
        os.makedirs(log_dir, exist_ok=True)
        path = os.path.join(log_dir, f"{stamp}-perf-table.md")
        with open(path, "w") as f:
            f.write("\n".join(doc) + "\n")
        log(f"log: {path}")


if __name__ == "__main__":
    main()
