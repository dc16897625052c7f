"""
b0005: the origin sends the head and part of the body, then nothing while
keeping the connection open. With --idle-timeout 1s the edge gives up:
the client sees a truncated transfer (never a short body that looks
complete) within a bounded time, the partial object is not cached, and
the edge serves the next request.
"""

import time

import harness

KEY = "b0005/stalls.bin"
SIZE = 400000


def test_idle_timeout_mid_body(fault, edge_fault, get):
    fault.put(KEY, size=SIZE, seed=55)
    data = harness.object_bytes(SIZE, 55)
    fault.fault(KEY, stall_after=150000, times=1)
    e = edge_fault(["--idle-timeout", "1s", "--first-byte-timeout", "5s"])

    t0 = time.monotonic()
    r = get(e.url("/" + KEY), timeout=20)
    took = time.monotonic() - t0
    assert took < 10, took
    if r.status == 200:
        assert r.rc in harness.CURL_TRUNCATED, "curl saw a complete transfer: %r" % r
        assert len(r.body) < SIZE and r.body == data[:len(r.body)]
        assert took >= 1.0, took
    else:
        assert r.status == 504, r

    r = get(e.url("/" + KEY))
    assert r.status == 200 and r.rc == 0 and r.body == data
    assert r.xcache() == "miss"


def test_slow_but_moving_body_is_not_idle(fault, edge_fault, get):
    """A body that keeps arriving, slowly, over longer than the idle
    timeout is not cut: the timeout is per gap, not per transfer."""
    fault.put(KEY, size=SIZE, seed=56)
    fault.fault(KEY, rate=SIZE / 2.5)
    e = edge_fault(["--idle-timeout", "1s"])
    r = get(e.url("/" + KEY), timeout=30)
    assert r.status == 200 and r.rc == 0, r
    assert r.body == harness.object_bytes(SIZE, 56)
