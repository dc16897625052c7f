"""
g0004: malformed frames and protocol violations over h2c get the error
RFC 9113 names: connection errors a GOAWAY with their code (then the
connection closes), stream errors a RST_STREAM with theirs while the
connection goes on serving; malformed requests are answered as on
HTTP/1.1 (400 for a body on GET, a Host that disagrees). After each, the
edge serves new connections.
"""

import struct

import pytest

import harness
from h2client import (COMPRESSION_ERROR, CONTINUATION, DATA, END_HEADERS,
                      END_STREAM, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR,
                      HEADERS, NO_ERROR, PING, PROTOCOL_ERROR, PUSH_PROMISE,
                      RST_STREAM, SETTINGS, STREAM_CLOSED, WINDOW_UPDATE,
                      RawH2, frame, h2_ok, request_headers)

KEY = "g0004/ok.txt"
BODY = b"still serving\n"


@pytest.fixture
def e(fault, edge_fault):
    fault.put(KEY, data=BODY)
    return edge_fault()


def serving(e):
    e.check_alive()
    assert h2_ok(e.port, "/" + KEY) == (200, BODY)
    return True


def req(r, path="/" + KEY, extra=()):
    return r.block(request_headers(r.port, path, extra=extra))


CONNECTION_ERRORS = {
    # RFC 9113 6.1: DATA on stream 0
    "data_on_stream_0": (lambda r: frame(DATA, 0, 0, b"x"), PROTOCOL_ERROR),
    # 5.1.1: client streams are odd
    "even_stream_id": (lambda r: frame(HEADERS, END_STREAM | END_HEADERS, 2,
                                       req(r)), PROTOCOL_ERROR),
    # 4.2: over SETTINGS_MAX_FRAME_SIZE (16384 by default)
    "oversized_frame": (lambda r: frame(HEADERS, END_STREAM | END_HEADERS, 1,
                                        b"\x00" * 20000), FRAME_SIZE_ERROR),
    # 6.9: a zero increment on the connection
    "window_update_zero": (lambda r: frame(WINDOW_UPDATE, 0, 0,
                                           struct.pack(">I", 0)),
                           PROTOCOL_ERROR),
    # 6.9.1: a window beyond 2^31-1
    "window_overflow": (lambda r: frame(WINDOW_UPDATE, 0, 0,
                                        struct.pack(">I", 0x7fffffff)),
                        FLOW_CONTROL_ERROR),
    # 6.5.2: INITIAL_WINDOW_SIZE above 2^31-1
    "bad_setting": (lambda r: frame(SETTINGS, 0, 0,
                                    struct.pack(">HI", 4, 0x80000000)),
                    FLOW_CONTROL_ERROR),
    # 6.5: SETTINGS length not a multiple of 6
    "settings_length": (lambda r: frame(SETTINGS, 0, 0, b"\x00" * 5),
                        FRAME_SIZE_ERROR),
    # 6.7: PING is 8 bytes
    "ping_length": (lambda r: frame(PING, 0, 0, b"\x00" * 7),
                    FRAME_SIZE_ERROR),
    # 8.4: clients do not push
    "push_promise": (lambda r: frame(PUSH_PROMISE, END_HEADERS, 1,
                                     struct.pack(">I", 2) + req(r)),
                     PROTOCOL_ERROR),
    # RFC 7541 2.3.3: an index beyond both tables
    "hpack_bad_index": (lambda r: frame(HEADERS, END_STREAM | END_HEADERS, 1,
                                        b"\xff\x80\x10"), COMPRESSION_ERROR),
    # 6.10: CONTINUATION without a HEADERS before it
    "stray_continuation": (lambda r: frame(CONTINUATION, END_HEADERS, 1,
                                           req(r)), PROTOCOL_ERROR),
    # 6.2: another frame inside a header block
    "interleaved_header_block": (
        lambda r: frame(HEADERS, END_STREAM, 1, req(r)) +
        frame(PING, 0, 0, b"\x00" * 8), PROTOCOL_ERROR),
    # 6.4: RST_STREAM on an idle stream
    "rst_idle_stream": (lambda r: frame(RST_STREAM, 0, 7,
                                        struct.pack(">I", 8)),
                        PROTOCOL_ERROR),
}


