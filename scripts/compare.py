#!/usr/bin/env python3
"""Side-by-side natrium vs nats-server with natrium-bench (issue 4).

Installs Debian's nats-server if missing, builds natrium and natrium-bench
(release), starts both servers on free ports pinned to CPU 0, runs the standard
set (shared/DESIGN.md §5) with natrium-bench pinned to CPU 1 in --compare mode
(alternating A B A B, medians, ratio natrium / nats-server), checks that the load
generator is not the bottleneck (natrium-bench vs natsload, pub-only 16 B against
both servers and against a sink that drops everything, with each tool's own CPU
time per message), reports each server's
CPU time per message handled (utime+stime from /proc/PID/stat over in_msgs +
out_msgs from its /varz), and rewrites the section "## Side-by-side: natrium-bench" of
docs/perf-log/DATE-natrium-bench.md plus docs/perf-latency.svg.

Wide fan-out (1→100, 1→1,000 128 B) runs the subscribers in several
natrium-bench `sub` processes and the publisher in its own (all on CPU 1), so
one process's event loop is not what limits delivery; delivered msgs/s is
subscribers × messages over the time from the publisher's start until the last
subscriber process has them all.

Usage: scripts/compare.py [--rounds 3] [--secs 2] [--no-doc] [--no-build]
       [--nats-server PATH] [--only TEXT]
Default runtime: about 6 minutes on 2 cores. perf_table.py imports
`saturation()` and `wide_fanout()` from here.
"""
import argparse, json, os, resource, subprocess, sys, time

from benchcommon import (ROOT, Server, bench, free_port, log, machine, median, ns_per_msg, peer, ratio,
                         release_bin, spread, target_dir, version, wait_port)

# Each run is one dated file in docs/perf-log/ (docs/PERFORMANCE.md keeps only
# the current summary table, copied from the newest run by hand).
DOC = os.path.join(ROOT, "docs", "perf-log", time.strftime("%Y-%m-%d-natrium-bench.md"))
PLOT = os.path.join(ROOT, "docs", "perf-latency.svg")
HEADING = "## Side-by-side: natrium-bench"

# name, natrium-bench args (duration-based ones get -d SECS), key metrics
WORKLOADS = [
    ("pub-only 16 B", ["pub", "--size", "16"], ["pub msgs/s"]),
    ("1→1 16 B", ["pubsub", "--size", "16", "-p", "1", "-c", "1"], ["pub msgs/s", "sub msgs/s"]),
    ("1→1 128 B", ["pubsub", "--size", "128", "-p", "1", "-c", "1"], ["pub msgs/s", "sub msgs/s"]),
    ("1→1 16 KiB", ["pubsub", "--size", "16384", "-p", "1", "-c", "1"], ["sub msgs/s", "sub MB/s"]),
    ("1→4 128 B", ["fanout", "--size", "128", "-c", "4"], ["pub msgs/s", "sub msgs/s"]),
    ("4×4 128 B", ["pubsub", "--size", "128", "-p", "4", "-c", "4"], ["pub msgs/s", "sub msgs/s"]),
    ("pub into 100k wildcard subs", ["pub", "--size", "16", "--extra-subs", "100000",
                                      "--subjects", "10000", "--subject", "bench.wc"], ["pub msgs/s"]),
]
# Wide fan-out: name, subscribers, natrium-bench `sub` processes.
FANOUT = [("1→100 128 B", 100, 2), ("1→1,000 128 B", 1000, 4)]
LATENCY = ("req/reply latency at 500/s", ["reqrep", "--size", "16", "-c", "1", "--rate", "500"],
           ["p50 µs", "p99 µs", "p99.9 µs", "p99.99 µs", "max µs", "p99 µs (uncorr.)"])


