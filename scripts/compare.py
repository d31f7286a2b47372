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

Usage: scripts/compare.py [--rounds 3] [--secs 2] [--no-doc]
Default runtime: about 5 minutes on 2 cores.
"""
import argparse, json, os, resource, shutil, subprocess, sys, time, urllib.request

from benchcommon import cpu_seconds, free_port, wait_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
LATENCY = ("req/reply latency at 500/s", ["reqrep", "--size", "16", "-c", "1", "--rate", "500"],
           ["p50 µs", "p99 µs", "p99.9 µs", "p99.99 µs", "max µs", "p99 µs (uncorr.)"])


def sh(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, **kw)


def ensure_nats_server():
    if shutil.which("nats-server"):
        return
    sh(["apt-get", "update"])
    sh(["apt-get", "install", "-y", "nats-server"])


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def bench(binary, args, timeout=600):
    cmd = ["taskset", "-c", "1", binary] + args + ["--json", "--progress", "never"]
    print("+", " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        sys.exit(f"compare: natrium-bench failed ({out.returncode}): {out.stderr.strip()}\n{out.stdout[-2000:]}")
    return json.loads(out.stdout)


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


class Server:
    """A server pinned to CPU 0 with monitoring on, for CPU time per message."""

    def __init__(self, name, cmd):
        self.name, self.port, mport = name, free_port(), free_port()
        self.proc = subprocess.Popen(["taskset", "-c", "0"] + cmd + ["-a", "127.0.0.1", "-p", str(self.port),
                                                                      "-m", str(mport)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        wait_port(mport)
        self.varz = f"http://127.0.0.1:{mport}/varz"
        self.url = f"nats://127.0.0.1:{self.port}"

    def sample(self):
        """(CPU seconds so far, messages handled so far: in_msgs + out_msgs)."""
        v = json.load(urllib.request.urlopen(self.varz, timeout=5))
        return cpu_seconds(self.proc.pid), v["in_msgs"] + v["out_msgs"]

    def stop(self):
        self.proc.terminate(); self.proc.wait()


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


def ns_per_msg(before, after):
    cpu, msgs = after[0] - before[0], after[1] - before[1]
    return cpu * 1e9 / msgs if msgs > 0 else float("nan")


def median(v):
    v = sorted(v); m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


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
    a = ap.parse_args()
    ensure_nats_server()
    if not a.no_build:
        sh(["cargo", "build", "--release", "--bin", "natrium", "--bin", "natrium-bench"], cwd=ROOT)
    rel = os.path.join(target_dir(), "release")
    natrium, nb = os.path.join(rel, "natrium"), os.path.join(rel, "natrium-bench")
    natsload = os.path.join(target_dir(), "peers", "natsload")
    if not os.path.exists(natsload):
        natsload = os.path.join(ROOT, "target", "peers", "natsload")
    servers = [Server("natrium", [natrium]), Server("nats-server", ["nats-server"])]
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
                r = bench(nb, ["pub", "-s", srv.url, "--size", "16", "-n", str(n_tool)])
                t = tools.setdefault((srv.name, "natrium-bench"), ([], []))
                t[0].append(r["publishers"]["msgs_per_s"]); t[1].append((child_cpu() - c0) * 1e9 / n_tool)
                if os.path.exists(natsload):
                    v = natsload_pub(natsload, srv.port, n_tool)
                    if v:
                        t = tools.setdefault((srv.name, "natsload"), ([], []))
                        t[0].append(v[0]); t[1].append(v[1] * 1e9 / n_tool)
        for name, args, keys in WORKLOADS + [LATENCY]:
            before = [s.sample() for s in servers]
            extra = ["-d", f"{a.secs}s"]
            if (name, args, keys) == LATENCY:
                extra = ["-d", f"{max(a.secs, 15)}s",
                         "--plot", PLOT if not a.no_doc else "/tmp/natrium-bench-latency.svg"]
            c = bench(nb, args + extra + ["--compare", A, B, "--rounds", str(a.rounds)])
            cpu = [ns_per_msg(b, s.sample()) for b, s in zip(before, servers)]
            rows.append((name, c, keys, cpu))
    finally:
        for s in servers + [sink]:
            s.stop()
    cpu = open("/proc/cpuinfo").read().split("model name")[1].split(":")[1].splitlines()[0].strip()
    out = [HEADING, "",
           "**Command:** `scripts/compare.py` (natrium-bench `--compare`, alternating natrium / nats-server,",
           f"medians of {a.rounds} rounds, {a.secs:g} s per throughput run and {max(a.secs, 15):g} s "
           "(7,500 requests) per latency run; servers pinned `taskset -c 0`,",
           "natrium-bench pinned `taskset -c 1`).",
           f"**Machine:** {os.cpu_count()} cores, {cpu}; nats-server "
           f"{subprocess.run(['nats-server', '--version'], capture_output=True, text=True).stdout.strip()}; "
           f"took {time.time() - t0:.0f} s. Only the ratios are evidence.", "",
           "Server CPU ns/msg: each server's utime+stime over the whole workload (all rounds)",
           "divided by the messages it handled (`in_msgs + out_msgs` from its `/varz`);",
           "it does not depend on the load generator's speed.", "",
           "| workload | metric | natrium | nats-server | natrium / nats-server "
           "| natrium CPU ns/msg | nats-server CPU ns/msg |", "|---|---|---|---|---|---|---|"]
    for name, c, keys, cpu in rows:
        for r in c["rows"]:
            if r["metric"] in keys:
                out.append(f"| {name} | {r['metric']} | {r['a']:,.1f} | {r['b']:,.1f} | {r['ratio']:.2f}× "
                           f"| {cpu[0]:,.0f} | {cpu[1]:,.0f} |")
        if c["lost"]:
            out.append(f"| {name} | **LOST / duplicated** | {c['lost']} | | | | |")
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
        ratio = f"{median(nb_t[0]) / median(nl_t[0]):.2f}×" if nl_t else ""
        out.append(f"| {srv} | natrium-bench | {median(nb_t[0]):,.0f} | {median(nb_t[1]):,.0f} | {ratio} |")
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
