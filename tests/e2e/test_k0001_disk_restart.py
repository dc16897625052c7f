"""
k0001: the disk cache survives a restart. Objects fetched once (a small
one with metadata, a multi-block one, an empty one) are written to disk;
the edge stops with SIGTERM (cleanly: no leak, nothing in flight lost) and
a new edge on the same directory finds them with its start scan and
serves them as hits, over HTTP/1.1 and h2c, byte for byte and with the
same headers, without asking the S3 origin again. A HEAD is a hit too.
An object that went stale while the edge was down is revalidated with a
conditional GET and served from disk on the 304 (RefreshHit): its
validators and freshness survived the restart with it.
"""

import time

import diskutil
import harness
from h2client import curl_h2

VOLATILE = {"date", "age", "x-cache"}


def comparable(r):
    return sorted((k.lower(), v) for k, v in r.headers
                  if k.lower() not in VOLATILE)


def test_restart_serves_from_disk_without_origin(s3, edge_s3, get, tmp_path):
    objs = {
        "k0001/small.txt": (b"small object on disk\n" * 40,
                            "text/plain; charset=utf-8"),
        "k0001/multi.bin": (harness.object_bytes(3 * 1024 * 1024 + 4321, 11),
                            "application/octet-stream"),
        "k0001/empty.bin": (b"", "application/octet-stream"),
    }
    for k, (data, ct) in objs.items():
        s3.put(k, data, content_type=ct, metadata={"owner": "k0001"})
    disk = tmp_path / "disk"
    args = ["--disk-cache", "%s:64MiB" % disk]

    e1 = edge_s3(args)
    first = {}
    for k, (data, _) in objs.items():
        r = get(e1.url(harness.url_path(k)))
        assert r.rc == 0 and r.status == 200, r
        assert r.body == data and r.xcache() == "miss", (k, r)
        first[k] = r
    st = diskutil.wait_stats(e1, lambda s: s["disk_writes"] == len(objs), 10,
                             "the objects written to disk")
    assert st["disk_write_errors"] == 0 and st["disk_objects"] == len(objs), st
    diskutil.stop_clean(e1)
    assert set(diskutil.stored(disk)) == set(objs)
    assert diskutil.temp_files(disk) == []

    s3.reset()
    e2 = edge_s3(args)
    st = diskutil.wait_stats(e2, lambda s: s["disk_scan_done"] == 1, 10,
                             "the start scan")
    assert st["disk_scanned"] == len(objs) and st["disk_discarded"] == 0, st
    for k, (data, _) in objs.items():
        url = e2.url(harness.url_path(k))
        r = get(url)
        assert r.rc == 0 and r.status == 200, r
        assert r.xcache() == "hit", (k, r)
        assert harness.sha256(r.body) == harness.sha256(data), k
        assert comparable(r) == comparable(first[k]), k
        assert r.header("age", "").isdigit(), r
        # h2c, from memory now, the same bytes
        r2 = curl_h2(get, url)
        assert r2.rc == 0 and r2.status == 200 and r2.body == data, r2
        assert r2.header("x-cache") == "Hit from s3edge"
    for k in objs:
        assert s3.gets(k) == 0, (k, s3.stats()["counts"])
    st = diskutil.stats(e2)
    assert st["hits_disk"] == len(objs) and st["disk_loads"] == len(objs), st
    assert st["disk_load_bytes"] == sum(len(d) for d, _ in objs.values()), st
    assert st["disk_writes"] == 0, st  # loaded objects are not written back
    diskutil.stop_clean(e2)

    # a HEAD straight after another restart: a hit, from disk
    e3 = edge_s3(args)
    diskutil.wait_stats(e3, lambda s: s["disk_scan_done"] == 1, 10, "the scan")
    r = get(e3.url(harness.url_path("k0001/multi.bin")), "-I")
    assert r.status == 200 and r.xcache() == "hit", r
    assert r.header("content-length") == str(len(objs["k0001/multi.bin"][0]))
    assert s3.stats()["counts"] == {}, s3.stats()["counts"]


def test_stale_after_restart_is_revalidated_and_served_from_disk(
        fault, edge_fault, get, tmp_path):
    key = "k0001/stale.bin"
    data = harness.object_bytes(1500 * 1024, 12)
    fault.put(key, data=data, cache_control="max-age=1")
    disk = tmp_path / "disk"
    args = ["--disk-cache", str(disk)]

    e1 = edge_fault(args)
    r = get(e1.url("/" + key))
    assert r.status == 200 and r.body == data and r.xcache() == "miss", r
    diskutil.wait_stats(e1, lambda s: s["disk_writes"] == 1, 10, "the write")
    diskutil.stop_clean(e1)

    time.sleep(1.2)  # max-age=1 runs out while the edge is down
    e2 = edge_fault(args)
    diskutil.wait_stats(e2, lambda s: s["disk_objects"] == 1, 10, "the scan")
    r = get(e2.url("/" + key))
    assert r.rc == 0 and r.status == 200, r
    assert r.header("x-cache") == "RefreshHit from s3edge", r
    assert r.body == data
    recs = fault.requests_for(key)
    # the first fill fetched it block by block, then one revalidation
    nblocks = max(1, -(-len(data) // (1024 * 1024)))
    assert [x["status"] for x in recs] == [206] * nblocks + [304], recs
    etag = r.header("etag")
    assert recs[-1]["headers"].get("if-none-match") == etag, recs[-1]
    st = diskutil.stats(e2)
    assert st["disk_loads"] == 1 and st["disk_load_bytes"] == len(data), st
