#!/usr/bin/env python3
"""Side-by-side throughput of natrium and nats-server under the independent Go
load generator `natsload` (shared/peers). One run, alternating A B A B; prints
medians, the ratio natrium / nats-server, and each server's CPU time per message
(utime+stime from /proc/PID/stat, independent of the load generator's speed).

Usage: scripts/natsload_compare.py [--rounds 3] [--natrium target/release/natrium]
       [--natsload target/peers/natsload] [--scale 1.0] [--only 1→4] [--spread]
Servers are pinned to CPU 0 and the load generator to CPU 1 (taskset).
"""
import argparse, os, statistics, subprocess, sys

from benchcommon import cpu_seconds, free_port, wait_port

WORKLOADS = [
    # name, natsload args, messages the server handles per published message
    ("pub-only 16 B", ["-mode", "pub", "-np", "1", "-ms", "16"], 2_000_000, 1),
    ("1→1 16 B", ["-mode", "pubsub", "-np", "1", "-ns", "1", "-ms", "16"], 1_000_000, 2),
    ("1→1 128 B", ["-mode", "pubsub", "-np", "1", "-ns", "1", "-ms", "128"], 1_000_000, 2),
    ("1→4 128 B", ["-mode", "pubsub", "-np", "1", "-ns", "4", "-ms", "128"], 500_000, 5),
]

def run_load(natsload, port, args, n):
    cmd = ["taskset", "-c", "1", natsload, "-s", f"nats://127.0.0.1:{port}", "-n", str(n)] + args
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"natsload failed: {out.stderr.strip()}")
    vals = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            vals[parts[0]] = float(parts[1])
    return vals

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--natrium", default="target/release/natrium")
    ap.add_argument("--natsload", default="target/peers/natsload")
    ap.add_argument("--nats-server", default="nats-server")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply message counts")
    ap.add_argument("--only", default=None, metavar="TEXT",
                    help="run only the workloads whose name contains TEXT (e.g. '1→4')")
    ap.add_argument("--spread", action="store_true",
                    help="also print each round's ratio (natrium / nats-server, same round)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=BINARY",
                    help="another natrium build to alternate with (reported against nats-server)")
    a = ap.parse_args()
    servers = {}
    procs = []
    candidates = [("natrium", [a.natrium]), ("nats-server", [a.nats_server])]
    candidates += [(v.split("=", 1)[0], [v.split("=", 1)[1]]) for v in a.variant]
    for name, cmd in candidates:
        port = free_port()
        p = subprocess.Popen(["taskset", "-c", "0"] + cmd + ["-a", "127.0.0.1", "-p", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        wait_port(port)
        servers[name] = (port, p.pid)
    try:
        print(f"# {os.cpu_count()} cores; {open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}")
        print(f"# rounds={a.rounds}, alternating natrium / nats-server, server on CPU 0, natsload on CPU 1")
        print("| workload | metric | natrium (median) | nats-server (median) | ratio | natrium CPU ns/msg | nats-server CPU ns/msg |")
        print("|---|---|---|---|---|---|---|")
        for wname, args, n, handled in WORKLOADS:
            if a.only and a.only not in wname:
                continue
            n = max(1000, int(n * a.scale))
            res = {s: {} for s in servers}
            cpu = {s: [] for s in servers}
            for _ in range(a.rounds):
                for s, (port, pid) in servers.items():
                    t0 = cpu_seconds(pid)
                    vals = run_load(a.natsload, port, args, n)
                    t1 = cpu_seconds(pid)
                    cpu[s].append((t1 - t0) * 1e9 / (n * handled))
                    for k, v in vals.items():
                        res[s].setdefault(k, []).append(v)
            for mine in [s for s in servers if s != "nats-server"]:
                for metric in res[mine]:
                    mn = statistics.median(res[mine][metric])
                    mg = statistics.median(res["nats-server"][metric])
                    label = wname if mine == "natrium" else f"{wname} [{mine}]"
                    print(f"| {label} | {metric} | {mn:,.0f} | {mg:,.0f} | {mn / mg:.2f}× | "
                          f"{statistics.median(cpu[mine]):.0f} | {statistics.median(cpu['nats-server']):.0f} |")
                    if a.spread:
                        per = [x / y for x, y in zip(res[mine][metric], res["nats-server"][metric])]
                        print(f"|  | per-round ratios | {', '.join(f'{r:.2f}' for r in per)} | | "
                              f"{sum(r >= 1.0 for r in per)} of {len(per)} ≥ 1.0 | | |")
            sys.stdout.flush()
    finally:
        for p in procs:
            p.terminate()
            p.wait()

if __name__ == "__main__":
    main()
