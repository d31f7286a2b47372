#!/usr/bin/env python3
"""Memory given back after a wave of connections: opens N connections (each
CONNECT + one SUB, or CONNECT only with --no-sub), reads the server's RSS,
closes them all, waits, reads RSS again. Run against natrium and nats-server
in the same run:
    scripts/mem_churn.py --server target/release/natrium --server /work/peers/bin/nats-server [--no-sub]
Prints per server: idle, peak and after-close RSS in MB (and KB per connection)."""
import argparse, os, socket, subprocess, time

from benchcommon import free_port, rss_kb, wait_port


def run(binary, n, settle, cpu, sub=True):
    port = free_port()
    proc = subprocess.Popen(["taskset", "-c", cpu, binary, "-a", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        time.sleep(0.5)
        idle = rss_kb(proc.pid)
        socks = []
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b'CONNECT {"verbose":false}\r\n'
                      + (b'SUB churn.%d 1\r\n' % i if sub else b'') + b'PING\r\n')
            socks.append(s)
        for s in socks:
            s.settimeout(10)
            got = b""
            while b"PONG" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        time.sleep(1)
        peak = rss_kb(proc.pid)
        for s in socks:
            s.close()
        time.sleep(settle)
        after = rss_kb(proc.pid)
        return idle, peak, after
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", action="append", required=True)
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--settle", type=float, default=6.0)
    ap.add_argument("--cpu", default="0")
    ap.add_argument("--no-sub", action="store_true", help="CONNECT and PING only, no SUB")
    a = ap.parse_args()
    for b in a.server:
        idle, peak, after = run(b, a.n, a.settle, a.cpu, not a.no_sub)
        what = "no SUB" if a.no_sub else "one SUB each"
        print(f"{os.path.basename(b)} ({what}): idle {idle/1024:.1f} MB, {a.n} connections {peak/1024:.1f} MB "
              f"({(peak-idle)/a.n:.1f} KB each), {a.settle:.0f} s after closing {after/1024:.1f} MB")


if __name__ == "__main__":
    main()
