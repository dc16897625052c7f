"""
b0002: the origin accepts the request and never answers. With
--first-byte-timeout 1s the client gets a 504 after at least the timeout
and well before a slow machine's bound; the edge then still serves other
keys.
"""

import time

import harness


def test_first_byte_timeout_504(fault, edge_fault, get):
    fault.put("b0002/stall.bin", size=1000, seed=1)
    fault.put("b0002/fine.bin", size=1000, seed=2)
    fault.fault("b0002/stall.bin", never_answer=True)
    e = edge_fault(["--first-byte-timeout", "1s"])

    t0 = time.monotonic()
    r = get(e.url("/b0002/stall.bin"), timeout=20)
    took = time.monotonic() - t0
    assert r.status == 504, r
    assert 1.0 <= took < 10, took
    assert len(r.body) < 512 and b"<Error>" not in r.body

    r = get(e.url("/b0002/fine.bin"))
    assert r.status == 200
    assert r.body == harness.object_bytes(1000, 2)
    assert e.wait_access(2)[0]["status"] == "504"


def test_slow_first_byte_within_timeout(fault, edge_fault, get):
    fault.put("b0002/slow.bin", size=1000, seed=3)
    fault.fault("b0002/slow.bin", first_byte_delay=0.5)
    e = edge_fault(["--first-byte-timeout", "3s"])
    r = get(e.url("/b0002/slow.bin"))
    assert r.status == 200 and r.body == harness.object_bytes(1000, 3)
