"""
d0004: the configured connection limits, and that the head limits are not
tighter than configured: a head just under max_head_bytes and a header
count just under max_headers are served; a keep-alive connection idle for
client_idle_timeout is closed; a connection closes after
max_keepalive_requests responses, the last one saying Connection: close.
"""

import socket
import time

import pytest

import harness

CONFIG = """\
listen:
  - $listen
log:
  access_log: $access_log
limits:
  client_idle_timeout: 1s
  max_keepalive_requests: 3
origins:
  - name: f
    endpoint: %s
    bucket: %s
    credentials:
      source: anonymous
distributions:
  - name: d
    origin: f
"""


@pytest.fixture
def e(fault, edge):
    fault.put("d0004/x.txt", data=b"xx")
    return edge(config=CONFIG % (fault.url, fault.BUCKET), env={})


def test_big_but_allowed_heads(fault, edge_fault):
    fault.put("d0004/x.txt", data=b"xx")
    e = edge_fault()
    near_limit = ("GET /d0004/x.txt HTTP/1.1\r\nHost: e2e\r\nX-Pad: %s\r\n"
                  "Connection: close\r\n\r\n" % ("p" * 30000)).encode()
    many = ("GET /d0004/x.txt HTTP/1.1\r\nHost: e2e\r\n" +
            "".join("X-H%d: v\r\n" % i for i in range(95)) +
            "Connection: close\r\n\r\n").encode()
    for req in (near_limit, many):
        raw = harness.raw_exchange(e.port, req, timeout=5)
        resps, _ = harness.parse_responses(raw.data)
        assert [(r.status, r.body) for r in resps] == [(200, b"xx")], raw


def test_keepalive_idle_timeout(e):
    with socket.create_connection(("127.0.0.1", e.port), timeout=10) as s:
        s.sendall(b"GET /d0004/x.txt HTTP/1.1\r\nHost: e2e\r\n\r\n")
        data = b""
        t_resp = None
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            b = s.recv(65536)
            if not b:
                break
            data += b
            if t_resp is None and harness.parse_responses(data)[0]:
                t_resp = time.monotonic()
        else:
            raise AssertionError("idle connection still open after 8 s")
        idle = time.monotonic() - t_resp
    resps, rest = harness.parse_responses(data)
    assert [r.status for r in resps] == [200] and rest == b""
    assert 0.9 <= idle < 5, idle


def test_max_keepalive_requests(e):
    req = b"GET /d0004/x.txt HTTP/1.1\r\nHost: e2e\r\n\r\n" * 5
    raw = harness.raw_exchange(e.port, req, timeout=5)
    assert raw.eof, raw
    resps, rest = harness.parse_responses(raw.data)
    assert [r.status for r in resps] == [200, 200, 200], resps
    assert resps[2].header("connection", "").lower() == "close"
    assert resps[0].header("connection", "").lower() != "close"
