"""
b0010: origins[].max_connections. Fetches beyond it wait for a connection
(in order) instead of failing: a 16 MiB cold download whose read-ahead
wants nine block fetches at once comes through two connections whole,
and concurrent misses of other objects get theirs too. A fetch that waits
longer than the connect timeout gets 504, and the next one goes through.
"""

import harness
from rangeutil import CurlStream, fault_config

KiB = 1024
MiB = 1024 * KiB


def _config(fault, conns, connect_timeout="5s"):
    c = fault_config(fault, cache={"memory_size": "256MiB"})
    c["origins"][0]["max_connections"] = conns
    c["origins"][0]["connect_timeout"] = connect_timeout
    return c


def test_fetches_wait_for_a_connection(fault, edge, get, tmp_path):
    big = "b0010/big.bin"
    fault.put(big, size=16 * MiB, seed=1001)
    smalls = ["b0010/s%d.bin" % i for i in range(6)]
    for i, k in enumerate(smalls):
        fault.put(k, size=200 * KiB + i, seed=1010 + i)
    fault.fault(None, rate=20 * MiB)  # slow enough for the fetches to pile up
    e = edge(config=_config(fault, 2))
    clients = [CurlStream(e.url("/" + big), timeout=60, keep=True, workdir=tmp_path)]
    clients += [CurlStream(e.url("/" + k), timeout=60, keep=True, workdir=tmp_path)
                for k in smalls]
    for c, (k, n, seed) in zip(clients, [(big, 16 * MiB, 1001)] +
                               [(k, 200 * KiB + i, 1010 + i) for i, k in enumerate(smalls)]):
        c.wait(70)
        assert c.rc == 0 and c.status == 200, (k, c)
        assert bytes(c.body) == harness.object_bytes(n, seed), k
    assert "no connection" not in e.stderr_text()


def test_a_wait_past_the_connect_timeout_is_504(fault, edge, get, tmp_path):
    held, other = "b0010/held.bin", "b0010/other.bin"
    fault.put(held, size=1000, seed=1)
    fault.put(other, size=1000, seed=2)
    fault.fault(held, hold="gate", times=1)
    e = edge(config=_config(fault, 1, connect_timeout="1s"))
    first = CurlStream(e.url("/" + held), timeout=30, keep=True, workdir=tmp_path)
    harness.wait_for(lambda: fault.key_stats(held)["GET"] >= 1, 10,
                     "the first fetch at the origin")
    r = get(e.url("/" + other), timeout=20)
    assert r.status == 504, r
    fault.release("gate")
    first.wait(40)
    assert first.rc == 0 and first.status == 200, first
    assert bytes(first.body) == harness.object_bytes(1000, 1)
    r = get(e.url("/" + other))
    assert r.status == 200 and r.body == harness.object_bytes(1000, 2), r
