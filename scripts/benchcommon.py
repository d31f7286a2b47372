"""Helpers shared by the comparison scripts (compare.py, equal_load.py,
latency_rates.py, natscli_compare.py, natsload_compare.py, mem_*.py,
perf_table.py): where the binaries are, free ports, a server pinned to CPU 0
with monitoring, natrium-bench pinned to CPU 1, a process's CPU time and RSS
from /proc, medians and ratios. Not a script: import it."""
import contextlib, json, os, shutil, socket, subprocess, sys, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER_CPU, LOAD_CPU = "0", "1"


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def release_bin(name):
    """target/release/NAME (natrium, natrium-bench)."""
    return os.path.join(target_dir(), "release", name)


def peer(name):
    """A reference binary (nats-server, nats): target/peers/bin/NAME as the
    README installs it, else NAME on PATH, else None."""
    p = os.path.join(ROOT, "target", "peers", "bin", name)
    return p if os.path.exists(p) else shutil.which(name)


def version(binary):
    """`BINARY --version`, first line (e.g. "nats-server: v2.15.3")."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def machine():
    """"N cores, CPU model" for the record."""
    with open("/proc/cpuinfo") as f:
        model = f.read().split("model name")[1].split(":")[1].splitlines()[0].strip()
    return f"{os.cpu_count()} cores, {model}"


def git_rev():
    out = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                         capture_output=True, text=True)
    br = subprocess.run(["git", "-C", ROOT, "rev-parse", "--abbrev-ref", "HEAD"],
                        capture_output=True, text=True)
    return f"{br.stdout.strip()} {out.stdout.strip()}"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"server on port {port} did not start")


def cpu_seconds(pid):
    """utime + stime of `pid` so far (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    """VmRSS of `pid` in KB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def median(v):
    v = sorted(v); m = len(v) // 2
    if not v:
        return float("nan")
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


def ratio(a, b):
    return a / b if b else float("nan")


def spread(ratios):
    """Per-round ratios as "min–max" (or the one value)."""
    r = [x for x in ratios if x == x]
    if not r:
        return ""
    return f"{min(r):.2f}×" if len(r) == 1 else f"{min(r):.2f}–{max(r):.2f}×"


class Server:
    """A server (natrium or nats-server: same flags) pinned to CPU 0 with
    monitoring on, for CPU time per message handled."""

    def __init__(self, name, binary, cpu=SERVER_CPU):
        self.name, self.binary = name, binary
        self.port, mport = free_port(), free_port()
        self.proc = subprocess.Popen(["taskset", "-c", cpu, binary, "-a", "127.0.0.1", "-p", str(self.port),
                                      "-m", str(mport)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        wait_port(mport)
        self.varz_url = f"http://127.0.0.1:{mport}/varz"
        self.url = f"nats://127.0.0.1:{self.port}"

    def varz(self):
        return json.load(urllib.request.urlopen(self.varz_url, timeout=5))

    def sample(self):
        """(CPU seconds so far, messages handled so far: in_msgs + out_msgs)."""
        v = self.varz()
        return cpu_seconds(self.proc.pid), v["in_msgs"] + v["out_msgs"]

    def wait_subscriptions(self, n, timeout=60):
        """Waits until /varz counts at least `n` subscriptions."""
        end = time.time() + timeout
        while self.varz()["subscriptions"] < n:
            if time.time() > end:
                raise RuntimeError(f"{self.name}: fewer than {n} subscriptions after {timeout} s")
            time.sleep(0.05)

    def stop(self):
        self.proc.terminate(); self.proc.wait()


@contextlib.contextmanager
def servers_running(natrium, nats_server):
    """[natrium, nats-server], both pinned to CPU 0, in that order; stopped on exit."""
    servers = [Server("natrium", natrium), Server("nats-server", nats_server)]
    try:
        yield servers
    finally:
        for s in servers:
            s.stop()


def ns_per_msg(before, after):
    cpu, msgs = after[0] - before[0], after[1] - before[1]
    return cpu * 1e9 / msgs if msgs > 0 else float("nan")


def bench(args, timeout=600, binary=None, ok=(0,)):
    """natrium-bench ARGS --json pinned to CPU 1; its JSON report. Exit code 2
    (lost messages) is returned with the report when 2 is in `ok`."""
    cmd = ["taskset", "-c", LOAD_CPU, binary or release_bin("natrium-bench")] + args + [
        "--json", "--progress", "never"]
    log("+", " ".join(cmd))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode not in ok:
        sys.exit(f"natrium-bench failed ({out.returncode}): {out.stderr.strip()}\n{out.stdout[-2000:]}")
    return json.loads(out.stdout)


def pct(pcts, p):
    """µs at percentile `p` from a natrium-bench percentiles_us list."""
    return dict((k, v) for k, v in pcts["percentiles_us"])[p]


def md_table(header, rows):
    """A markdown table from a header list and row lists."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
