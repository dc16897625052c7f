"""
g0006: graceful shutdown over HTTP/2. On SIGTERM a client with a download
in flight gets a shutdown notice (GOAWAY with the largest stream id), then
a GOAWAY naming the last stream served (RFC 9113 6.8); the download
finishes intact and the edge exits cleanly right after. An idle HTTP/2
connection does not hold the exit back.
"""

import signal
import time

import harness
from h2client import GOAWAY, NO_ERROR, RawH2, goaway_payload

KEY = "g0006/slow.bin"
SIZE = 1024 * 1024


def sigterm_and_wait(e, timeout=8, signal_it=True):
    """SIGTERM the edge ourselves and check its exit like Edge.stop()."""
    t0 = time.monotonic()
    if signal_it:
        e.proc.send_signal(signal.SIGTERM)
    rc = e.proc.wait(timeout)
    took = time.monotonic() - t0
    e.stopped = True  # nothing left for the fixture to stop
    assert rc in (0, -signal.SIGTERM), (rc, e.describe())
    assert e.sanitizer_report() is None, e.sanitizer_report()
    return took


def test_download_finishes_after_sigterm(fault, edge_fault):
    data = harness.object_bytes(SIZE, 60)
    fault.put(KEY, data=data)
    fault.fault(KEY, rate=SIZE / 1.5, times=1)
    e = edge_fault()
    with RawH2(e.port) as r:
        r.send(r.get_frame(1, "/" + KEY))
        assert r.read_until(lambda fs: sum(len(f.payload) for f in fs
                                           if f.type == 0) > 100000, 10)
        t0 = time.monotonic()
        e.proc.send_signal(signal.SIGTERM)
        hdrs, body, ended, rst = r.response(1, timeout=10)
        assert ended and rst is None, r.frames[-3:]
        assert dict(hdrs)[":status"] == "200"
        assert harness.sha256(body) == harness.sha256(data)
        goaways = [goaway_payload(f.payload) for f in r.frames
                   if f.type == GOAWAY]
        assert goaways == [(0x7fffffff, NO_ERROR), (1, NO_ERROR)], goaways
        # the edge closes once the stream is done; no new stream is taken
        assert r.wait_eof(5)
    rc = e.proc.wait(5)
    took = time.monotonic() - t0
    e.stopped = True
    assert rc in (0, -signal.SIGTERM), (rc, e.describe())
    assert e.sanitizer_report() is None, e.sanitizer_report()
    assert took < 4, took
    assert "the last HTTP/2 connection is closed" in e.stderr_text()


def test_idle_connection_does_not_delay_exit(fault, edge_fault):
    """The idle client gets its GOAWAY at once and closes, as clients do;
    the edge then exits without waiting for anything else."""
    fault.put("g0006/x.txt", data=b"x")
    e = edge_fault()
    with RawH2(e.port) as r:
        r.send(r.get_frame(1, "/g0006/x.txt"))
        assert r.response(1)[1] == b"x"
        t0 = time.monotonic()
        e.proc.send_signal(signal.SIGTERM)
        g = r.final_goaway(2)
        assert g == (1, NO_ERROR), r.frames
    took = sigterm_and_wait(e, signal_it=False) + (time.monotonic() - t0)
    assert took < 1.5, took


def test_silent_client_delays_exit_boundedly(fault, edge_fault):
    """A client that neither reads nor closes holds the exit back only
    for the lingering time."""
    fault.put("g0006/x.txt", data=b"x")
    e = edge_fault()
    with RawH2(e.port) as r:
        r.send(r.get_frame(1, "/g0006/x.txt"))
        assert r.response(1)[1] == b"x"
        took = sigterm_and_wait(e)
        assert took < 3.5, took
        assert r.final_goaway(2) == (1, NO_ERROR), r.frames
