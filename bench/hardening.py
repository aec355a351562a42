#!/usr/bin/env python3
"""The attacks of the HTTP/2 and shared-tier hardening round, against a running release gateway
(bench/hardening.sh starts it with HTTPS, HTTP/2 and the shared tier). Prints what each left:

  methods   N anonymous HTTP/2 requests to /healthz, each with a made-up :method: the number of
            veeam_gateway_http_requests_total series before and after, and the gateway's RSS.
  stalled   C HTTP/2 connections with S streams each whose HEADERS never end the stream: how many
            connections are still open after 10 s and after 20 s.
  pages     N list requests from one administrator for distinct empty pages over HTTP/1.1
            keep-alive, q of one visible character and 2,500 combining marks (offset 0..N-1),
            then the same with the longest q allowed: statuses and RSS.

Measures only; asserts nothing (the tests do). Needs the `h2` package (pip install h2).
"""
import argparse
import json
import socket
import ssl
import time
import urllib.parse

import h2.config
import h2.connection
import h2.events


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tls_socket(port, ca, alpn):
    context = ssl.create_default_context(cafile=ca)
    context.set_alpn_protocols([alpn])
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


class H2:
    def __init__(self, port, ca):
        self.sock = tls_socket(port, ca, "h2")
        self.conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, validate_outbound_headers=False))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.closed = False

    def request(self, method, path, end=True, headers=()):
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, [(":method", method), (":scheme", "https"), (":authority", "localhost"), (":path", path), *headers], end_stream=end)
        self.sock.sendall(self.conn.data_to_send())
        return stream

    def pump(self, until_streams=None, timeout=10):
        """Reads frames until the given streams ended (or the connection closed); their statuses."""
        statuses = {}
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.5)
        while time.monotonic() < deadline:
            if until_streams is not None and all(s in statuses for s in until_streams):
                break
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                if until_streams is None:
                    break
                continue
            except OSError:
                self.closed = True
                break
            if not data:
                self.closed = True
                break
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    statuses[event.stream_id] = dict(event.headers).get(b":status", b"?").decode()
                elif isinstance(event, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    self.closed = True
            out = self.conn.data_to_send()
            if out:
                try:
                    self.sock.sendall(out)
                except OSError:
                    self.closed = True
                    break
        return statuses

    def is_open(self):
        """Whether the server still holds the connection: reads what is there (no EOF, no reset)."""
        if self.closed:
            return False
        self.sock.settimeout(0.05)
        while True:
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError, ssl.SSLWantReadError):
                return True
            except OSError:
                self.closed = True
                return False
            if not data:
                self.closed = True
                return False
            try:
                events = self.conn.receive_data(data)
            except Exception:  # frames on streams the client forgot: the connection still counts
                events = []
            if any(isinstance(event, h2.events.ConnectionTerminated) for event in events):
                self.closed = True
                return False


def series(port, ca):
    sock = tls_socket(port, ca, "http/1.1")
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    lines = [l for l in data.decode(errors="replace").splitlines() if l.startswith("veeam_gateway_http_requests_total{")]
    methods = sorted({l.split('method="', 1)[1].split('"', 1)[0] for l in lines if 'method="' in l})
    return len(lines), methods


def methods_attack(args):
    before, _ = series(args.port, args.ca)
    rss_before = rss_mib(args.pid)
    conn = H2(args.port, args.ca)
    sent = 0
    answered = {}
    while sent < args.requests:
        batch = [conn.request(f"X{sent + i}Y", "/healthz") for i in range(min(50, args.requests - sent))]
        sent += len(batch)
        answered.update(conn.pump(batch))
    after, methods = series(args.port, args.ca)
    statuses = {}
    for status in answered.values():
        statuses[status] = statuses.get(status, 0) + 1
    print(json.dumps({"attack": "methods", "requests": sent, "statuses": statuses, "series_before": before, "series_after": after,
                      "methods_recorded": methods, "rss_before_mib": round(rss_before, 1), "rss_after_mib": round(rss_mib(args.pid), 1)}))


def stalled_attack(args):
    connections = []
    for _ in range(args.connections):
        conn = H2(args.port, args.ca)
        for _ in range(args.streams):
            conn.request("GET", "/healthz", end=False)
        conn.pump(until_streams=None, timeout=0.5)
        connections.append(conn)
    started = time.monotonic()
    result = {"attack": "stalled", "connections": args.connections, "streams_each": args.streams}
    for mark in (10, 20):
        while time.monotonic() - started < mark:
            for conn in connections:
                conn.is_open()
            time.sleep(0.5)
        result[f"open_after_{mark}s"] = sum(1 for conn in connections if conn.is_open())
    print(json.dumps(result))


def pages_attack(args):
    def run(q, count):
        rss_before = rss_mib(args.pid)
        statuses = {}
        sock = None
        batch = 200
        for start in range(0, count, batch):
            if sock is None:
                sock = tls_socket(args.port, args.ca, "http/1.1")
            requests = b"".join(
                f"GET /v1/tenants?q={q}&limit=1&offset={offset} HTTP/1.1\r\nHost: x\r\nX-API-Key: {args.key}\r\n\r\n".encode()
                for offset in range(start, min(start + batch, count)))
            sock.sendall(requests)
            wanted = min(batch, count - start)
            buffer = b""
            got = 0
            sock.settimeout(20)
            while got < wanted:
                head_end = buffer.find(b"\r\n\r\n")
                if head_end < 0:
                    chunk = sock.recv(262144)
                    if not chunk:
                        break
                    buffer += chunk
                    continue
                head = buffer[:head_end].decode(errors="replace")
                status = head.split(" ", 2)[1]
                length = 0
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                while len(buffer) < head_end + 4 + length:
                    chunk = sock.recv(262144)
                    if not chunk:
                        break
                    buffer += chunk
                buffer = buffer[head_end + 4 + length:]
                statuses[status] = statuses.get(status, 0) + 1
                got += 1
            if got < wanted:
                sock.close()
                sock = None
        if sock is not None:
            sock.close()
        return {"statuses": statuses, "rss_before_mib": round(rss_before, 1), "rss_after_mib": round(rss_mib(args.pid), 1)}

    marks = "a" + "%CC%81" * 2500
    longest = "a" + "%CC%81" * 99
    print(json.dumps({"attack": "pages", "requests": args.requests, "q_2500_marks": run(marks, args.requests),
                      "q_199_bytes": run(longest, args.requests)}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("attack", choices=["methods", "stalled", "pages"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--key", default="")
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--connections", type=int, default=40)
    p.add_argument("--streams", type=int, default=50)
    args = p.parse_args()
    {"methods": methods_attack, "stalled": stalled_attack, "pages": pages_attack}[args.attack](args)


if __name__ == "__main__":
    main()