@pytest.mark.parametrize("name", sorted(CONNECTION_ERRORS))
def test_connection_error(e, name):
    build, code = CONNECTION_ERRORS[name]
    with RawH2(e.port) as r:
        r.send(build(r))
        g = r.goaway()
        assert g is not None, (name, r.frames)
        assert g[1] == code, (name, g, r.frames)
        assert r.wait_eof(5), "the connection stays open after GOAWAY"
    assert serving(e)


STREAM_ERRORS = {
    # 8.3.1: a request without :path is malformed
    "missing_path": ([(":method", "GET"), (":scheme", "http"),
                      (":authority", "e2e")], PROTOCOL_ERROR),
    # 8.2.1: field names are lower case
    "uppercase_name": ([("X-Upper", "1")], PROTOCOL_ERROR),
    # 8.2.2: connection-specific fields
    "connection_header": ([("connection", "keep-alive")], PROTOCOL_ERROR),
    "te_not_trailers": ([("te", "gzip")], PROTOCOL_ERROR),
    # 8.3: pseudo-fields come first, once
    "pseudo_after_regular": ([("accept", "*/*"), (":method", "GET")],
                             PROTOCOL_ERROR),
    "unknown_pseudo": ([(":protocol2", "x")], PROTOCOL_ERROR),
    # 8.2.1: no CR, LF or NUL in values
    "newline_in_value": ([("x-a", "b\r\nx-c: d")], PROTOCOL_ERROR),
}


@pytest.mark.parametrize("name", sorted(STREAM_ERRORS))
def test_stream_error_keeps_the_connection(e, name):
    extra, code = STREAM_ERRORS[name]
    with RawH2(e.port) as r:
        if name == "missing_path":
            hb = r.block(extra)
        elif name == "pseudo_after_regular":
            hb = r.block([(":scheme", "http"), (":authority", "e2e"),
                          (":path", "/" + KEY)] + extra)
        else:
            hb = req(r, extra=extra)
        r.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, hb))
        assert r.rst(1) == code, (name, r.frames)
        # the same connection serves the next stream
        r.send(r.get_frame(3, "/" + KEY))
        hdrs, body, ended, rst = r.response(3)
        assert dict(hdrs)[":status"] == "200" and body == BODY, r.frames
        assert not any(f.type == 7 for f in r.frames), "GOAWAY: %r" % r.frames
    assert serving(e)


def test_stream_id_going_back_is_ignored(e):
    """RFC 9113 5.1.1: a lower id than one already used names a closed
    stream; nghttp2 (which keeps no closed streams) ignores its HEADERS
    rather than failing the connection. Nothing is served for it and the
    connection goes on."""
    with RawH2(e.port) as r:
        r.send(frame(HEADERS, END_STREAM | END_HEADERS, 5, req(r)) +
               frame(HEADERS, END_STREAM | END_HEADERS, 3, req(r)))
        assert r.response(5)[1] == BODY
        r.send(r.get_frame(7, "/" + KEY))
        assert r.response(7)[1] == BODY
        assert not any(f.sid == 3 for f in r.frames), r.frames
    assert len(e.wait_access(2)) == 2


def test_data_on_half_closed_stream(fault, e):
    """5.1: after the client's END_STREAM, more DATA is STREAM_CLOSED
    (nghttp2 makes it a connection error). The exchange, waiting on a
    slow origin, is released; the origin's late answer harms nothing."""
    fault.put("g0004/slow.txt", data=b"slow")
    fault.fault("g0004/slow.txt", first_byte_delay=1.0, times=1)
    with RawH2(e.port) as r:
        r.send(r.get_frame(1, "/g0004/slow.txt"))
        r.send(frame(DATA, 0, 1, b"late"))
        f = r.read_until(lambda fs: next(
            (x for x in fs if x.type in (RST_STREAM, 7)), None))
        assert f is not None and f.error_code() == STREAM_CLOSED, r.frames
    harness.wait_for(lambda: fault.key_stats("g0004/slow.txt")["bytes"] >= 4,
                     5, "the origin's late answer")
    assert serving(e)
    assert h2_ok(e.port, "/g0004/slow.txt") == (200, b"slow")


