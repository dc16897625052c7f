"""
d0003: request framing on one connection. A GET with a body (allowed,
meaningless) has its body skipped, so the next pipelined request is read
where it starts (no request smuggling); a head sent one byte at a time is
parsed like one sent at once; many more pipelined requests than the
pipeline depth are all answered, in order; a head that never ends is cut
off by the client header timeout.
"""

import socket
import time

import harness


def setup_objects(fault):
    fault.put("d0003/a.txt", data=b"AAAA")
    fault.put("d0003/b.txt", data=b"BBBBBBBB")


def test_get_with_body_is_skipped(fault, edge_fault):
    setup_objects(fault)
    e = edge_fault()
    smuggled = b"GET /d0003/b.txt HTTP/1.1\r\nHost: e2e\r\n\r\n"
    req = (b"GET /d0003/a.txt HTTP/1.1\r\nHost: e2e\r\nContent-Length: %d\r\n"
           b"\r\n" % len(smuggled) + smuggled +
           b"GET /d0003/a.txt HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n"
           b"\r\n")
    raw = harness.raw_exchange(e.port, req, timeout=5)
    resps, rest = harness.parse_responses(raw.data)
    assert raw.eof, raw
    # either the body was skipped (two answers, both /a), or the request
    # was refused and the connection closed; never an answer for /b
    bodies = [r.body for r in resps]
    assert b"BBBBBBBB" not in bodies, "the body was taken for a request"
    if resps and resps[0].status == 200:
        assert bodies == [b"AAAA", b"AAAA"], resps
    else:
        assert len(resps) == 1 and resps[0].status == 400, resps
    assert fault.key_stats("d0003/b.txt")["requests"] == 0


def test_post_body_not_taken_for_a_request(fault, edge_fault):
    setup_objects(fault)
    e = edge_fault()
    smuggled = b"GET /d0003/b.txt HTTP/1.1\r\nHost: e2e\r\n\r\n"
    req = (b"POST /d0003/a.txt HTTP/1.1\r\nHost: e2e\r\nContent-Length: %d\r\n"
           b"\r\n" % len(smuggled) + smuggled)
    raw = harness.raw_exchange(e.port, req, timeout=5, shut_wr=True)
    resps, rest = harness.parse_responses(raw.data)
    assert [r.status for r in resps] == [405], resps
    assert fault.key_stats("d0003/b.txt")["requests"] == 0


def test_byte_by_byte_head(fault, edge_fault):
    setup_objects(fault)
    e = edge_fault()
    req = (b"GET /d0003/a.txt HTTP/1.1\r\nHost: e2e\r\nUser-Agent: slow\r\n"
           b"Accept: */*\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", e.port), timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(req)):
            s.sendall(req[i:i + 1])
            time.sleep(0.002)
        data = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            b = s.recv(65536)
            if not b:
                break
            data += b
    resps, rest = harness.parse_responses(data)
    assert [(r.status, r.body) for r in resps] == [(200, b"AAAA")], data


def test_deep_pipeline(fault, edge_fault):
    setup_objects(fault)
    e = edge_fault()
    n = 60
    names = ["a" if i % 3 else "b" for i in range(n)]
    req = b"".join(b"GET /d0003/%s.txt HTTP/1.1\r\nHost: e2e\r\n\r\n"
                   % x.encode() for x in names)
    req += b"GET /d0003/a.txt HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n"
    raw = harness.raw_exchange(e.port, req, timeout=10)
    assert raw.eof and not raw.reset, raw
    resps, rest = harness.parse_responses(raw.data)
    assert rest == b""
    want = [b"AAAA" if x == "a" else b"BBBBBBBB" for x in names] + [b"AAAA"]
    assert [r.body for r in resps] == want
    assert all(r.status == 200 for r in resps)


def test_client_header_timeout(fault, edge, tmp_path):
    setup_objects(fault)
    cfg = """\
listen:
  - $listen
log:
  access_log: $access_log
limits:
  client_header_timeout: 1s
origins:
  - name: f
    endpoint: %s
    bucket: %s
    credentials:
      source: anonymous
distributions:
  - name: d
    origin: f
""" % (fault.url, fault.BUCKET)
    e = edge(config=cfg, env={})
    t0 = time.monotonic()
    raw = harness.raw_exchange(e.port, b"GET /d0003/a.txt HTTP/1.1\r\nHo",
                               timeout=10)
    took = time.monotonic() - t0
    assert raw.eof or raw.reset, "still open after 10 s: %r" % raw
    assert 0.9 <= took < 6, took
    resps, rest = harness.parse_responses(raw.data)
    assert all(r.status == 408 for r in resps), resps
    assert fault.stats()["requests"] == []
