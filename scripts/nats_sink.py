#!/usr/bin/env python3
"""A NATS "server" that accepts publishers and drops what they send: INFO on
connect, PONG for every PING, nothing else. Used by compare.py to measure a load
generator's own publishing ceiling, with no real server as the limit.

Usage: scripts/nats_sink.py PORT   (listens on 127.0.0.1:PORT until killed)
Only for publishers whose payloads never contain "PING\\r\\n".
"""
import socket, sys, threading

INFO = (b'INFO {"server_id":"sink","server_name":"sink","version":"2.9.10","proto":1,'
        b'"go":"none","host":"127.0.0.1","port":0,"headers":true,"max_payload":1048576}\r\n')


def serve(conn):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.sendall(INFO)
    buf = bytearray(4 << 20)
    view = memoryview(buf)
    carry = 0  # bytes kept from the previous read: a PING split across reads
    try:
        while True:
            n = conn.recv_into(view[carry:])
            if n == 0:
                return
            end = carry + n
            pos = buf.find(b"PING\r\n", 0, end)
            while pos >= 0:
                conn.sendall(b"PONG\r\n")
                pos = buf.find(b"PING\r\n", pos + 6, end)
            keep = min(5, end)
            buf[0:keep] = buf[end - keep:end]
            carry = keep
    except OSError:
        return
    finally:
        conn.close()


def main():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", int(sys.argv[1])))
    ls.listen(64)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
