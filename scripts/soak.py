#!/usr/bin/env python3
"""Soak: moderate steady load with churn against one server for --minutes.

Stable part (must lose nothing): one publisher sends numbered messages at
--rate to soak.stable.<k>; an exact subscriber per subject, a wildcard
subscriber on soak.stable.*, and a queue group of three members on
soak.stable.> whose union must see every message exactly once.
Churn: --churners threads connect, subscribe to random subjects (literal,
`*`, `>`, queue), publish a few messages, unsubscribe or just hang up, again.
Every --sample seconds: RSS and CPU of the server. Prints loss per stable
subscriber (must be 0), RSS over time (must be flat after warm-up) and CPU
seconds per million messages delivered.

    scripts/soak.py --server target/release/natrium --minutes 30
"""
import argparse, random, socket, subprocess, threading, time

from benchcommon import cpu_seconds, free_port, wait_port

STOP = threading.Event()


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.settimeout(30)
        self.buf = b""
        self.s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\n')

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def exact(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        d, self.buf = self.buf[:n], self.buf[n:]
        return d


def subscriber(port, subject, queue, seen, lock, errors):
    c = Conn(port)
    c.s.sendall(b"SUB %s %s1\r\nPING\r\n" % (subject.encode(), (queue + " ").encode() if queue else b""))
    try:
        while True:
            l = c.line()
            if l == b"PING":
                c.s.sendall(b"PONG\r\n")
            elif l.startswith(b"MSG "):
                parts = l.split()
                body = c.exact(int(parts[-1]) + 2)[:-2]
                with lock:
                    seen.append((parts[1], int(body)))
            elif l.startswith(b"-ERR"):
                errors.append(l)
    except (EOFError, OSError):
        if not STOP.is_set():
            errors.append(b"subscriber " + subject.encode() + b" disconnected")


def churner(port, seed, counters):
    rnd = random.Random(seed)
    while not STOP.is_set():
        try:
            c = Conn(port)
            for i in range(rnd.randint(1, 5)):
                kind = rnd.choice(["lit", "pwc", "fwc", "queue"])
                subj = {"lit": f"churn.{rnd.randint(0, 99)}", "pwc": "churn.*",
                        "fwc": "churn.>", "queue": f"churn.{rnd.randint(0, 9)}"}[kind]
                q = b" grp" if kind == "queue" else b""
                c.s.sendall(b"SUB %s%s %d\r\n" % (subj.encode(), q, i + 1))
            for _ in range(rnd.randint(1, 20)):
                c.s.sendall(b"PUB churn.%d 5\r\nhello\r\n" % rnd.randint(0, 99))
            c.s.sendall(b"PING\r\n")
            c.s.settimeout(0.2)
            try:
                while c.s.recv(65536):
                    pass
            except OSError:
                pass
            if rnd.random() < 0.5:
                c.s.sendall(b"UNSUB 1\r\n")
            c.s.close()
            counters["churn"] += 1
        except OSError:
            time.sleep(0.05)
        time.sleep(rnd.uniform(0, 0.05))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=int, default=2000, help="stable messages per second")
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument("--churners", type=int, default=4)
    ap.add_argument("--sample", type=float, default=60)
    ap.add_argument("--cpu", default="0")
    a = ap.parse_args()
    port = free_port()
    proc = subprocess.Popen(["taskset", "-c", a.cpu, a.server, "-a", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    lock, errors = threading.Lock(), []
    stable = {}
    subjects = [f"soak.stable.{k}" for k in range(a.subjects)]
    for s in subjects:
        stable[s] = []
    stable["wildcard"], stable["queue"] = [], []
    threads = [threading.Thread(target=subscriber, args=(port, s, None, stable[s], lock, errors), daemon=True)
               for s in subjects]
    threads.append(threading.Thread(target=subscriber, args=(port, "soak.stable.*", None, stable["wildcard"], lock, errors), daemon=True))
    for _ in range(3):
        threads.append(threading.Thread(target=subscriber, args=(port, "soak.stable.>", "workers", stable["queue"], lock, errors), daemon=True))
    for t in threads:
        t.start()
    time.sleep(1)
    counters = {"churn": 0}
    churn = [threading.Thread(target=churner, args=(port, i, counters), daemon=True) for i in range(a.churners)]
    for t in churn:
        t.start()
    pub = Conn(port)

    def answer_pings():
        # The server pings every connection (ping_interval); one that never
        # answers is closed as stale, so the publisher reads too.
        try:
            while not STOP.is_set():
                if pub.line() == b"PING":
                    pub.s.sendall(b"PONG\r\n")
        except (EOFError, OSError):
            if not STOP.is_set():
                errors.append(b"publisher disconnected")

    pub.s.settimeout(None)
    threading.Thread(target=answer_pings, daemon=True).start()
    sent = {s: 0 for s in subjects}
    start = time.time()
    end = start + a.minutes * 60
    next_sample = start
    samples = []
    cpu0 = cpu_seconds(proc.pid)
    n = 0
    while time.time() < end:
        now = time.time()
        if now >= next_sample:
            samples.append((now - start, rss_mb(proc.pid), cpu_seconds(proc.pid) - cpu0))
            next_sample += a.sample
        batch = b""
        for _ in range(max(1, a.rate // 100)):
            s = subjects[n % len(subjects)]
            sent[s] += 1
            body = str(sent[s]).encode()
            batch += b"PUB %s %d\r\n%s\r\n" % (s.encode(), len(body), body)
            n += 1
        pub.s.sendall(batch)
        time.sleep(max(0, start + n / a.rate - time.time()))
    pub.s.sendall(b"PING\r\n")
    time.sleep(3)
    samples.append((time.time() - start, rss_mb(proc.pid), cpu_seconds(proc.pid) - cpu0))
    STOP.set()
    total_sent = sum(sent.values())
    report = []
    for s in subjects:
        got = [v for subj, v in stable[s]]
        report.append((s, sent[s] - len(got), got == list(range(1, sent[s] + 1))))
    wild = {}
    for subj, v in stable["wildcard"]:
        wild.setdefault(subj.decode(), []).append(v)
    report.append(("soak.stable.* (wildcard)", total_sent - len(stable["wildcard"]),
                   all(wild.get(s, []) == list(range(1, sent[s] + 1)) for s in subjects)))
    q = sorted((subj.decode(), v) for subj, v in stable["queue"])
    want = sorted((s, v) for s in subjects for v in range(1, sent[s] + 1))
    report.append(("soak.stable.> queue group of 3", total_sent - len(q), q == want))
    delivered = total_sent * 3  # exact + wildcard + one queue member, per message
    cpu = samples[-1][2]
    print(f"server {a.server}: {a.minutes} min, {total_sent} stable messages, {counters['churn']} churn connections")
    for name, lost, exact in report:
        print(f"  {name}: lost {lost}, every message once and in order: {exact}")
    print(f"  errors: {len(errors)} {errors[:3]}")
    print("  RSS over time (s, MB): " + ", ".join(f"{t:.0f}:{r:.1f}" for t, r, _ in samples))
    print(f"  server CPU {cpu:.1f} s, {cpu / (delivered / 1e6):.2f} s per million stable deliveries (churn traffic included)")
    proc.terminate()
    proc.wait()


if __name__ == "__main__":
    main()
