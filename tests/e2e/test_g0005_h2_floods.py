"""
g0005: the HTTP/2 defences, one test each. Rapid reset (CVE-2023-44487:
HEADERS then RST_STREAM, over and over), PING, SETTINGS, PRIORITY, empty
DATA and CONTINUATION floods get GOAWAY ENHANCE_YOUR_CALM and the
connection closes; a browser-sized burst of resets does not. An HPACK
bomb and an oversized header list are answered 431 without harm to the
connection. A client that keeps its window at zero is closed after
client_send_timeout even while it pings; an idle connection after
client_idle_timeout; a slow but moving reader is not. Through all of it
the edge serves other clients.
"""

import struct
import time

import pytest

import harness
from h2client import (CONTINUATION, DATA, END_HEADERS, END_STREAM,
                      ENHANCE_YOUR_CALM, GOAWAY, HEADERS, NO_ERROR, PING,
                      PRIORITY, RST_STREAM, SETTINGS_INITIAL_WINDOW_SIZE,
                      H2Client, RawH2, frame, h2_ok, request_headers,
                      settings_frame)

KEY = "g0005/ok.bin"
BODY = harness.object_bytes(2000, 50)

CONFIG = """\
listen:
  - $listen
log:
  access_log: $access_log
limits:
  client_idle_timeout: %s
  client_send_timeout: %s
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
def e(fault, edge_fault):
    fault.put(KEY, data=BODY)
    e = edge_fault()
    assert h2_ok(e.port, "/" + KEY) == (200, BODY)  # cached: floods hit
    return e


def serving(e):
    e.check_alive()
    assert h2_ok(e.port, "/" + KEY) == (200, BODY)
    return True


def calmed(r, timeout=10):
    """The connection got GOAWAY ENHANCE_YOUR_CALM, and was closed."""
    g = r.goaway(timeout)
    assert g is not None, r.frames[-5:]
    assert g[1] == ENHANCE_YOUR_CALM, (g, r.frames[-5:])
    assert r.wait_eof(timeout), "still open after GOAWAY"
    return g


def test_rapid_reset(e):
    with RawH2(e.port) as r:
        hb = r.block(request_headers(e.port, "/" + KEY))
        burst = b"".join(
            frame(HEADERS, END_STREAM | END_HEADERS, 2 * i + 1, hb) +
            frame(RST_STREAM, 0, 2 * i + 1, struct.pack(">I", 8))
            for i in range(1000))
        r.send(burst)
        last, _ = calmed(r)
        # we stopped early: far fewer than the 1000 streams were taken
        assert last < 2 * 600, last
    assert serving(e)
    # what was answered at all was logged, nothing more
    assert len(e.access_lines()) < 600


def test_reset_burst_of_a_browser_is_fine(e):
    """A page left behind cancels everything it had in flight at once."""
    with RawH2(e.port) as r:
        hb = r.block(request_headers(e.port, "/" + KEY))
        r.send(b"".join(frame(HEADERS, END_STREAM | END_HEADERS, 2 * i + 1,
                              hb) for i in range(100)))
        r.send(b"".join(frame(RST_STREAM, 0, 2 * i + 1, struct.pack(">I", 8))
                        for i in range(100)))
        r.send(r.get_frame(201, "/" + KEY))
        hdrs, body, ended, rst = r.response(201)
        assert dict(hdrs)[":status"] == "200" and body == BODY
        assert not any(f.type == GOAWAY for f in r.frames)
    assert serving(e)


def test_reset_provoking_flood(e):
    """Stream errors we answer with RST_STREAM count like client resets
    (malformed requests: the server pays, the client does not)."""
    with RawH2(e.port) as r:
        bad = r.block([(":method", "GET"), (":scheme", "http"),
                       (":authority", "e2e")])  # no :path
        r.send(b"".join(frame(HEADERS, END_STREAM | END_HEADERS, 2 * i + 1,
                              bad) for i in range(1000)))
        calmed(r)
    assert serving(e)


@pytest.mark.parametrize("kind", ["ping", "settings", "priority",
                                  "empty_data"])
def test_control_frame_floods(e, kind):
    with RawH2(e.port) as r:
        if kind == "ping":
            flood = frame(PING, 0, 0, b"12345678") * 5000
        elif kind == "settings":
            flood = settings_frame([(SETTINGS_INITIAL_WINDOW_SIZE, 65535)]) \
                * 5000
        elif kind == "priority":
            flood = b"".join(frame(PRIORITY, 0, 2 * i + 1,
                                   struct.pack(">IB", 0, 15))
                             for i in range(5000))
        else:
            # a GET left open, then DATA frames carrying nothing
            r.send(frame(HEADERS, END_HEADERS, 1,
                         r.block(request_headers(e.port, "/" + KEY))))
            flood = frame(DATA, 0, 1) * 5000
        r.send(flood)
        calmed(r)
        if kind == "ping":
            acks = sum(1 for f in r.frames if f.type == PING)
            assert acks < 1000, acks
    assert serving(e)


def test_continuation_flood(e):
    with RawH2(e.port) as r:
        hb = r.block(request_headers(e.port, "/" + KEY))
        r.send(frame(HEADERS, 0, 1, hb))
        cont = frame(CONTINUATION, 0, 1, r.block([("x-a", "b")]))
        r.send(cont * 2000)
        g = r.goaway()
        assert g is not None and g[1] == ENHANCE_YOUR_CALM, r.frames
        assert r.wait_eof(5)
    assert serving(e)


def test_hpack_bomb_is_431(e):
    """A 4 KiB field added to the HPACK table once, then referenced with
    one byte per copy: a 7 KiB block that decodes to 4 MiB."""
    with RawH2(e.port) as r:
        hdrs = request_headers(e.port, "/" + KEY) + \
            [("x-bomb", "a" * 4000)] * 1000
        hb = r.block(hdrs)
        assert len(hb) < 16384
        r.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, hb))
        h, body, ended, rst = r.response(1)
        assert dict(h)[":status"] == "431", (h, r.frames)
        assert body == b"431 Request Header Fields Too Large\n"
        # the connection (and its HPACK state) goes on
        r.send(r.get_frame(3, "/" + KEY))
        h, body, _, _ = r.response(3)
        assert dict(h)[":status"] == "200" and body == BODY
    with H2Client(e.port) as c:
        st = c.get("/" + KEY, extra=[("x-h%d" % i, "v") for i in range(120)])
        assert st.status == 431
    assert serving(e)


def pump_for(c, secs):
    """Read whatever comes during secs (a client pacing itself)."""
    end = time.monotonic() + secs
    for _ in range(10000):
        left = end - time.monotonic()
        if left <= 0 or not c.pump(left):
            return


def stall_edge(fault, edge, idle="30s", send="1s"):
    fault.put(KEY, data=BODY)
    fault.put("g0005/big.bin", size=300000, seed=51)
    return edge(config=CONFIG % (idle, send, fault.url, fault.BUCKET),
                env={})


def test_zero_window_stall(fault, edge):
    e = stall_edge(fault, edge)
    with H2Client(e.port, settings={SETTINGS_INITIAL_WINDOW_SIZE: 0},
                  auto_ack=False) as c:
        sid = c.request("/g0005/big.bin")
        t0 = time.monotonic()
        # PINGs are no progress: they do not keep the stream alive
        for i in range(1000):
            now = time.monotonic()
            if c.closed or c.goaway or now - t0 > 5:
                break
            c.conn.ping(b"%08d" % i)
            c.flush()
            pump_for(c, 0.2)
        took = time.monotonic() - t0
        assert c.goaway is not None, "not closed after %.1fs" % took
        assert c.goaway[0] == ENHANCE_YOUR_CALM
        assert 0.9 <= took < 3.5, took
        assert c.streams[sid].headers is not None and not c.streams[sid].data
        c.wait_closed(5)
    lines = e.wait_access(1)
    assert lines[0]["incomplete"] == "1" and lines[0]["bytes"] == "0", lines
    assert serving(e)


def test_slow_reader_that_moves_is_not_cut(fault, edge):
    e = stall_edge(fault, edge)
    data = harness.object_bytes(300000, 51)
    with H2Client(e.port, settings={SETTINGS_INITIAL_WINDOW_SIZE: 65536},
                  auto_ack=False) as c:
        sid = c.request("/g0005/big.bin")
        st = c.streams[sid]
        t0 = time.monotonic()
        acked = 0
        # 64 KiB every 0.4 s: the transfer takes longer than the 1 s send
        # timeout, but never stops for that long
        for _ in range(100):
            if st.done():
                break
            pump_for(c, 0.4)
            n = len(st.data) - acked
            if n:
                c.conn.acknowledge_received_data(n, sid)
                acked += n
                c.flush()
        assert st.ended and bytes(st.data) == data, len(st.data)
        assert time.monotonic() - t0 > 1.2
        assert c.goaway is None


def test_idle_connection_closed(fault, edge):
    e = stall_edge(fault, edge, idle="1s", send="5s")
    with H2Client(e.port) as c:
        assert bytes(c.get("/" + KEY).data) == BODY
        t0 = time.monotonic()
        g = c.wait_closed(5)
        took = time.monotonic() - t0
        assert g is not None and g[0] == NO_ERROR, g
        assert g[1] == 1  # the last stream it served
        assert 0.8 <= took < 3, took
    assert serving(e)
