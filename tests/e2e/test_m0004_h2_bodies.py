"""
m0004: forwarded request bodies over HTTP/2, frame by frame. A body
without content-length (DATA frames up to END_STREAM) reaches a plain
origin whole (chunked); the stream's window is given back only as the
origin takes the bytes, so a body larger than the window is paced by our
WINDOW_UPDATEs and still arrives byte for byte. A content-length over
max_request_body is answered 413 at once, the stream then ended with
RST_STREAM NO_ERROR (RFC 9113 8.1), and nothing reaches the origin. A
method the distribution does not allow is a 405 with its Allow.
"""

import json
import struct

import harness
from h2client import (ACK, DATA, END_HEADERS, END_STREAM, HEADERS, NO_ERROR,
                      RST_STREAM, SETTINGS, WINDOW_UPDATE, RawH2, frame,
                      request_headers)

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
    hosts: [all.example.test]
    origin: app
    allowed_methods: [GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE]
    max_request_body: 40MiB
  - name: ro
    origin: app
"""

WINDOW = 16 * 1024 * 1024  # our SETTINGS_INITIAL_WINDOW_SIZE
FRAME = 16384


def put_headers(port, path, extra=(), host="all.example.test"):
    h = request_headers(port, path, method="PUT", extra=extra)
    return [(k, host) if k == ":authority" else (k, v) for k, v in h]


def stream_updates(r, sid):
    n = 0
    for f in r.frames:
        if f.type == WINDOW_UPDATE and f.sid == sid:
            n += struct.unpack(">I", f.payload[:4])[0] & 0x7fffffff
    return n


def settled(r):
    """Wait for our SETTINGS (RawH2 acknowledges them on arrival): until
    then a client may assume a stream window of 65535 only (RFC 9113
    6.9.2)."""
    assert r.read_until(lambda fs: any(f.type == SETTINGS and not f.flags & ACK
                                       for f in fs) or None, timeout=10)


def send_data(r, sid, data, end):
    for i in range(0, len(data), FRAME):
        last = end and i + FRAME >= len(data)
        r.send(frame(DATA, END_STREAM if last else 0, sid, data[i:i + FRAME]))


def test_body_larger_than_the_window_without_length(plain, edge):
    e = edge(config=CONFIG % {"url": plain.url})
    body = harness.object_bytes(WINDOW + 1024 * 1024 + 7, 41)
    with RawH2(e.port) as r:
        settled(r)
        r.send(frame(HEADERS, END_HEADERS, 1, r.block(put_headers(e.port, "/m0004/w?x=1"))))
        send_data(r, 1, body[:WINDOW], end=False)
        # the rest may go only once the window came back: as the origin
        # took the bytes
        need = len(body) - WINDOW
        got = r.read_until(lambda fs: stream_updates(r, 1) >= need or None, timeout=30)
        assert got, "no WINDOW_UPDATE for the stream: %r" % r.frames[-5:]
        send_data(r, 1, body[WINDOW:], end=True)
        hdrs, resp, ended, code = r.response(1, timeout=30)
        assert dict(hdrs)[":status"] == "201", hdrs
        assert json.loads(resp) == {"length": len(body), "sha256": harness.sha256(body)}
        assert ended
    (rec,) = plain.requests("/m0004/w")
    assert rec["complete"] and rec["sha256"] == harness.sha256(body)
    assert rec["target"] == "/m0004/w?x=1"
    hdrs = {k.lower(): v for k, v in rec["headers"]}
    assert hdrs.get("transfer-encoding") == "chunked"


def test_trailers_end_the_body(plain, edge):
    e = edge(config=CONFIG % {"url": plain.url})
    with RawH2(e.port) as r:
        settled(r)
        r.send(frame(HEADERS, END_HEADERS, 1, r.block(
            put_headers(e.port, "/m0004/t", extra=[("content-length", "5")]))))
        r.send(frame(DATA, 0, 1, b"hello"))
        r.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, r.block([("x-trailer", "1")])))
        hdrs, resp, ended, code = r.response(1, timeout=10)
        assert dict(hdrs)[":status"] == "201", hdrs
        assert json.loads(resp)["length"] == 5
    (rec,) = plain.requests("/m0004/t")
    assert rec["complete"] and rec["length"] == 5


def test_content_length_over_limit_is_413_then_reset_no_error(plain, edge):
    e = edge(config=CONFIG % {"url": plain.url})
    with RawH2(e.port) as r:
        settled(r)
        r.send(frame(HEADERS, END_HEADERS, 1, r.block(
            put_headers(e.port, "/m0004/big", extra=[("content-length", str(41 << 20))]))))
        r.send(frame(DATA, 0, 1, b"x" * FRAME))
        hdrs, resp, ended, code = r.response(1, timeout=10)
        assert dict(hdrs)[":status"] == "413", hdrs
        assert resp == b"413 Content Too Large\n"
        assert ended
        assert r.read_until(lambda fs: any(f.type == RST_STREAM and f.sid == 1
                                           for f in fs) or None, timeout=5)
        assert r.rst(1) == NO_ERROR
        # the connection goes on
        r.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, r.block(
            request_headers(e.port, "/m0004/none"))))
        hdrs, _, _, _ = r.response(3, timeout=10)
        assert dict(hdrs)[":status"] == "404"
    assert [x["path"] for x in plain.requests()] == ["/m0004/none"]


def test_not_allowed_is_405_with_allow(plain, edge):
    e = edge(config=CONFIG % {"url": plain.url})
    with RawH2(e.port) as r:
        settled(r)
        r.send(frame(HEADERS, END_HEADERS, 1, r.block(
            put_headers(e.port, "/m0004/ro", host="other.example.test"))))
        send_data(r, 1, b"y" * 100000, end=True)
        hdrs, _, ended, _ = r.response(1, timeout=10)
        assert dict(hdrs)[":status"] == "405"
        assert dict(hdrs)["allow"] == "GET, HEAD"
    assert plain.requests() == []
