"""
b0009: the connection to the origin. Chunked bodies from the origin are
decoded and cached byte for byte; an origin that closes after every
response (announced or not) costs nothing but a new connection; a pooled
connection the origin drops just as it is reused (the keep-alive race
every HTTP client meets) is retried on a new one, not turned into a 502.
"""

import harness


def test_chunked_origin_body(fault, edge_fault, get):
    key = "b0006/chunked.bin"
    fault.put(key, size=300000, seed=61)
    data = harness.object_bytes(300000, 61)
    fault.fault(key, chunked=True)
    e = edge_fault()
    r1 = get(e.url("/" + key))
    r2 = get(e.url("/" + key))
    assert r1.status == 200 and r1.body == data, r1
    assert r2.body == data and r2.xcache() == "hit"
    assert r2.header("content-length") == str(len(data))
    assert fault.key_stats(key)["GET"] == 1


def sequential_misses(fault, e, get, prefix, n=5):
    for i in range(n):
        key = "%s/%d.bin" % (prefix, i)
        fault.put(key, size=5000 + i, seed=i)
    for i in range(n):
        key = "%s/%d.bin" % (prefix, i)
        r = get(e.url("/" + key))
        assert r.status == 200, (i, r)
        assert r.body == harness.object_bytes(5000 + i, i)


def test_origin_closes_every_response(fault, edge_fault, get):
    fault.fault(close=True)
    e = edge_fault()
    sequential_misses(fault, e, get, "b0006/close")
    assert fault.stats()["connections"] >= 5


def test_origin_closes_silently(fault, edge_fault, get):
    fault.fault(silent_close=True)
    e = edge_fault()
    sequential_misses(fault, e, get, "b0006/silent")


def test_reused_connection_dropped(fault, edge_fault, get):
    e = edge_fault()
    sequential_misses(fault, e, get, "b0006/warm", n=2)
    fault.fault(drop_reused=True, times=1)
    sequential_misses(fault, e, get, "b0006/race", n=3)
