"""
a0010: many clients at once (24 curl processes): misses and hits of
several keys, some from a slow origin, one key above the object size
limit. Every body is whole and right; the edge stays up and clean. The
cacheable keys are fetched once each (request coalescing); the one above
the limit passes, at most once per client and block.
"""

import subprocess

import harness


def test_many_concurrent_clients(fault, edge_fault, tmp_path):
    objs = {"a0010/small.bin": 1000, "a0010/mid.bin": 300000,
            "a0010/big.bin": 1500000, "a0010/slow.bin": 500000}
    for i, (k, size) in enumerate(objs.items()):
        fault.put(k, size=size, seed=1000 + i)
    digests = {k: harness.sha256(harness.object_bytes(size, 1000 + i))
               for i, (k, size) in enumerate(objs.items())}
    fault.fault("a0010/slow.bin", rate=1024 * 1024)
    e = edge_fault(["--max-object-size", "1MiB"])

    keys = list(objs) * 6
    procs = []
    try:
        for i, k in enumerate(keys):
            out = tmp_path / ("out%02d" % i)
            procs.append((k, out, subprocess.Popen(
                ["curl", "-sS", "--http1.1", "--max-time", "30", "-o",
                 str(out), "-w", "%{http_code}", e.url("/" + k)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
        results = [(k, out, p.communicate(timeout=40), p.returncode)
                   for k, out, p in procs]
    finally:
        for _, _, p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    bad = [(k, rc, so, se) for k, out, (so, se), rc in results
           if rc != 0 or so != b"200" or harness.sha256_file(out) != digests[k]]
    assert bad == [], bad
    for k in objs:
        gets = fault.key_stats(k)["GET"]
        if k == "a0010/big.bin":
            assert 1 <= gets <= 6 * 2, (k, gets)
        else:
            assert gets == 1, (k, gets)
    # too big: uncached, two requests per client (the first block, which
    # tells the size, then the rest in one range)
    assert fault.key_stats("a0010/big.bin")["GET"] == 12, "too big: uncached"
    e.check_alive()
    assert len(e.wait_access(len(keys))) == len(keys)
