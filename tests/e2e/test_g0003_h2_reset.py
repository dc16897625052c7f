"""
g0003: a client resets a stream (RST_STREAM CANCEL) in the middle of a
download. Its exchange is released at once (the access log says the
response was incomplete); another stream on the same connection and
another client reading the same object get every byte; a reset miss does
not abort the fill, so the object is cached and the origin asked once. A
fill that fails mid-body reaches an h2 client as RST_STREAM
INTERNAL_ERROR, never as a short body with END_STREAM.
"""

import time

import harness
from h2client import CANCEL, INTERNAL_ERROR, H2Client

SIZE = 3 * 1024 * 1024


def test_reset_on_a_hit_spares_other_readers(fault, edge_fault):
    key = "g0003/hit.bin"
    data = harness.object_bytes(SIZE, 31)
    fault.put(key, data=data)
    e = edge_fault()
    with H2Client(e.port) as warm:
        assert bytes(warm.get("/" + key).data) == data

    # A reads slowly (it returns no window), so it is mid-body when it
    # resets; its second stream of the same object goes on afterwards
    with H2Client(e.port, auto_ack=False) as a, H2Client(e.port) as b:
        s1 = a.request("/" + key)
        s3 = a.request("/" + key)
        # (RFC 9218 defaults: non-incremental responses of one urgency
        # go one after the other, so s3 may not have started yet)
        a.wait(lambda: len(a.streams[s1].data) >= 32768, what="first bytes")
        sb = b.request("/" + key)
        a.reset(s1, CANCEL)
        # give A's other stream window again, and read it to the end
        a.auto_ack = True
        got = len(a.streams[s3].data)
        a.conn.increment_flow_control_window(SIZE)
        a.conn.increment_flow_control_window(SIZE, stream_id=s3)
        a.flush()
        st3 = a.response(s3, timeout=30)
        stb = b.response(sb, timeout=30)
        assert got < SIZE
        assert st3.ended and st3.reset is None
        assert harness.sha256(bytes(st3.data)) == harness.sha256(data)
        assert stb.ended and harness.sha256(bytes(stb.data)) == \
            harness.sha256(data)
        assert not a.streams[s1].ended
        assert len(a.streams[s1].data) < SIZE
        # the connection is still good for new streams
        assert bytes(a.get("/" + key).data) == data

    lines = e.wait_access(5)
    cut = [l for l in lines if l.get("incomplete") == "1"]
    assert len(cut) == 1, lines
    assert cut[0]["proto"] == "HTTP/2.0" and cut[0]["cache"] == "HIT"
    assert int(cut[0]["bytes"]) < SIZE
    assert fault.key_stats(key)["GET"] == 3  # one per block
    e.check_alive()


def test_reset_miss_keeps_the_fill(fault, edge_fault):
    key = "g0003/miss.bin"
    data = harness.object_bytes(SIZE, 32)
    fault.put(key, data=data)
    fault.fault(key, rate=3 * 1024 * 1024, times=1)
    e = edge_fault()
    with H2Client(e.port) as a:
        s = a.request("/" + key)
        a.wait(lambda: len(a.streams[s].data) >= 200000, what="bytes")
        a.reset(s, CANCEL)
        # the fill goes on without its reader: wait for it to finish
        harness.wait_for(lambda: fault.key_stats(key)["bytes"] >= SIZE,
                         20, "the origin to send everything")
        st = harness.wait_for(
            lambda: (lambda x: x if x.header("x-cache") ==
                     "Hit from s3edge" else None)(a.get("/" + key)),
            10, "the object to be cached")
        assert harness.sha256(bytes(st.data)) == harness.sha256(data)
    # one request per block, each block once
    assert fault.key_stats(key)["GET"] == 3
    assert fault.key_stats(key)["bytes"] == SIZE


def test_reset_before_the_head(fault, edge_fault):
    """Reset while the origin has not answered: nothing was served, so
    nothing is logged; the fill goes on and caches the object; the
    connection serves the next request."""
    key = "g0003/slow.bin"
    data = harness.object_bytes(5000, 33)
    fault.put(key, data=data)
    fault.fault(key, first_byte_delay=0.5, times=1)
    e = edge_fault()
    with H2Client(e.port) as a:
        s = a.request("/" + key)
        harness.wait_for(lambda: fault.key_stats(key)["requests"] >= 1, 5,
                         "the origin request")
        a.reset(s, CANCEL)
        harness.wait_for(lambda: fault.key_stats(key)["bytes"] >= 5000, 5,
                         "the origin's answer")
        st = harness.wait_for(
            lambda: (lambda x: x if x.header("x-cache") ==
                     "Hit from s3edge" else None)(a.get("/" + key)),
            5, "the object to be cached")
        assert st.status == 200 and bytes(st.data) == data
        assert a.streams[s].headers is None
    lines = e.wait_access(1)
    assert lines[-1]["cache"] == "HIT", lines
    # the reset fill reached the origin once; a poll that came before it
    # was stored joined it (a MISS in the log, no origin request)
    assert fault.key_stats(key)["GET"] == 1, lines


def test_fill_failure_mid_body_is_a_reset(fault, edge_fault):
    key = "g0003/cut.bin"
    fault.put(key, size=SIZE, seed=34)
    fault.fault(key, reset_after=500000, times=1)
    e = edge_fault()
    with H2Client(e.port) as a:
        st = a.get("/" + key, timeout=20)
        assert st.status == 200
        assert st.reset == INTERNAL_ERROR, (st.reset, len(st.data))
        assert not st.ended and len(st.data) < SIZE
        # the connection survives the stream
        st = a.get("/" + key, timeout=20)
        assert st.status == 200 and st.ended
        assert bytes(st.data) == harness.object_bytes(SIZE, 34)
    lines = e.wait_access(2)
    assert lines[0].get("incomplete") == "1", lines