def test_body_on_get_is_400_like_h1(e):
    with RawH2(e.port) as r:
        r.send(frame(HEADERS, END_HEADERS, 1, req(r)))
        r.send(frame(DATA, 0, 1, b"a body"))
        hdrs, body, ended, rst = r.response(1)
        assert dict(hdrs)[":status"] == "400", hdrs
        assert body == b"400 Bad Request: request body not allowed\n"
        # RFC 9113 8.1: the request is still open: RST_STREAM NO_ERROR
        assert r.rst(1) == NO_ERROR, r.frames
        # a body announced by content-length is refused before it comes
        r.send(frame(HEADERS, END_HEADERS, 3,
                     req(r, extra=[("content-length", "10")])))
        hdrs, body, ended, rst = r.response(3)
        assert dict(hdrs)[":status"] == "400", hdrs
        # an empty body (END_STREAM on an empty DATA frame) is no body
        r.send(frame(HEADERS, END_HEADERS, 5, req(r)))
        r.send(frame(DATA, END_STREAM, 5, b""))
        hdrs, body, ended, rst = r.response(5)
        assert dict(hdrs)[":status"] == "200" and body == BODY
    lines = e.wait_access(3)
    assert [l["status"] for l in lines] == ["400", "400", "200"], lines
    assert all(l["proto"] == "HTTP/2.0" for l in lines)


def test_host_and_authority(e):
    with RawH2(e.port) as r:
        # RFC 9113 8.3.1: a Host that disagrees with :authority
        r.send(frame(HEADERS, END_STREAM | END_HEADERS, 1,
                     req(r, extra=[("host", "other.example")])))
        hdrs, body, _, _ = r.response(1)
        assert dict(hdrs)[":status"] == "400", hdrs
        # Host alone stands for :authority
        r.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, r.block([
            (":method", "GET"), (":scheme", "http"), (":path", "/" + KEY),
            ("host", "127.0.0.1")])))
        hdrs, body, _, _ = r.response(3)
        assert dict(hdrs)[":status"] == "200" and body == BODY, hdrs
        # neither: malformed (nghttp2 resets it; HTTP/1.1 says 400)
        r.send(frame(HEADERS, END_STREAM | END_HEADERS, 5, r.block([
            (":method", "GET"), (":scheme", "http"),
            (":path", "/" + KEY)])))
        assert r.rst(5) == PROTOCOL_ERROR, r.frames
    lines = e.wait_access(2)
    assert [l["host"] for l in lines] == ["127.0.0.1:%d" % e.port,
                                          "127.0.0.1"], lines


def test_streams_over_the_limit(e):
    """MAX_CONCURRENT_STREAMS 128: requests that stay open (GET without
    END_STREAM) fill it. Once our SETTINGS are acknowledged, nghttp2
    makes the 129th a connection error (RFC 9113 5.1.2 allows a stream
    error; a client that ignores the limit is not worth keeping); the
    edge goes on serving others."""
    with RawH2(e.port) as r:
        # our SETTINGS acknowledged first (RawH2 does it on arrival)
        assert r.read_until(lambda fs: any(f.type == SETTINGS and not f.flags
                                           for f in fs))
        r.send(r.get_frame(1, "/" + KEY))
        assert r.response(1)[1] == BODY
        r.send(b"".join(frame(HEADERS, END_HEADERS, 2 * i + 3, req(r))
                        for i in range(129)))
        g = r.goaway()
        assert g == (257, PROTOCOL_ERROR) or g == (255, PROTOCOL_ERROR), \
            (g, r.frames[-3:])
        assert r.wait_eof(5)
    assert serving(e)


def test_streams_up_to_the_limit(e):
    with RawH2(e.port) as r:
        assert r.read_until(lambda fs: any(f.type == SETTINGS and not f.flags
                                           for f in fs))
        r.send(r.get_frame(1, "/" + KEY))
        assert r.response(1)[1] == BODY
        r.send(b"".join(frame(HEADERS, END_HEADERS, 2 * i + 3, req(r))
                        for i in range(128)))
        r.send(b"".join(frame(DATA, END_STREAM, 2 * i + 3)
                        for i in range(128)))
        for i in range(128):
            hdrs, body, ended, rst = r.response(2 * i + 3)
            assert dict(hdrs)[":status"] == "200" and body == BODY, i
        assert not any(f.type in (RST_STREAM, 7) for f in r.frames)
    assert len(e.wait_access(129)) == 129
