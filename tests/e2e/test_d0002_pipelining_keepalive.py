"""
d0002: HTTP/1.1 connection handling: pipelined requests in one write are
answered in order (misses, hits, a HEAD and a 404 mixed), keep-alive
connections are reused, HTTP/1.0 closes unless asked not to.
"""

import subprocess

import harness


def put3(fault):
    bodies = {}
    for name, size in (("a", 10), ("b", 70000), ("c", 1)):
        key = "d0002/%s.bin" % name
        fault.put(key, size=size, seed=size)
        bodies[name] = harness.object_bytes(size, size)
    return bodies


def test_pipelined_in_order(fault, edge_fault):
    bodies = put3(fault)
    fault.fault("d0002/a.bin", first_byte_delay=0.3)
    e = edge_fault()
    reqs = [("GET", "a"), ("HEAD", "b"), ("GET", "missing"), ("GET", "c"),
            ("GET", "b"), ("GET", "a")]
    data = b""
    for i, (m, n) in enumerate(reqs):
        data += ("%s /d0002/%s.bin HTTP/1.1\r\nHost: e2e\r\n%s\r\n" % (
            m, n, "Connection: close\r\n" if i == len(reqs) - 1 else "")
        ).encode()
    raw = harness.raw_exchange(e.port, data, timeout=10)
    assert raw.eof and not raw.reset, raw
    resps, rest = harness.parse_responses(raw.data, [m for m, _ in reqs])
    assert rest == b""
    assert [r.status for r in resps] == [200, 200, 404, 200, 200, 200]
    assert resps[0].body == bodies["a"]
    assert resps[1].body == b"" and \
        resps[1].header("content-length") == str(len(bodies["b"]))
    assert resps[3].body == bodies["c"]
    assert resps[4].body == bodies["b"]
    assert resps[5].body == bodies["a"]
    assert resps[5].header("x-cache") == "Hit from s3edge"


def test_keepalive_reuse(fault, edge_fault, tmp_path):
    bodies = put3(fault)
    e = edge_fault()
    r = subprocess.run(["curl", "-sS", "--http1.1", "--max-time", "20",
                        "-w", "[%{http_code} %{num_connects}]",
                        e.url("/d0002/a.bin"), e.url("/d0002/c.bin"),
                        e.url("/d0002/a.bin")],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (bodies["a"] + b"[200 1]" + bodies["c"] + b"[200 0]"
                        + bodies["a"] + b"[200 0]"), r.stdout
    lines = e.wait_access(3)
    assert len({l["client"] for l in lines}) == 1, lines


def test_http10(fault, edge_fault):
    bodies = put3(fault)
    e = edge_fault()
    raw = harness.raw_exchange(e.port, b"GET /d0002/c.bin HTTP/1.0\r\n\r\n",
                               timeout=5)
    assert raw.eof and not raw.reset, raw
    resps, rest = harness.parse_responses(raw.data)
    assert [r.status for r in resps] == [200] and rest == b""
    assert resps[0].body == bodies["c"]
    two = (b"GET /d0002/c.bin HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
           b"GET /d0002/a.bin HTTP/1.0\r\n\r\n")
    raw = harness.raw_exchange(e.port, two, timeout=5)
    assert raw.eof and not raw.reset, raw
    resps, rest = harness.parse_responses(raw.data)
    assert [r.body for r in resps] == [bodies["c"], bodies["a"]]
