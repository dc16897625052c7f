"""
a0005: range requests are answered from the cache's blocks: a cold range
fetches the block it needs (a block-aligned Range to the origin) and is a
Miss; later ranges of that block are Hits with no origin request; 206 with
the right bytes, Content-Range and Content-Length, HIT in the access log.
An unsatisfiable range is a 416 with Content-Range bytes */N. (The fault
origin implements S3's ranges exactly; s3rver's are wrong.)
"""

import harness

KEY = "a0005/ranged.bin"
SIZE = 100 * 1024


def test_ranges_from_blocks(fault, edge_fault, get):
    fault.put(KEY, size=SIZE, seed=5)
    data = harness.object_bytes(SIZE, 5)
    e = edge_fault()
    url = e.url("/" + KEY)

    cases = [("100-199", 100, 199), ("100-199", 100, 199),
             ("-500", SIZE - 500, SIZE - 1), ("102000-", 102000, SIZE - 1),
             ("0-0", 0, 0), ("100000-999999", 100000, SIZE - 1)]
    for i, (spec, a, b) in enumerate(cases):
        r = get(url, "-H", "Range: bytes=" + spec)
        assert r.status == 206, (spec, r)
        assert r.header("content-range") == "bytes %d-%d/%d" % (a, b, SIZE)
        assert r.header("content-length") == str(b - a + 1)
        assert r.body == data[a:b + 1], spec
        want = "Miss from s3edge" if i == 0 else "Hit from s3edge"
        assert r.header("x-cache") == want, (spec, r)

    # one block-aligned fetch of the only block
    ks = fault.key_stats(KEY)
    assert ks["GET"] == 1, ks
    assert ks["ranges"] == ["bytes=0-1048575"]

    lines = e.wait_access(len(cases))
    assert [(l["status"], l["cache"]) for l in lines] == \
        [("206", "MISS")] + [("206", "HIT")] * (len(cases) - 1)

    # the whole object is in the cache too
    r = get(url)
    assert r.status == 200 and r.body == data
    assert r.xcache() == "hit"
    assert r.header("accept-ranges") == "bytes"
    assert fault.key_stats(KEY)["GET"] == 1


def test_unsatisfiable_range_416(fault, edge_fault, get):
    fault.put(KEY, size=SIZE, seed=5)
    e = edge_fault()
    r = get(e.url("/" + KEY), "-H", "Range: bytes=%d-" % SIZE)
    assert r.status == 416, r
    assert r.header("content-range") == "bytes */%d" % SIZE
    assert b"<Error>" not in r.body
    # the edge asked for the block the range starts in (the object's
    # last), learned the size from Content-Range, and answered itself
    assert fault.key_stats(KEY)["ranges"] == ["bytes=0-1048575"]
