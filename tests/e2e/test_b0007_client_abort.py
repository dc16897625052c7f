"""
b0007: a client goes away in the middle of a miss. Nothing breaks: the
edge stays up (and clean under ASan), and the next client gets the whole
object, whether the first fill was finished, kept or dropped.
"""

import socket
import time

import harness

KEY = "b0007/abandoned.bin"
SIZE = 3 * 1024 * 1024


def test_client_abort_during_miss(fault, edge_fault, get):
    fault.put(KEY, size=SIZE, seed=77)
    digest = harness.sha256(harness.object_bytes(SIZE, 77))
    fault.fault(KEY, rate=4 * 1024 * 1024, times=1)
    e = edge_fault()

    with socket.create_connection(("127.0.0.1", e.port), timeout=10) as s:
        s.sendall(("GET /%s HTTP/1.1\r\nHost: e2e\r\n\r\n" % KEY).encode())
        got = 0
        deadline = time.monotonic() + 10
        for _ in range(100000):
            if got >= 200000:
                break
            assert time.monotonic() < deadline, "no bytes"
            b = s.recv(65536)
            assert b, "closed early"
            got += len(b)
        # hard close: RST with unread data
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")

    r = get(e.url("/" + KEY), timeout=30)
    assert r.status == 200 and r.rc == 0, r
    assert harness.sha256(r.body) == digest
    r = get(e.url("/" + KEY), timeout=30)
    assert r.status == 200 and harness.sha256(r.body) == digest
    assert r.xcache() == "hit"
    e.check_alive()
