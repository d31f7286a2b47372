#!/usr/bin/env python3
"""Server memory per subscription: one connection subscribes to N subjects
(90% literal 4-token, 10% with a `*` token), then the server's RSS growth is
divided by N. Same run for every --server given:
    scripts/mem_subs.py --server target/release/natrium --server /work/peers/bin/nats-server -n 1000000
"""
import argparse, os, socket, subprocess, time

from benchcommon import free_port, rss_kb, wait_port


def subject(i):
    a, b, c = i % 97, (i // 97) % 101, i // 9797
    if i % 10 == 9:
        return b"app%d.*.dev%d.m%d" % (a, c, i)
    return b"app%d.svc%d.dev%d.m%d" % (a, b, c, i)


def run(binary, n, cpu):
    port = free_port()
    proc = subprocess.Popen(["taskset", "-c", cpu, binary, "-a", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(120)
        s.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
        got = b""
        while b"PONG" not in got:
            got += s.recv(4096)
        time.sleep(0.5)
        before = rss_kb(proc.pid)
        batch = []
        for i in range(n):
            batch.append(b"SUB %s %d\r\n" % (subject(i), i + 1))
            if len(batch) == 10000:
                s.sendall(b"".join(batch))
                batch = []
        s.sendall(b"".join(batch) + b"PING\r\n")
        got = b""
        while b"PONG" not in got:
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit(f"{binary} closed the connection: {got[-200:]!r}")
            got += chunk
        time.sleep(1)
        after = rss_kb(proc.pid)
        s.close()
        return before, after
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", action="append", required=True)
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("--cpu", default="0")
    a = ap.parse_args()
    for b in a.server:
        before, after = run(b, a.n, a.cpu)
        print(f"{os.path.basename(b)}: {a.n} subscriptions, RSS {before/1024:.1f} -> {after/1024:.1f} MB, "
              f"{(after-before)*1024/a.n:.0f} B per subscription")


if __name__ == "__main__":
    main()
