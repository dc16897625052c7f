"""
r0001: single byte ranges (RFC 9110 14) answered from the block store.

A cold range is a Miss that fetches only the blocks it covers, as
block-aligned Range requests (on an object larger than
cache.orphan_fill_max, or with orphan_fill_max: 0: a smaller object may be
completed into the cache once the client has its bytes); the same and
other ranges inside those blocks are then Hits with no origin request. Every case of RFC 9110 14
that a single range can hit: a-b, a-, -n, a range across a block boundary,
an end past the object (clipped), a suffix longer than the object (the
whole object as 206 0-(N-1)/N), start at or past the end (416 with
Content-Range bytes */N), -0 (416), invalid syntax or another unit (the
Range ignored: 200 with the whole body), Accept-Ranges: bytes on 200s,
Range on HEAD ignored, and a zero-length object (bytes=0- is 416, a plain
GET 200 empty). S3 never sees a multi-range or an unaligned range.
"""

import pytest

import harness
from rangeutil import (BLOCK, MiB, check_block_fetches, fault_config,
                       origin_gets, parse_content_range, range_of)

SIZE = 5 * MiB + 12345          # six blocks, the last one partial
SEED = 101


def _put(fault, key):
    info = fault.put(key, size=SIZE, seed=SEED, content_type="video/mp4")
    return harness.object_bytes(SIZE, SEED), info["etag"]


def _check_206(r, data, a, b):
    assert r.status == 206, r
    assert r.rc == 0, r
    assert parse_content_range(r.header("content-range")) == (a, b, len(data)), r
    assert r.header("content-length") == str(b - a + 1), r
    assert r.body == data[a:b + 1], "wrong bytes for %d-%d" % (a, b)
    assert r.header("content-type") == "video/mp4", r


# (Range value, first, last) on SIZE bytes
SATISFIABLE = [
    ("bytes=100-199", 100, 199),
    ("bytes=0-0", 0, 0),
    ("bytes=%d-%d" % (BLOCK - 1000, BLOCK + 999), BLOCK - 1000, BLOCK + 999),
    ("bytes=%d-" % (5 * MiB), 5 * MiB, SIZE - 1),
    ("bytes=%d-" % (SIZE - 1), SIZE - 1, SIZE - 1),
    ("bytes=-500", SIZE - 500, SIZE - 1),
    ("bytes=-%d" % (SIZE + 100), 0, SIZE - 1),       # suffix longer than N
    ("bytes=%d-99999999999" % (4 * MiB), 4 * MiB, SIZE - 1),  # end clipped
    ("bytes=%d-%d" % (2 * MiB, 3 * MiB - 1), 2 * MiB, 3 * MiB - 1),
]

UNSATISFIABLE = ["bytes=%d-" % SIZE, "bytes=%d-%d" % (SIZE + 5, SIZE + 10),
                 "bytes=-0"]

INVALID = ["bytes=abc", "bytes=5-2", "items=0-10", "bytes 0-10", "bytes=",
           "bytes=--5", "bytes=1-2-3", "bytes=0x10-0x20", "bytes=-",
           "BYTES=0-10x"]


def test_cold_range_fetches_only_its_blocks(fault, edge_fault, get):
    # larger than cache.orphan_fill_max (8 MiB): once the client has its
    # bytes, the edge does not go on to complete the object
    key = "r0001/cold.bin"
    size = 20 * MiB + 12345
    info = fault.put(key, size=size, seed=SEED, content_type="video/mp4")
    data, etag = harness.object_bytes(size, SEED), info["etag"]
    e = edge_fault(["--max-object-size", "64MiB"])
    url = e.url("/" + key)

    a, b = 3 * MiB + 500, 3 * MiB + 1499         # inside block 3
    r = get(url, "-H", "Range: bytes=%d-%d" % (a, b))
    _check_206(r, data, a, b)
    assert r.xcache() == "miss", r
    gets = check_block_fetches(fault, key, size, etag=etag)
    assert sum(g["bytes_sent"] for g in gets) <= 2 * BLOCK, gets
    first = gets[0]
    assert first["range"].startswith("bytes=%d-" % (3 * MiB)), first

    # the same range and another one inside block 3: hits, no new fetch
    n = len(gets)
    for a2, b2 in ((a, b), (3 * MiB, 3 * MiB + 99), (3 * MiB + 7, 4 * MiB - 1)):
        r = get(url, "-H", "Range: bytes=%d-%d" % (a2, b2))
        _check_206(r, data, a2, b2)
        assert r.header("x-cache") == "Hit from s3edge", r
    assert len(origin_gets(fault, key)) == n

    # across into block 4: only what is missing is fetched, with If-Match
    a3, b3 = 4 * MiB - 10, 4 * MiB + 9
    r = get(url, "-H", "Range: bytes=%d-%d" % (a3, b3))
    _check_206(r, data, a3, b3)
    gets = check_block_fetches(fault, key, size, etag=etag)
    assert any(g["range"].startswith("bytes=%d-" % (4 * MiB))
               for g in gets[n:]), gets
    assert all("if-match" in g["headers"] for g in gets[n:]), gets
    assert all(range_of(g)[0] != 3 * MiB for g in gets[n:]), \
        "block 3 fetched twice: %r" % gets
    lines = e.wait_access(5)
    assert [(l["status"], l["cache"]) for l in lines[:4]] == \
        [("206", "MISS")] + [("206", "HIT")] * 3, lines
    assert [l["bytes"] for l in lines[:4]] == ["1000", "1000", "100",
                                               str(MiB - 7)], lines


