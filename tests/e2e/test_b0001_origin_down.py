"""
b0001: nothing listens at the origin's address: 502, quickly, with a short
body of ours; the edge keeps serving.
"""

import time

import harness


def test_origin_down_502(edge, get):
    dead = harness.free_port()
    e = edge(["--origin", "http://127.0.0.1:%d/bucket" % dead, "--anonymous",
              "--connect-timeout", "2s"], env={})
    for _ in range(2):
        t0 = time.monotonic()
        r = get(e.url("/b0001/any.txt"))
        took = time.monotonic() - t0
        assert r.status == 502, r
        assert took < 10, took
        assert len(r.body) < 512 and b"<Error>" not in r.body
    lines = e.wait_access(2)
    assert [l["status"] for l in lines] == ["502", "502"]
