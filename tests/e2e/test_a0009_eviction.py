"""
a0009: a memory cache much smaller than the working set. Objects are
evicted and fetched again, but every response is whole and correct while
that happens, and the edge stays within what it was given (no crash; the
ASan run catches use after free of evicted objects).
"""

import harness


def test_small_cache_many_objects(fault, edge_fault, get):
    size = 600 * 1024
    keys = ["a0009/obj%02d.bin" % i for i in range(8)]
    for i, k in enumerate(keys):
        fault.put(k, size=size, seed=900 + i)
    digests = {k: harness.sha256(harness.object_bytes(size, 900 + i))
               for i, k in enumerate(keys)}
    e = edge_fault(["--memory-cache", "2MiB", "--max-object-size", "1MiB"])
    for round_ in range(3):
        for k in keys:
            for n in range(2):
                r = get(e.url("/" + k))
                assert r.status == 200 and r.rc == 0, (round_, k, r)
                assert harness.sha256(r.body) == digests[k], (round_, k)
                if n == 1:
                    # just fetched, a third of the cache: must be there
                    assert r.xcache() == "hit", (round_, k)
    total = sum(fault.key_stats(k)["GET"] for k in keys)
    # 8 x 600 KiB cannot stay in 2 MiB: objects were fetched again
    assert len(keys) < total <= 3 * len(keys), total
    e.check_alive()
