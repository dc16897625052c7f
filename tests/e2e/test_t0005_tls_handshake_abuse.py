"""
t0005: clients that do not finish a TLS handshake disturb nobody.
Plain HTTP, random bytes or a record announcing more than it sends on a
TLS port get the connection closed (with an alert at most, never an HTTP
answer), counted in the debug log. Clients that stall (silent, or
sending a partial ClientHello, or trickling it byte by byte) are dropped
at handshake_timeout for the whole handshake, however slowly they send;
meanwhile other clients download normally. Stalled handshakes count
against max_connections and free their slots when dropped. Handshakes
still pending when s3edge stops end with it, cleanly.
"""

import os
import socket
import threading
import time

import harness
from tlsutil import https_get, pki, tls_config  # noqa: F401 (pki: fixture)

# A TLS record header (handshake, TLS 1.0 record version, 512 bytes) and
# the start of a ClientHello: a client that never sends the rest.
PARTIAL_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x11" * 32


def closes_within(sock, timeout):
    """Read until the server closes or resets; (closed, seconds, bytes)."""
    t0 = time.monotonic()
    got = b""
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            b = sock.recv(4096)
        except socket.timeout:
            break
        except (ConnectionResetError, BrokenPipeError):
            return True, time.monotonic() - t0, got
        if not b:
            return True, time.monotonic() - t0, got
        got += b
    return False, time.monotonic() - t0, got


def test_garbage_is_refused(fault, edge, pki, tmp_path):
    fault.put("t0005/o.bin", size=20000, seed=9)
    e = edge(config=tls_config(pki, fault), env={})
    for junk in (b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", os.urandom(3000),
                 b"\x16\x03\x01\xff\xff" + os.urandom(100), b"\x15\x03\x03\x00\x02\x02\x28"):
        r = harness.raw_exchange(e.port, junk, timeout=5)
        assert (r.eof or r.reset) and r.elapsed < 3, (junk[:20], r)
        assert not r.data.startswith(b"HTTP/"), r
        # at most a TLS alert record (content type 21)
        assert r.data == b"" or r.data[0] == 0x15, r
    r = https_get(pki, e.port, "/t0005/o.bin", workdir=tmp_path)
    assert r.status == 200 and r.body == harness.object_bytes(20000, 9), r
    harness.wait_for(lambda: e.stderr_text().count("TLS handshake failed") >= 4, 5,
                     "four failed handshakes in the log")


def test_stalled_handshakes_are_dropped(fault, edge, pki, tmp_path):
    fault.put("t0005/o.bin", size=300000, seed=10)
    e = edge(config=tls_config(pki, fault, tls_extra="handshake_timeout: 3s"), env={})
    silent = [socket.create_connection(("127.0.0.1", e.port)) for _ in range(20)]
    partial = [socket.create_connection(("127.0.0.1", e.port)) for _ in range(20)]
    for s in partial:
        s.sendall(PARTIAL_HELLO)
    t0 = time.monotonic()

    # one byte every 0.2 s: bytes keep arriving, the deadline stays
    trickle = socket.create_connection(("127.0.0.1", e.port))
    stop = threading.Event()

    def drip():
        for b in PARTIAL_HELLO:
            if stop.wait(0.2):
                return
            try:
                trickle.send(bytes([b]))
            except OSError:
                return
    dripper = threading.Thread(target=drip)
    dripper.start()
    try:
        # others are served meanwhile, at once
        r = https_get(pki, e.port, "/t0005/o.bin", workdir=tmp_path)
        assert r.status == 200 and r.body == harness.object_bytes(300000, 10), r
        # served while the stalled handshakes are still held (no clock:
        # a busy machine may be slow, the order is what matters)
        for s in silent[:3] + partial[:3]:
            try:
                s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                still_open = False
            except BlockingIOError:
                still_open = True
            assert still_open, "served only after the stalled ones went"
        r = https_get(pki, e.port, "/t0005/o.bin", "--http2", workdir=tmp_path)
        assert r.status == 200 and r.info.get("http_version") == "2", r

        for s in silent + partial + [trickle]:
            closed, _, data = closes_within(s, 10 - (time.monotonic() - t0))
            assert closed, "a stalled handshake was not dropped"
            assert not data.startswith(b"HTTP/")
        elapsed = time.monotonic() - t0
        assert 2.9 <= elapsed < 10, elapsed
    finally:
        stop.set()
        dripper.join(5)
        for s in silent + partial + [trickle]:
            s.close()
    harness.wait_for(lambda: e.stderr_text().count(
        "TLS handshake not done within 3000ms") == 41, 5, "41 timeouts in the log")


def test_stalled_handshakes_hold_connection_slots(fault, edge, pki, tmp_path):
    fault.put("t0005/o.bin", size=1000, seed=11)
    e = edge(config=tls_config(pki, fault, tls_extra="handshake_timeout: 1s",
                               extra="limits:\n  max_connections: 3\n"), env={})
    stalled = [socket.create_connection(("127.0.0.1", e.port)) for _ in range(3)]
    try:
        harness.wait_for(lambda: "connection limit 3 reached" in e.stderr_text(), 5,
                         "the connection limit")
        t0 = time.monotonic()
        r = https_get(pki, e.port, "/t0005/o.bin", workdir=tmp_path, timeout=10)
        took = time.monotonic() - t0
        assert r.status == 200 and r.body == harness.object_bytes(1000, 11), r
        # accepted once the stalled handshakes were dropped, not before
        assert 0.5 < took < 5, took
    finally:
        for s in stalled:
            s.close()


def test_pending_handshakes_at_stop(fault, edge, pki):
    e = edge(config=tls_config(pki, fault, tls_extra="handshake_timeout: 30s"), env={})

    def fds():
        return len(os.listdir("/proc/%d/fd" % e.proc.pid))
    # the harness's own probe of the port is a handshake too: gone first
    harness.wait_for(lambda: "TLS handshake failed: the client closed" in e.stderr_text(), 5,
                     "the end of the start-up probe")
    before = fds()
    socks = [socket.create_connection(("127.0.0.1", e.port)) for _ in range(10)]
    try:
        for s in socks[:5]:
            s.sendall(PARTIAL_HELLO)
        harness.wait_for(lambda: fds() >= before + 10, 5, "s3edge to accept them all")
        problems = e.stop()
        assert problems == [], problems
        for s in socks:
            closed, took, _ = closes_within(s, 5)
            assert closed, "a pending handshake outlived the server"
    finally:
        for s in socks:
            s.close()
