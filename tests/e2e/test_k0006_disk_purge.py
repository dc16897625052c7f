"""
k0006: invalidations reach the disk cache. An object on disk is valid only
if its fetch started after every matching rule (DESIGN.md, decision 6),
so the fetch time travels in the file: a purge applied before a restart
(kept in the state directory) still hides the copy on disk after it, and a
purge applied after a restart hides a copy loaded from disk; the next
request goes to the origin, and objects not purged stay disk hits.
"""

import diskutil
import harness
from fleetutil import Fleet


def test_purges_apply_to_disk_copies(edge, fault, get, tmp_path):
    keys = ["k0006/a.bin", "k0006/b.bin", "k0006/c.bin"]
    datas = {}
    for i, k in enumerate(keys):
        datas[k] = harness.object_bytes(300 * 1024 + i, 600 + i)
        fault.put(k, data=datas[k])
    disk = tmp_path / "disk"
    fleet = Fleet(edge, fault, tmp_path, None)
    extra = ["--disk-cache", str(disk)]

    n1 = fleet.start("k6", extra=extra)
    for k in keys:
        r = get(n1.url("/" + k))
        assert r.status == 200 and r.body == datas[k] and r.xcache() == "miss"
    diskutil.wait_stats(n1.edge, lambda s: s["disk_writes"] == 3, 10, "writes")
    # purged before the restart: the rule is journaled, the file stays
    n1.admin.wait_completed(n1.admin.purge(["/" + keys[0]]))
    diskutil.stop_clean(n1.edge)
    assert keys[0] in diskutil.stored(disk)

    n2 = fleet.start("k6", extra=extra)
    diskutil.wait_stats(n2.edge, lambda s: s["disk_objects"] == 3, 10,
                        "the scan")
    r = get(n2.url("/" + keys[0]))
    assert r.status == 200 and r.body == datas[keys[0]], r
    assert r.xcache() == "miss", r
    assert fault.key_stats(keys[0])["GET"] == 2
    # purged after the restart, while only on disk
    n2.admin.wait_completed(n2.admin.purge(["/" + keys[1]]))
    r = get(n2.url("/" + keys[1]))
    assert r.status == 200 and r.body == datas[keys[1]] and r.xcache() == "miss"
    assert fault.key_stats(keys[1])["GET"] == 2
    # not purged: from disk, no origin request
    r = get(n2.url("/" + keys[2]))
    assert r.status == 200 and r.body == datas[keys[2]] and r.xcache() == "hit"
    assert fault.key_stats(keys[2])["GET"] == 1
    st = diskutil.stats(n2.edge)
    assert st["hits_disk"] == 1, st
    # the refetched copies replace the purged files on disk
    st = diskutil.wait_stats(n2.edge, lambda s: s["disk_writes"] == 2, 10,
                             "the rewrites")
    assert st["disk_objects"] == 3, st
