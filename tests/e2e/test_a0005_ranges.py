"""
a0005: range requests are forwarded to the origin and not cached: 206 with
the right bytes and Content-Range, X-Cache Pass, PASS in the access log,
the origin asked every time; an unsatisfiable range is a 416 with
Content-Range bytes */N. (The fault origin implements S3's ranges exactly;
s3rver's are wrong.)
"""

import harness

KEY = "a0005/ranged.bin"
SIZE = 100 * 1024


def test_ranges_pass_through(fault, edge_fault, get):
    fault.put(KEY, size=SIZE, seed=5)
    data = harness.object_bytes(SIZE, 5)
    e = edge_fault()
    url = e.url("/" + KEY)

    cases = [("100-199", 100, 199), ("100-199", 100, 199),
             ("-500", SIZE - 500, SIZE - 1), ("102000-", 102000, SIZE - 1),
             ("0-0", 0, 0), ("100000-999999", 100000, SIZE - 1)]
    for spec, a, b in cases:
        r = get(url, "-H", "Range: bytes=" + spec)
        assert r.status == 206, (spec, r)
        assert r.header("content-range") == "bytes %d-%d/%d" % (a, b, SIZE)
        assert r.header("content-length") == str(b - a + 1)
        assert r.body == data[a:b + 1], spec
        assert r.header("x-cache") == "Pass from s3edge", (spec, r)

    ks = fault.key_stats(KEY)
    assert ks["GET"] == len(cases), ks
    assert ks["ranges"] == ["bytes=" + c[0] for c in cases]

    lines = e.wait_access(len(cases))
    assert {(l["status"], l["cache"]) for l in lines} == {("206", "PASS")}

    # nothing of the object was cached by the ranges
    r = get(url)
    assert r.status == 200 and r.body == data
    assert r.xcache() == "miss"
    r = get(url)
    assert r.xcache() == "hit"
    assert fault.key_stats(KEY)["GET"] == len(cases) + 1


def test_unsatisfiable_range_416(fault, edge_fault, get):
    fault.put(KEY, size=SIZE, seed=5)
    e = edge_fault()
    r = get(e.url("/" + KEY), "-H", "Range: bytes=%d-" % SIZE)
    assert r.status == 416, r
    assert r.header("content-range") == "bytes */%d" % SIZE
    assert b"<Error>" not in r.body
    assert fault.key_stats(KEY)["ranges"] == ["bytes=%d-" % SIZE]
