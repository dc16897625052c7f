"""
m0003: forwarded request bodies. PUT, POST and PATCH bodies of several
MiB reach the origin byte for byte (its SHA-256 of what arrived, and the
one it echoes), with Content-Length and chunked from HTTP/1.1 clients and
as DATA frames over HTTP/2 (E2E_PROTO); the origin's answer comes back
with its status and fields, never cached. A body over max_request_body is
a 413: with a Content-Length nothing is forwarded; a chunked one that
outgrows the limit has its origin connection dropped before the end, so
the origin never sees a complete body. An HTTP/1.1 connection carries
pipelined requests after a forwarded body. A body that stalls for
client_send_timeout is given up: 408, and the origin never sees its end.
"""

import json

import harness

CONFIG = """\
listen:
  - $listen
log:
  access_log: $access_log
origins:
  - name: app
    type: http
    endpoint: %(url)s
distributions:
  - name: d
    origin: app
    allowed_methods: [GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE]
    max_request_body: %(limit)s
"""

SIZE = 5 * 1024 * 1024 + 123


def make_edge(edge, plain, limit="8MiB"):
    return edge(config=CONFIG % {"url": plain.url, "limit": limit})


def upload_file(tmp_path, size, seed):
    data = harness.object_bytes(size, seed)
    p = tmp_path / ("up%d.bin" % seed)
    p.write_bytes(data)
    return p, harness.sha256(data)


def test_put_content_length(plain, edge, get, tmp_path):
    e = make_edge(edge, plain)
    p, digest = upload_file(tmp_path, SIZE, 31)
    r = get(e.url("/m0003/put.bin?v=1"), "-T", str(p), "-H", "Content-Type: application/x-test",
            "-H", "X-App-Tag: t1", "-H", "If-None-Match: *")
    assert r.status == 201, r
    assert json.loads(r.body) == {"length": SIZE, "sha256": digest}
    assert r.header("location") == "/m0003/put.bin"
    assert r.xcache() == "pass"
    (rec,) = plain.requests("/m0003/put.bin")
    assert rec["method"] == "PUT" and rec["complete"]
    assert rec["length"] == SIZE and rec["sha256"] == digest
    assert rec["target"] == "/m0003/put.bin?v=1"
    hdrs = {k.lower(): v for k, v in rec["headers"]}
    assert hdrs["content-length"] == str(SIZE)
    assert hdrs["content-type"] == "application/x-test"
    assert hdrs["x-app-tag"] == "t1"
    assert "expect" not in hdrs and "authorization" not in hdrs
    # each field once (HTTP/2 keeps preconditions apart too)
    names = [k.lower() for k, _ in rec["headers"]]
    assert names.count("if-none-match") == 1 and names.count("x-app-tag") == 1
    assert hdrs["if-none-match"] == "*"


def test_put_chunked(plain, edge, get, tmp_path):
    e = make_edge(edge, plain)
    p, digest = upload_file(tmp_path, SIZE, 32)
    # over HTTP/2 curl drops the field and sends DATA without a length
    r = get(e.url("/m0003/chunked.bin"), "-T", str(p), "-H", "Transfer-Encoding: chunked")
    assert r.status == 201, r
    assert json.loads(r.body) == {"length": SIZE, "sha256": digest}
    (rec,) = plain.requests("/m0003/chunked.bin")
    assert rec["complete"] and rec["sha256"] == digest


def test_post_and_patch(plain, edge, get, tmp_path):
    e = make_edge(edge, plain)
    p, digest = upload_file(tmp_path, 2 * 1024 * 1024, 33)
    r = get(e.url("/m0003/form"), "-X", "POST", "--data-binary", "@%s" % p)
    assert r.status == 200 and json.loads(r.body)["sha256"] == digest
    r = get(e.url("/m0003/form"), "-X", "PATCH", "--data-binary", "@%s" % p)
    assert r.status == 200 and json.loads(r.body)["sha256"] == digest
    # PUT and POST without a body still say how long it is
    r = get(e.url("/m0003/empty"), "-X", "POST")
    assert r.status == 200 and json.loads(r.body)["length"] == 0
    recs = plain.requests()
    assert [x["method"] for x in recs] == ["POST", "PATCH", "POST"]
    assert all(x["complete"] for x in recs)
    assert {k.lower(): v for k, v in recs[2]["headers"]}["content-length"] == "0"


