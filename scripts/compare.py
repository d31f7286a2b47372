#!/usr/bin/env python3
"""Side-by-side natrium vs nats-server with natrium-bench (issue 4).

Installs Debian's nats-server if missing, builds natrium and natrium-bench
(release), starts both servers on free ports pinned to CPU 0, runs the standard
set (shared/DESIGN.md §5) with natrium-bench pinned to CPU 1 in --compare mode
(alternating A B A B, medians, ratio natrium / nats-server), checks that the load
generator is not the bottleneck (natrium-bench vs natsload, pub-only 16 B against
nats-server), and rewrites the section "## Side-by-side: natrium-bench" of
docs/PERFORMANCE.md plus docs/perf-latency.svg.

Usage: scripts/compare.py [--rounds 3] [--secs 2] [--no-doc]
Default runtime: about 5 minutes on 2 cores.
"""
import argparse, json, os, shutil, socket, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "PERFORMANCE.md")
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


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"compare: server on port {port} did not start")


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


def natsload_pub(natsload, port, n):
    cmd = ["taskset", "-c", "1", natsload, "-s", f"nats://127.0.0.1:{port}", "-mode", "pub",
           "-np", "1", "-ms", "16", "-n", str(n)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        return None
    for line in out.stdout.splitlines():
        if line.startswith("pub_msgs_per_s"):
            return float(line.split()[1])
    return None


def median(v):
    v = sorted(v); m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


def rewrite_doc(section):
    text = open(DOC).read() if os.path.exists(DOC) else "# natrium performance\n"
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
    procs, ports = [], {}
    for name, cmd in [("natrium", [natrium]), ("nats-server", ["nats-server"])]:
        port = free_port()
        procs.append(subprocess.Popen(["taskset", "-c", "0"] + cmd + ["-a", "127.0.0.1", "-p", str(port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(port)
        ports[name] = port
    A, B = (f"nats://127.0.0.1:{ports[n]}" for n in ("natrium", "nats-server"))
    rows, t0 = [], time.time()
    try:
        # Is the load generator fast enough? Same workload, same server, same CPU.
        nb_pub, nl_pub = [], []
        for _ in range(a.rounds):
            nb_pub.append(bench(nb, ["pub", "-s", B, "--size", "16", "-n", "2000000"])["publishers"]["msgs_per_s"])
            if os.path.exists(natsload):
                v = natsload_pub(natsload, ports["nats-server"], 2000000)
                if v:
                    nl_pub.append(v)
        for name, args, keys in WORKLOADS:
            c = bench(nb, args + ["-d", f"{a.secs}s", "--compare", A, B, "--rounds", str(a.rounds)])
            rows.append((name, c, keys))
        name, args, keys = LATENCY
        c = bench(nb, args + ["-d", f"{max(a.secs, 5)}s", "--compare", A, B, "--rounds", str(a.rounds),
                              "--plot", PLOT if not a.no_doc else "/tmp/natrium-bench-latency.svg"])
        rows.append((name, c, keys))
    finally:
        for p in procs:
            p.terminate(); p.wait()
    cpu = open("/proc/cpuinfo").read().split("model name")[1].split(":")[1].splitlines()[0].strip()
    out = [HEADING, "",
           "**Command:** `scripts/compare.py` (natrium-bench `--compare`, alternating natrium / nats-server,",
           f"medians of {a.rounds} rounds, {a.secs:g} s per throughput run; servers pinned `taskset -c 0`,",
           "natrium-bench pinned `taskset -c 1`).",
           f"**Machine:** {os.cpu_count()} cores, {cpu}; nats-server "
           f"{subprocess.run(['nats-server', '--version'], capture_output=True, text=True).stdout.strip()}; "
           f"took {time.time() - t0:.0f} s. Only the ratios are evidence.", "",
           "| workload | metric | natrium | nats-server | natrium / nats-server |", "|---|---|---|---|---|"]
    for name, c, keys in rows:
        for r in c["rows"]:
            if r["metric"] in keys:
                out.append(f"| {name} | {r['metric']} | {r['a']:,.1f} | {r['b']:,.1f} | {r['ratio']:.2f}× |")
        if c["lost"]:
            out.append(f"| {name} | **LOST / duplicated** | {c['lost']} | | |")
    out += ["", "Latency percentiles are corrected for coordinated omission (measured from each",
            "request's intended send time); `(uncorr.)` is from the actual send time.",
            "![request/reply latency by percentile](perf-latency.svg)", "",
            "**Is the load generator the bottleneck?** pub-only 16 B against nats-server, same CPUs:",
            f"natrium-bench {median(nb_pub):,.0f} msgs/s"
            + (f", natsload {median(nl_pub):,.0f} msgs/s (ratio {median(nb_pub) / median(nl_pub):.2f}×)."
               if nl_pub else " (natsload not built: `bash shared/peers/build-natsload.sh target/peers/natsload`)."), ""]
    section = "\n".join(out) + "\n"
    print(section)
    if not a.no_doc:
        rewrite_doc(section)


if __name__ == "__main__":
    main()
