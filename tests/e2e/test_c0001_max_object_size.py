"""
c0001: objects above --max-object-size stream through uncached: every
request reaches the origin and gets the whole object (two origin requests
each: the first block, which tells the size, then the rest in one range);
an object within the limit is cached as usual.
"""

import harness


def test_too_big_streams_uncached(s3, edge_s3, get):
    big = harness.object_bytes(2 * 1024 * 1024, 21)
    small = harness.object_bytes(512 * 1024, 22)
    s3.put("c0001/big.bin", big)
    s3.put("c0001/small.bin", small)
    e = edge_s3(["--max-object-size", "1MiB"])
    s3.reset()

    for i in range(2):
        r = get(e.url("/c0001/big.bin"))
        assert r.status == 200, r
        assert harness.sha256(r.body) == harness.sha256(big)
        assert r.xcache() in ("miss", "pass"), r.header("x-cache")
    assert s3.gets("c0001/big.bin") == 4

    r1 = get(e.url("/c0001/small.bin"))
    r2 = get(e.url("/c0001/small.bin"))
    assert r1.body == small and r2.body == small
    assert (r1.xcache(), r2.xcache()) == ("miss", "hit")
    assert s3.gets("c0001/small.bin") == 1

    lines = e.wait_access(4)
    assert [l["cache"] for l in lines][:2] in (["PASS", "PASS"],
                                               ["MISS", "PASS"],
                                               ["MISS", "MISS"])
    assert [l["cache"] for l in lines][2:] == ["MISS", "HIT"]
