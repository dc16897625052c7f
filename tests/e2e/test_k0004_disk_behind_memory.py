"""
k0004: a working set three times the memory cache, with a disk cache
behind it. After one pass of misses everything is on disk; in the next
passes, objects the memory store evicted come back from disk as hits
(X-Cache Hit, no origin request), byte for byte, over HTTP/1.1 and h2c,
and the memory store never holds more than its budget, whatever the disk
loads bring back into it.
"""

import diskutil
import harness
from h2client import curl_h2

KiB = 1024


def test_evicted_from_memory_served_from_disk(fault, edge_fault, get,
                                              tmp_path):
    size = 512 * KiB
    keys = ["k0004/obj%02d.bin" % i for i in range(24)]   # 12 MiB
    datas = {}
    for i, k in enumerate(keys):
        datas[k] = harness.object_bytes(size, 400 + i)
        fault.put(k, data=datas[k])
    e = edge_fault(["--memory-cache", "4MiB", "--max-object-size", "1MiB",
                    "--disk-cache", "%s:64MiB" % (tmp_path / "disk")])

    for k in keys:
        r = get(e.url("/" + k))
        assert r.rc == 0 and r.status == 200 and r.xcache() == "miss", r
        assert r.body == datas[k]
    st = diskutil.wait_stats(e, lambda s: s["disk_writes"] == len(keys), 15,
                             "every object on disk")
    assert st["disk_objects"] == len(keys) and st["disk_writes_skipped"] == 0
    assert st["mem_bytes"] <= st["mem_budget"] == 4 * 1024 * KiB, st
    assert st["mem_evictions"] > 0, st

    for rnd in range(2):
        for i, k in enumerate(keys):
            url = e.url("/" + k)
            r = curl_h2(get, url) if (i + rnd) % 3 == 0 else get(url)
            assert r.rc == 0 and r.status == 200, (rnd, k, r)
            assert r.header("x-cache") == "Hit from s3edge", (rnd, k, r)
            assert harness.sha256(r.body) == harness.sha256(datas[k]), k
            st = diskutil.stats(e)
            assert st["mem_bytes"] <= st["mem_budget"], (rnd, k, st)
    for k in keys:
        assert fault.key_stats(k)["GET"] == 1, k
    st = diskutil.stats(e)
    # at most 4 MiB / 512 KiB objects can have stayed in memory in between
    assert st["hits_disk"] >= 2 * (len(keys) - 8), st
    assert st["hits_disk"] + st["hits_memory"] == 2 * len(keys), st
    assert st["disk_read_errors"] == 0 and st["disk_discarded"] == 0, st
    assert st["disk_writes"] == len(keys), st   # loads are not written back
    e.check_alive()