def sh(cmd, **kw):
    log("+", " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


def ensure_nats_server():
    if peer("nats-server"):
        return peer("nats-server")
    sh(["apt-get", "update"])
    sh(["apt-get", "install", "-y", "nats-server"])
    return peer("nats-server")


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def natsload_pub(natsload, port, n):
    """natsload's pub-only 16 B rate and its own CPU seconds, or None."""
    cmd = ["taskset", "-c", "1", natsload, "-s", f"nats://127.0.0.1:{port}", "-mode", "pub",
           "-np", "1", "-ms", "16", "-n", str(n)]
    c0 = child_cpu()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        return None
    for line in out.stdout.splitlines():
        if line.startswith("pub_msgs_per_s"):
            return float(line.split()[1]), child_cpu() - c0
    return None


class Sink:
    """scripts/nats_sink.py pinned to CPU 0: a publisher's ceiling without a server."""

    def __init__(self):
        self.name, self.port = "sink", free_port()
        self.proc = subprocess.Popen(["taskset", "-c", "0", sys.executable,
                                      os.path.join(ROOT, "scripts", "nats_sink.py"), str(self.port)])
        wait_port(self.port)
        self.url = f"nats://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate(); self.proc.wait()


def key_metric(keys):
    """The metric a workload's ratio is read from: delivered if it has one."""
    return "sub msgs/s" if "sub msgs/s" in keys else keys[0]


def saturation(servers, rounds, secs, only=None, extra=()):
    """The standard workloads at saturation, natrium-bench `--compare` between
    servers[0] and servers[1] (alternating). Returns per workload: (name,
    comparison JSON, key metrics, [CPU ns/msg per server], per-round ratios of
    the key metric)."""
    rows = []
    A, B = (s.url for s in servers)
    for name, args, keys in WORKLOADS + list(extra):
        if only and not any(o in name for o in only):
            continue
        before = [s.sample() for s in servers]
        c = bench(args + ["-d", f"{secs}s", "--compare", A, B, "--rounds", str(rounds)], ok=(0, 2))
        cpu = [ns_per_msg(b, s.sample()) for b, s in zip(before, servers)]
        rows.append((name, c, keys, cpu, per_round(c, key_metric(keys))))
    return rows


def per_round(c, metric):
    """A/B of `metric` in each round of a --compare JSON (runs alternate A B)."""
    side = {"pub msgs/s": "publishers", "sub msgs/s": "subscribers"}.get(metric)
    if not side:
        return []
    rates = [r[side]["msgs_per_s"] if r.get(side) else float("nan") for r in c["runs"]]
    return [ratio(rates[i], rates[i + 1]) for i in range(0, len(rates) - 1, 2)]


def wide_fanout(srv, nsubs, procs, msgs, size=128, timeout=600):
    """1→nsubs against one server: `procs` natrium-bench `sub` processes share
    the subscribers, one `pub` process publishes `msgs`; all on CPU 1.
    Returns (delivered msgs/s, server CPU ns/msg, lost, load-generator CPU
    share of the wall time)."""
    subject = f"bench.fan{nsubs}"
    base = srv.varz()["subscriptions"]
    c0, before = child_cpu(), srv.sample()
    shares = [nsubs // procs + (1 if i < nsubs % procs else 0) for i in range(procs)]
    subs = []
    for k in shares:
        cmd = ["taskset", "-c", "1", release_bin("natrium-bench"), "sub", "-s", srv.url, "-c", str(k),
               "-n", str(msgs), "--subject", subject, "-d", f"{timeout}s", "--json", "--progress", "never"]
        subs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    srv.wait_subscriptions(base + nsubs)
    t0 = time.time()
    bench(["pub", "-s", srv.url, "-n", str(msgs), "--size", str(size), "--subject", subject])
    got = 0
    for p in subs:
        out, err = p.communicate(timeout=timeout)
        if p.returncode not in (0, 2):
            sys.exit(f"natrium-bench sub failed ({p.returncode}): {err.strip()}")
        got += json.loads(out)["subscribers"]["msgs"]
    wall = time.time() - t0
    return (got / wall, ns_per_msg(before, srv.sample()), nsubs * msgs - got,
            (child_cpu() - c0) / wall)


def fanout_rows(servers, rounds, secs, only=None):
    """FANOUT against both servers, alternating; per workload: (name,
    [delivered msgs/s per server], [CPU ns/msg], lost, per-round ratios,
    [tool CPU share])."""
    rows = []
    for name, nsubs, procs in FANOUT:
        if only and not any(o in name for o in only):
            continue
        msgs = max(100, int(secs * 2.5e6 / nsubs))  # ~secs at 2.5 M deliveries/s
        res = {s.name: [] for s in servers}
        for _ in range(rounds):
            for s in servers:
                res[s.name].append(wide_fanout(s, nsubs, procs, msgs))
        a, b = (res[s.name] for s in servers)
        rows.append((name, [median([x[0] for x in r]) for r in (a, b)],
                     [median([x[1] for x in r]) for r in (a, b)], sum(x[2] for x in a + b),
                     [ratio(x[0], y[0]) for x, y in zip(a, b)],
                     [median([x[3] for x in r]) for r in (a, b)]))
    return rows


def saturation_table(rows, fans):
    """Markdown lines for saturation() rows (4 or 5 fields) and fanout_rows()."""
    out = ["| workload | metric | natrium | nats-server | natrium / nats-server | per-round ratios "
           "| natrium CPU ns/msg | nats-server CPU ns/msg |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        name, c, keys, cpu = row[:4]
        for r in c["rows"]:
            if r["metric"] in keys:
                rounds = spread(per_round(c, r["metric"]))
                out.append(f"| {name} | {r['metric']} | {r['a']:,.1f} | {r['b']:,.1f} | {r['ratio']:.2f}× "
                           f"| {rounds} | {cpu[0]:,.0f} | {cpu[1]:,.0f} |")
        if c["lost"]:
            out.append(f"| {name} | **LOST / duplicated** | {c['lost']} | | | | | |")
    for name, rate, cpu, lost, rounds, tool in fans:
        out.append(f"| {name} | sub msgs/s | {rate[0]:,.1f} | {rate[1]:,.1f} | {ratio(*rate):.2f}× "
                   f"| {spread(rounds)} | {cpu[0]:,.0f} | {cpu[1]:,.0f} |")
        if lost:
            out.append(f"| {name} | **LOST / duplicated** | {lost} | | | | | |")
    return out


def rewrite_doc(section):
    text = open(DOC).read() if os.path.exists(DOC) else "# natrium-bench side by side\n"
    start = text.find(HEADING)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    with open(DOC, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=2.0, help="duration of each throughput run")
    ap.add_argument("--no-doc", action="store_true", help="print only, do not rewrite docs/")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--nats-server", default=None, help="default: target/peers/bin, else PATH")
    ap.add_argument("--only", action="append", metavar="TEXT",
                    help="only the workloads whose name contains TEXT (repeatable)")
    a = ap.parse_args()
    ns = a.nats_server or ensure_nats_server()
    if not a.no_build:
        sh(["cargo", "build", "--release", "--bin", "natrium", "--bin", "natrium-bench"], cwd=ROOT)
    natrium = release_bin("natrium")
    natsload = os.path.join(target_dir(), "peers", "natsload")
    if not os.path.exists(natsload):
        natsload = os.path.join(ROOT, "target", "peers", "natsload")
    servers = [Server("natrium", natrium), Server("nats-server", ns)]
    A, B = (s.url for s in servers)
    # A sink that drops everything: the tools' own ceiling, no server in the way.
    sink = Sink()
    rows, t0 = [], time.time()
    # (server, tool) -> lists of rates and tool CPU ns/msg
    tools = {}
    n_tool = 5_000_000
    try:
        # Is the load generator fast enough? Same workload, same server, same CPU,
        # alternating the two tools; each tool's own CPU time per message shows
        # its headroom even where the server is the limit.
        for _ in range(a.rounds):
            for srv in servers + [sink]:
                c0 = child_cpu()
                r = bench(["pub", "-s", srv.url, "--size", "16", "-n", str(n_tool)])
                t = tools.setdefault((srv.name, "natrium-bench"), ([], []))
                t[0].append(r["publishers"]["msgs_per_s"]); t[1].append((child_cpu() - c0) * 1e9 / n_tool)
                if os.path.exists(natsload):
                    v = natsload_pub(natsload, srv.port, n_tool)
                    if v:
                        t = tools.setdefault((srv.name, "natsload"), ([], []))
                        t[0].append(v[0]); t[1].append(v[1] * 1e9 / n_tool)
        rows = [r[:4] for r in saturation(servers, a.rounds, a.secs, a.only)]
        fans = fanout_rows(servers, a.rounds, a.secs, a.only)
        name, args, keys = LATENCY
        before = [s.sample() for s in servers]
        c = bench(args + ["-d", f"{max(a.secs, 15)}s", "--plot",
                          PLOT if not a.no_doc else "/tmp/natrium-bench-latency.svg",
                          "--compare", A, B, "--rounds", str(a.rounds)], ok=(0, 2))
        rows.append((name, c, keys, [ns_per_msg(b, s.sample()) for b, s in zip(before, servers)]))
    finally:
        for s in servers + [sink]:
            s.stop()
    out = [HEADING, "",
           "**Command:** `scripts/compare.py` (natrium-bench `--compare`, alternating natrium / nats-server,",
           f"medians of {a.rounds} rounds, {a.secs:g} s per throughput run and {max(a.secs, 15):g} s "
           "(7,500 requests) per latency run; servers pinned `taskset -c 0`,",
           "natrium-bench pinned `taskset -c 1`).",
           f"**Machine:** {machine()}; nats-server "
           f"{version(ns)}; "
           f"took {time.time() - t0:.0f} s. Only the ratios are evidence.", "",
           "Server CPU ns/msg: each server's utime+stime over the whole workload (all rounds)",
           "divided by the messages it handled (`in_msgs + out_msgs` from its `/varz`);",
           "it does not depend on the load generator's speed.", "",
           ] + saturation_table(rows, fans)
    out += ["", "Latency percentiles are corrected for coordinated omission (measured from each",
            "request's intended send time); `(uncorr.)` is from the actual send time. At 500",
            "requests/s the servers' CPU per message is mostly the cost of waking up for each",
            "message (epoll, scheduler, the VM's interrupt exits), not of handling it.",
            "![request/reply latency by percentile](../perf-latency.svg)", "",
            "**Is the load generator the bottleneck?** pub-only 16 B, 5,000,000 messages, same CPUs,",
            f"the two tools alternating, medians of {a.rounds}. \"tool CPU ns/msg\" is the tool's own",
            "utime+stime per message published: how much of CPU 1 it needs for that rate.", "",
            "| server | tool | pub msgs/s | tool CPU ns/msg | natrium-bench / natsload |", "|---|---|---|---|---|"]
    for srv in ("nats-server", "natrium", "sink"):
        nb_t, nl_t = tools.get((srv, "natrium-bench")), tools.get((srv, "natsload"))
        tr = f"{median(nb_t[0]) / median(nl_t[0]):.2f}×" if nl_t else ""
        out.append(f"| {srv} | natrium-bench | {median(nb_t[0]):,.0f} | {median(nb_t[1]):,.0f} | {tr} |")
        if nl_t:
            out.append(f"| {srv} | natsload | {median(nl_t[0]):,.0f} | {median(nl_t[1]):,.0f} | |")
    out += ["", "`sink` is `scripts/nats_sink.py` on CPU 0: it answers PINGs and drops everything",
            "else, so that row is each tool's own publishing ceiling on one CPU. Against a real",
            "server both tools stop at that server's limit, and the ratio between them swings",
            "by ±20% from run to run on this shared machine; the sink row and the CPU column",
            "are what show the headroom."]
    if not any(k[1] == "natsload" for k in tools):
        out.append("natsload not built: `bash shared/peers/build-natsload.sh target/peers/natsload`.")
    out.append("")
    section = "\n".join(out) + "\n"
    print(section)
    if not a.no_doc:
        rewrite_doc(section)


if __name__ == "__main__":
    main()