def test_body_over_limit_with_length_is_413_and_not_forwarded(plain, edge, get, tmp_path):
    e = make_edge(edge, plain, limit="1MiB")
    p, _ = upload_file(tmp_path, 1024 * 1024 + 1, 34)
    # HTTP/1.1: over HTTP/2 the 413 is followed by RST_STREAM NO_ERROR
    # (RFC 9113 8.1), which curl 7.88 takes for a failure; m0004 checks
    # the HTTP/2 frames
    r = get(e.url("/m0003/big"), "-T", str(p), "--http1.1")
    assert r.status == 413, r
    assert plain.requests() == []
    # exactly the limit is fine
    p2, digest = upload_file(tmp_path, 1024 * 1024, 35)
    r = get(e.url("/m0003/big"), "-T", str(p2))
    assert r.status == 201 and json.loads(r.body)["sha256"] == digest


def test_chunked_body_over_limit_never_completes_at_origin(plain, edge, tmp_path):
    e = make_edge(edge, plain, limit="1MiB")
    body = harness.object_bytes(3 * 1024 * 1024, 36)
    req = (b"PUT /m0003/huge HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    step = 256 * 1024
    for i in range(0, len(body), step):
        part = body[i:i + step]
        req += b"%x\r\n" % len(part) + part + b"\r\n"
    req += b"0\r\n\r\n"
    res = harness.raw_exchange(e.port, req, timeout=10)
    (resp,), _ = harness.parse_responses(res.data, ["PUT"])
    assert resp.status == 413, resp
    assert resp.header("connection") == "close"
    recs = plain.requests("/m0003/huge")
    # the origin may have seen the start of the body, never its end
    assert all(not x["complete"] for x in recs)
    assert all(x["length"] <= 1024 * 1024 + 512 * 1024 for x in recs)


def test_keep_alive_and_pipelining_after_a_body(plain, edge):
    e = make_edge(edge, plain)
    plain.put("/m0003/after", b"after\n")
    body = harness.object_bytes(100000, 37)
    reqs = (b"PUT /m0003/p1 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
            + body
            + b"POST /m0003/p2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"5;ext=1\r\nhello\r\n0\r\nTrailer-X: y\r\n\r\n"
            + b"GET /m0003/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    res = harness.raw_exchange(e.port, reqs, timeout=10)
    rs, _ = harness.parse_responses(res.data, ["PUT", "POST", "GET"])
    assert [r.status for r in rs] == [201, 200, 200], rs
    assert json.loads(rs[0].body) == {"length": len(body), "sha256": harness.sha256(body)}
    assert json.loads(rs[1].body)["length"] == 5
    assert rs[2].body == b"after\n"
    assert [x["method"] for x in plain.requests()] == ["PUT", "POST", "GET"]


def test_origin_answering_early(plain, edge):
    e = make_edge(edge, plain)
    plain.fault(early_status=403)
    body = harness.object_bytes(2 * 1024 * 1024, 38)
    req = (b"PUT /m0003/early HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
           + body + b"GET /m0003/never HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    res = harness.raw_exchange(e.port, req, timeout=10)
    rs, _ = harness.parse_responses(res.data, ["PUT", "GET"])
    # the 403 comes back. If it came before the body was all read, the
    # rest cannot be told from a next request and the connection closes
    # after it; if the body was read to its end meanwhile, the connection
    # is in step and the next request is answered. Never is a body byte
    # taken for a request.
    assert rs[0].status == 403 and rs[0].body == b"early\n"
    assert len(rs) in (1, 2), rs
    paths = [x["path"] for x in plain.requests()]
    if len(rs) == 1:
        assert res.eof or res.reset
        assert paths == ["/m0003/early"]
    else:
        assert rs[1].status == 404
        assert paths == ["/m0003/early", "/m0003/never"]


STALL_CONFIG = CONFIG + """\
limits:
  client_send_timeout: 1s
"""


def test_stalled_body_is_408_and_cut_at_origin(plain, edge):
    e = edge(config=STALL_CONFIG % {"url": plain.url, "limit": "8MiB"})
    req = b"PUT /m0003/stall HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"z" * 10
    res = harness.raw_exchange(e.port, req, timeout=20)
    (resp,), _ = harness.parse_responses(res.data, ["PUT"])
    assert resp.status == 408 and resp.header("connection") == "close", resp
    assert res.eof or res.reset
    recs = plain.requests("/m0003/stall")
    assert len(recs) == 1 and not recs[0]["complete"] and recs[0]["length"] <= 10
