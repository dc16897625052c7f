"""
h0002: the harness's fault-injecting origin itself (runs without s3edge):
S3 range and conditional semantics, and each fault doing what it says.
"""

import time

import harness


def ask(fault, req, timeout=5.0, methods=None):
    r = harness.raw_exchange(fault.port, req, timeout=timeout)
    resps, rest = harness.parse_responses(r.data, methods)
    return r, resps, rest


def get_req(path, *headers):
    h = "".join("%s\r\n" % x for x in headers)
    return ("GET %s HTTP/1.1\r\nHost: o\r\n%sConnection: close\r\n\r\n"
            % (path, h)).encode()


def test_ranges_and_conditionals(fault):
    info = fault.put("h2/obj", size=1000, seed=7, content_type="text/x-test",
                     metadata={"a": "b"})
    data = harness.object_bytes(1000, 7)
    assert info["sha256"] == harness.sha256(data)
    etag = info["etag"]
    p = "/fault/h2/obj"

    _, (r,), _ = ask(fault, get_req(p))
    assert r.status == 200 and r.body == data
    assert r.header("etag") == etag
    assert r.header("content-type") == "text/x-test"
    assert r.header("x-amz-meta-a") == "b"
    assert r.header("last-modified").endswith("GMT")

    cases = [("bytes=0-9", 0, 9), ("bytes=990-", 990, 999),
             ("bytes=-10", 990, 999), ("bytes=995-5000", 995, 999)]
    for rng, a, b in cases:
        _, (r,), _ = ask(fault, get_req(p, "Range: " + rng))
        assert r.status == 206, rng
        assert r.header("content-range") == "bytes %d-%d/1000" % (a, b)
        assert r.body == data[a:b + 1]
    for rng in ("bytes=1000-", "bytes=-0"):
        _, (r,), _ = ask(fault, get_req(p, "Range: " + rng))
        assert r.status == 416, rng
        assert r.header("content-range") == "bytes */1000"
        assert b"<Code>InvalidRange</Code>" in r.body
    _, (r,), _ = ask(fault, get_req(p, "Range: bytes=0-1,5-6"))
    assert r.status == 200 and r.body == data

    _, (r,), _ = ask(fault, get_req(p, 'If-Match: "nope"'))
    assert r.status == 412
    _, (r,), _ = ask(fault, get_req(p, "If-Match: " + etag))
    assert r.status == 200
    _, (r,), _ = ask(fault, get_req(p, "If-None-Match: " + etag))
    assert r.status == 304 and r.body == b"" and r.header("etag") == etag

    _, (r,), _ = ask(fault, b"HEAD " + p.encode()
                     + b" HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n",
                     methods=["HEAD"])
    assert r.status == 200 and r.header("content-length") == "1000"

    _, (r,), _ = ask(fault, get_req("/fault/h2/missing"))
    assert r.status == 404 and b"<Code>NoSuchKey</Code>" in r.body

    ks = fault.key_stats("h2/obj")
    assert ks["GET"] == 11 and ks["HEAD"] == 1
    assert ks["ranges"][:2] == ["bytes=0-9", "bytes=990-"]


def test_faults(fault):
    fault.put("h2/f", size=100000, seed=3)
    data = harness.object_bytes(100000, 3)
    p = "/fault/h2/f"

    fault.fault("h2/f", status=503, times=1)
    _, (r,), _ = ask(fault, get_req(p))
    assert r.status == 503 and b"<Code>SlowDown</Code>" in r.body
    _, (r,), _ = ask(fault, get_req(p))
    assert r.status == 200, "times=1 fault must be spent"

    fault.fault("h2/f", chunked=True, times=1)
    _, (r,), _ = ask(fault, get_req(p))
    assert r.header("transfer-encoding") == "chunked" and r.body == data

    fault.fault("h2/f", short_body=5000, times=1)
    raw, resps, rest = ask(fault, get_req(p))
    assert raw.eof and resps == []
    assert rest.endswith(data[:5000]) and b"Content-Length: 100000" in rest

    fault.fault("h2/f", reset_after=5000, times=1)
    raw, resps, rest = ask(fault, get_req(p))
    assert raw.reset or raw.eof
    assert resps == []

    fault.fault("h2/f", first_byte_delay=0.5, times=1)
    raw, (r,), _ = ask(fault, get_req(p))
    assert raw.elapsed >= 0.5 and r.body == data

    fault.fault("h2/f", never_answer=True, times=1)
    raw, resps, rest = ask(fault, get_req(p), timeout=0.5)
    assert resps == [] and rest == b"" and not raw.eof

    fault.fault("h2/f", rate=200000, times=1)
    t0 = time.monotonic()
    raw, (r,), _ = ask(fault, get_req(p))
    assert r.body == data and time.monotonic() - t0 >= 0.4
    rec = fault.requests_for("h2/f")[-1]
    assert rec["done"] and rec["bytes_sent"] == 100000
    assert rec["t_done"] - rec["t_first_byte"] >= 0.4


def test_keepalive_and_close(fault):
    fault.put("h2/k", data=b"hello")
    two = (b"GET /fault/h2/k HTTP/1.1\r\nHost: o\r\n\r\n"
           b"GET /fault/h2/k HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n")
    raw, resps, _ = ask(fault, two)
    assert [r.body for r in resps] == [b"hello", b"hello"] and raw.eof
    fault.fault(close=True)
    raw, resps, _ = ask(fault, two)
    assert [r.body for r in resps] == [b"hello"] and raw.eof
    assert resps[0].header("connection") == "close"


def test_connection_faults(fault):
    fault.put("h2/c", data=b"hello")
    two = (b"GET /fault/h2/c HTTP/1.1\r\nHost: o\r\n\r\n"
           b"GET /fault/h2/c HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n")
    fault.fault(drop_reused=True, times=1)
    raw, resps, _ = ask(fault, b"GET /fault/h2/c HTTP/1.1\r\nHost: o\r\n"
                        b"Connection: close\r\n\r\n")
    assert [r.body for r in resps] == [b"hello"], \
        "a fresh connection must not spend drop_reused"
    raw, resps, _ = ask(fault, two)
    assert [r.body for r in resps] == [b"hello"] and raw.eof
    assert resps[0].header("connection") is None
    raw, resps, _ = ask(fault, two)
    assert [r.body for r in resps] == [b"hello", b"hello"], "spent"

    fault.fault("h2/c", silent_close=True, times=1)
    raw, resps, _ = ask(fault, two)
    assert [r.body for r in resps] == [b"hello"] and raw.eof
    assert resps[0].header("connection") is None
