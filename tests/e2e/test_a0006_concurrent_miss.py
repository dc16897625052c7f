"""
a0006: two clients miss on the same key at the same time (the origin is
slow enough for them to overlap). Both get the whole object; whether the
origin is asked once (coalesced) or twice, nothing may break, and the
object ends up cached.
"""

import subprocess

import harness

KEY = "a0006/shared.bin"
SIZE = 2 * 1024 * 1024


def test_two_concurrent_misses(fault, edge_fault, get, tmp_path):
    fault.put(KEY, size=SIZE, seed=6)
    digest = harness.sha256(harness.object_bytes(SIZE, 6))
    fault.fault(KEY, rate=4 * 1024 * 1024)
    e = edge_fault()

    outs = [tmp_path / ("c%d.bin" % i) for i in range(2)]
    procs = [subprocess.Popen(["curl", "-sS", "--http1.1", "--max-time", "30",
                               "-o", str(o), "-w", "%{http_code}",
                               e.url("/" + KEY)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for o in outs]
    try:
        results = [p.communicate(timeout=40) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for (out, err), p, o in zip(results, procs, outs):
        assert p.returncode == 0 and out == b"200", (out, err)
        assert harness.sha256_file(o) == digest

    gets = fault.key_stats(KEY)["GET"]
    assert gets in (1, 2), gets
    fault.fault(KEY, clear=True)
    r = get(e.url("/" + KEY))
    assert r.status == 200 and r.xcache() == "hit"
    assert harness.sha256(r.body) == digest
    assert fault.key_stats(KEY)["GET"] == gets