def test_single_ranges_cold_then_warm(fault, edge_fault, get):
    key = "r0001/table.bin"
    data, etag = _put(fault, key)
    e = edge_fault(["--max-object-size", "64MiB"])
    url = e.url("/" + key)

    # first pass: each range finds the object partly cached (its blocks
    # fetched as needed); second pass: all of it cached
    for i, (spec, a, b) in enumerate(SATISFIABLE):
        r = get(url, "-H", "Range: " + spec)
        _check_206(r, data, a, b)
        if i == 0:
            assert r.xcache() == "miss", r
    r = get(url)
    assert r.status == 200 and r.body == data
    fetched = len(origin_gets(fault, key))
    for spec, a, b in SATISFIABLE:
        r = get(url, "-H", "Range: " + spec)
        _check_206(r, data, a, b)
        assert r.xcache() == "hit", (spec, r)
    assert len(origin_gets(fault, key)) == fetched
    check_block_fetches(fault, key, SIZE, etag=etag)


@pytest.mark.parametrize("spec", UNSATISFIABLE)
def test_unsatisfiable_416(fault, edge_fault, get, spec):
    key = "r0001/unsat.bin"
    data, _ = _put(fault, key)
    e = edge_fault(["--max-object-size", "64MiB"])
    url = e.url("/" + key)
    for _ in range(2):          # cold (size unknown yet), then known
        r = get(url, "-H", "Range: " + spec)
        assert r.status == 416, (spec, r)
        assert r.header("content-range") == "bytes */%d" % SIZE, r
        assert b"<Error>" not in r.body and b"InvalidRange" not in r.body
    r = get(url, "-H", "Range: bytes=0-9")
    _check_206(r, data, 0, 9)
    for g in origin_gets(fault, key):
        assert "," not in (g["range"] or "")


def test_invalid_range_ignored(fault, edge_fault, get):
    key = "r0001/invalid.bin"
    data, _ = _put(fault, key)
    e = edge_fault(["--max-object-size", "64MiB"])
    url = e.url("/" + key)
    for i, spec in enumerate(INVALID):
        r = get(url, "-H", "Range: " + spec)
        assert r.status == 200, (spec, r)
        assert r.rc == 0 and r.body == data, spec
        assert r.header("content-range") is None, (spec, r)
        assert r.header("accept-ranges") == "bytes", (spec, r)
        assert r.header("content-length") == str(SIZE)
        if i > 0:
            assert r.xcache() == "hit", (spec, r)
    # whatever the client sent, S3 saw only block ranges
    check_block_fetches(fault, key, SIZE)


def test_accept_ranges_and_head(fault, edge_fault, get):
    key = "r0001/head.bin"
    data, etag = _put(fault, key)
    e = edge_fault(["--max-object-size", "64MiB"])
    url = e.url("/" + key)
    r = get(url)
    assert r.status == 200 and r.body == data and r.xcache() == "miss"
    assert r.header("accept-ranges") == "bytes", r
    r = get(url)
    assert r.xcache() == "hit" and r.header("accept-ranges") == "bytes", r
    # Range on HEAD is ignored: 200 with the whole length, no Content-Range
    for spec in ("bytes=0-9", "bytes=-5", "bytes=%d-" % SIZE, "bytes=0-1,5-6"):
        r = get(url, "-I", "-H", "Range: " + spec)
        assert r.status == 200, (spec, r)
        assert r.header("content-length") == str(SIZE), r
        assert r.header("content-range") is None, r
        assert r.header("etag") == etag


def test_orphan_fill_max_0_fetches_only_the_range(fault, edge, get):
    """With cache.orphan_fill_max: 0 nothing is fetched once the client has
    its bytes, whatever the object's size: a cold range costs its blocks."""
    key = "r0001/small-cold.bin"
    data, etag = _put(fault, key)
    e = edge(config=fault_config(fault, cache={"orphan_fill_max": "0",
                                               "max_object_size": "64MiB"}))
    url = e.url("/" + key)
    a, b = 3 * MiB + 500, 3 * MiB + 1499
    r = get(url, "-H", "Range: bytes=%d-%d" % (a, b))
    _check_206(r, data, a, b)
    assert r.xcache() == "miss"
    a2, b2 = 10, BLOCK + 10             # blocks 0 and 1
    r = get(url, "-H", "Range: bytes=%d-%d" % (a2, b2))
    _check_206(r, data, a2, b2)
    gets = check_block_fetches(fault, key, SIZE, etag=etag)
    assert sorted(range_of(g)[0] for g in gets) == [0, BLOCK, 3 * BLOCK], [
        g["range"] for g in gets]
    assert sum(g["bytes_sent"] for g in gets) == 3 * BLOCK


def test_zero_length_object(fault, edge_fault, get):
    key = "r0001/empty.bin"
    fault.put(key, data=b"")
    e = edge_fault()
    url = e.url("/" + key)
    r = get(url, "-H", "Range: bytes=0-")
    assert r.status == 416, r
    assert r.header("content-range") == "bytes */0", r
    r = get(url)
    assert r.status == 200 and r.rc == 0 and r.body == b"", r
    assert r.header("content-length") == "0"
    r = get(url, "-H", "Range: bytes=0-")
    assert r.status == 416 and r.header("content-range") == "bytes */0", r
    r = get(url)
    assert r.status == 200 and r.body == b"" and r.xcache() == "hit", r
    for g in origin_gets(fault, key):
        assert "," not in (g["range"] or "")
