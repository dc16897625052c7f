"""
d0001: malformed requests over a raw socket. Each gets one response with
the status the spec names, and the connection then closes cleanly (FIN,
not RST: the response must not be lost to a reset) before a deadline.
Nothing reaches the origin, and the edge keeps serving.
"""

import pytest

import harness

H = "Host: e2e\r\n"
LONG_TARGET = "/" + "a" * 10000

CASES = [
    # (id, request bytes, status)
    ("garbage-line", b"HELLO\r\n\r\n", 400),
    ("no-version", b"GET /x\r\n\r\n", 400),
    ("bare-lf", b"GET /x HTTP/1.1\nHost: e2e\n\n", 400),
    ("bare-lf-in-headers", b"GET /x HTTP/1.1\r\nHost: e2e\nX-A: b\r\n\r\n",
     400),
    ("obs-fold", ("GET /x HTTP/1.1\r\n" + H + "X-A: b\r\n c\r\n\r\n").encode(),
     400),
    ("space-before-colon", b"GET /x HTTP/1.1\r\nHost : e2e\r\n\r\n", 400),
    ("nul-in-header", b"GET /x HTTP/1.1\r\nHost: e2e\r\nX-A: a\x00b\r\n\r\n",
     400),
    ("cl-and-te", ("GET /x HTTP/1.1\r\n" + H + "Content-Length: 5\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n").encode(),
     400),
    ("duplicate-cl-different", ("GET /x HTTP/1.1\r\n" + H +
                                "Content-Length: 0\r\nContent-Length: 5\r\n"
                                "\r\n").encode(), 400),
    ("duplicate-cl-same", ("GET /x HTTP/1.1\r\n" + H + "Content-Length: 0\r\n"
                           "Content-Length: 0\r\n\r\n").encode(), 400),
    ("bad-cl", ("GET /x HTTP/1.1\r\n" + H + "Content-Length: -1\r\n\r\n")
     .encode(), 400),
    ("missing-host-1.1", b"GET /x HTTP/1.1\r\nUser-Agent: t\r\n\r\n", 400),
    ("two-hosts", ("GET /x HTTP/1.1\r\n" + H + H + "\r\n").encode(), 400),
    ("target-not-origin-form", ("GET x HTTP/1.1\r\n" + H + "\r\n").encode(),
     400),
    ("request-line-too-long", ("GET %s HTTP/1.1\r\n%s\r\n" % (LONG_TARGET, H))
     .encode(), 414),
    ("too-many-headers", ("GET /x HTTP/1.1\r\n" + H +
                          "".join("X-H%d: v\r\n" % i for i in range(150)) +
                          "\r\n").encode(), 431),
    ("header-too-large", ("GET /x HTTP/1.1\r\n" + H + "X-Big: " + "b" * 40000 +
                          "\r\n\r\n").encode(), 431),
    # far more than the edge reads before answering: the rest is still
    # unread when it closes, and closing then (without first half-closing
    # and draining, RFC 9112 9.6) resets the connection
    ("header-huge", ("GET /x HTTP/1.1\r\n" + H + "X-Big: " + "b" * 262144 +
                     "\r\n\r\n").encode(), 431),
    ("request-line-huge", ("GET /%s HTTP/1.1\r\n%s\r\n" % ("a" * 262144, H))
     .encode(), 414),
    ("http-2.0", ("GET /x HTTP/2.0\r\n" + H + "\r\n").encode(), 505),
    ("http-3.0", ("GET /x HTTP/3.0\r\n" + H + "\r\n").encode(), 505),
    ("te-gzip", ("GET /x HTTP/1.1\r\n" + H + "Transfer-Encoding: gzip\r\n\r\n")
     .encode(), 501),
]


@pytest.fixture
def e(edge_s3):
    return edge_s3()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed(s3, e, case):
    name, req, status = case
    raw = harness.raw_exchange(e.port, req, timeout=5)
    assert not raw.reset, "%s: connection reset: %r" % (name, raw)
    assert raw.eof, "%s: connection not closed within 5 s: %r" % (name, raw)
    resps, rest = harness.parse_responses(raw.data)
    assert len(resps) == 1 and rest == b"", raw
    r = resps[0]
    assert r.status == status, (name, r)
    assert r.header("connection", "").lower() == "close", r
    assert int(r.header("content-length", "-1")) == len(r.body)
    assert s3.stats()["requests"] == []
    e.check_alive()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH",
                                    "OPTIONS"])
def test_method_not_allowed(s3, e, method):
    req = ("%s /x HTTP/1.1\r\nHost: e2e\r\nContent-Length: 3\r\n"
           "Connection: close\r\n\r\nabc" % method).encode()
    raw = harness.raw_exchange(e.port, req, timeout=5)
    assert raw.eof and not raw.reset, raw
    resps, rest = harness.parse_responses(raw.data)
    assert len(resps) == 1 and rest == b"", raw
    assert resps[0].status == 405
    assert resps[0].header("allow") == "GET, HEAD"
    assert s3.stats()["requests"] == []


def test_still_serving_after_garbage(s3, e, get):
    s3.put("d0001/ok.txt", b"still here")
    for _, req, _ in CASES:
        harness.raw_exchange(e.port, req, timeout=5)
    r = get(e.url("/d0001/ok.txt"))
    assert r.status == 200 and r.body == b"still here"
