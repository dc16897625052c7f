"""
b0008: a client gives up while the origin is still thinking (before the
response head). The edge must not crash when the head then arrives, and a
client asking for the same key meanwhile gets the whole object.
"""

import socket
import subprocess
import time

import harness

KEY = "b0008/slow-head.bin"


def test_client_gone_before_head(fault, edge_fault, get, tmp_path):
    fault.put(KEY, size=200000, seed=88)
    data = harness.object_bytes(200000, 88)
    fault.fault(KEY, first_byte_delay=1.0, times=1)
    e = edge_fault()

    s = socket.create_connection(("127.0.0.1", e.port), timeout=5)
    s.sendall(("GET /%s HTTP/1.1\r\nHost: e2e\r\n\r\n" % KEY).encode())
    harness.wait_for(lambda: fault.requests_for(KEY), 5,
                     "the edge to ask the origin")
    # a second client for the same key, while the first is still waiting
    out = tmp_path / "second.bin"
    p = subprocess.Popen(["curl", "-sS", "--http1.1", "--max-time", "20",
                          "-o", str(out), "-w", "%{http_code}",
                          e.url("/" + KEY)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.2)
    s.close()       # the first client leaves before the head
    try:
        so, se = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert so == b"200" and p.returncode == 0, (so, se)
    assert out.read_bytes() == data

    r = get(e.url("/" + KEY))
    assert r.status == 200 and r.body == data
    e.check_alive()
