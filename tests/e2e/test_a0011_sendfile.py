"""
a0011: cache.sendfile. On (the default), the blocks live in a memfd
("s3edge-blocks" among the process's open files), the stats count its
slots, and hits of every size come back byte for byte, whole and in
ranges, over cleartext HTTP/1.1 (sendfile), h2c and TLS (copied); a
pass-through object and a small object (malloc'd chunks) too. Off: no
memfd, same answers.
"""

import os

import pytest

import diskutil
import harness
from rangeutil import fault_config

KiB = 1024
MiB = 1024 * KiB


def _has_memfd(e):
    d = "/proc/%d/fd" % e.proc.pid
    for name in os.listdir(d):
        try:
            if "s3edge-blocks" in os.readlink(os.path.join(d, name)):
                return True
        except OSError:
            pass
    return False


@pytest.mark.parametrize("sendfile", [True, False])
def test_hits_with_and_without_sendfile(fault, edge, get, sendfile):
    objs = {"a0011/small.bin": 3000, "a0011/mid.bin": 3 * MiB + 17,
            "a0011/big.bin": 20 * MiB + 5}
    for i, (k, n) in enumerate(objs.items()):
        fault.put(k, size=n, seed=1100 + i)
    fault.put("a0011/pass.bin", size=9 * MiB, seed=1199)
    e = edge(config=fault_config(fault, cache={
        "memory_size": "64MiB", "max_object_size": "8MiB", "sendfile": sendfile}))
    assert _has_memfd(e) == sendfile
    for rnd in ("miss", "hit"):
        for i, (k, n) in enumerate(objs.items()):
            data = harness.object_bytes(n, 1100 + i)
            r = get(e.url("/" + k))
            want = rnd if n <= 8 * MiB else "pass"
            assert r.rc == 0 and r.status == 200 and r.xcache() == want, (k, r)
            assert r.body == data, k
            a, b = n // 3, n // 3 + 70000
            r = get(e.url("/" + k), "-H", "Range: bytes=%d-%d" % (a, b))
            assert r.status == 206 and r.body == data[a:b + 1], (k, r)
    r = get(e.url("/a0011/pass.bin"))
    assert r.status == 200 and r.body == harness.object_bytes(9 * MiB, 1199)
    st = diskutil.stats(e)
    if sendfile:
        assert st["block_slots"] > 0 and st["block_slots_used"] > 0, st
    else:
        assert st["block_slots"] == 0, st
