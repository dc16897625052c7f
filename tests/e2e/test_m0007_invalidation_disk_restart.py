"""
m0007: the invalidation of an unsafe method reaches the disk cache and
survives a restart. An object on disk is invalidated by a PUT through the
edge; a new edge on the same disk and state directory does not serve the
old copy (the rule was journalled), it fetches the new one. The counters
say what was forwarded: forwards, forward_invalidations, bytes_forwarded.
"""

import diskutil
import harness


def test_put_invalidates_disk_copy_across_restart(plain, edge, get, tmp_path):
    old = harness.object_bytes(100000, 71)
    new = harness.object_bytes(150000, 72)
    plain.put("/m0007/o.bin", old)
    disk, state = tmp_path / "disk", tmp_path / "state"
    state.mkdir()
    args = ["--plain-origin", plain.url, "--allowed-methods", "all",
            "--disk-cache", "%s:64MiB" % disk, "--state-dir", str(state)]

    e1 = edge(args)
    r = get(e1.url("/m0007/o.bin"))
    assert r.status == 200 and r.body == old and r.xcache() == "miss"
    diskutil.wait_stats(e1, lambda s: s["disk_writes"] == 1, 10, "the object on disk")
    p = tmp_path / "new.bin"
    p.write_bytes(new)
    r = get(e1.url("/m0007/o.bin"), "-T", str(p))
    assert r.status == 201
    st = diskutil.stats(e1)
    assert st["forwards"] == 1 and st["forward_invalidations"] == 1, st
    assert st["bytes_forwarded"] == len(new), st
    diskutil.stop_clean(e1)
    assert len(plain.requests("/m0007/o.bin", "GET")) == 1

    e2 = edge(args)
    diskutil.wait_stats(e2, lambda s: s["disk_scan_done"] == 1, 10, "the start scan")
    r = get(e2.url("/m0007/o.bin"))
    assert r.status == 200 and r.xcache() == "miss", r
    assert harness.sha256(r.body) == harness.sha256(new)
    assert len(plain.requests("/m0007/o.bin", "GET")) == 2
    r = get(e2.url("/m0007/o.bin"))
    assert r.xcache() == "hit" and r.body == new
    st = diskutil.stats(e2)
    assert st["forwards"] == 0 and st["hits"] == 1, st
