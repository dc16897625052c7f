"""
r0002: several ranges in one request (RFC 9110 14.6): a 206
multipart/byteranges body built from blocks, read by two parsers (a strict
one and Python's email package) that must agree; each part has
Content-Type and Content-Range and the right bytes; overlapping,
adjacent or close ranges (a gap smaller than a part's overhead, RFC 9110
14.1.2) may be coalesced, but the parts cover what was asked and nothing
more; unsatisfiable ranges in the set are dropped (all of them: 416);
more ranges than limits.max_ranges and the Range is ignored (200, the
whole body), as nginx's max_ranges. S3 never receives a multi-range
request: the edge fetches blocks.
"""

import pytest

import harness
from rangeutil import (BLOCK, MiB, check_block_fetches, check_cover,
                       check_multipart, fault_config, origin_gets,
                       parse_content_range, range_of)

# above cache.orphan_fill_max (8 MiB): what a cold request leaves out is
# not fetched after it, so the second request of a case is a plain hit
SIZE = 24 * MiB + 777
SEED = 202
CT = "application/x-r0002"


def _put(fault, key):
    info = fault.put(key, size=SIZE, seed=SEED, content_type=CT)
    return harness.object_bytes(SIZE, SEED), info["etag"]


def _spec(ranges):
    return "bytes=" + ",".join("%s-%s" % (a if a is not None else "",
                                          b if b is not None else "")
                               for a, b in ranges)


def _clip(ranges, size):
    """Requested (first|None, last|None) pairs -> inclusive spans."""
    out = []
    for a, b in ranges:
        if a is None:
            out.append((max(0, size - b), size - 1))
        elif a < size:
            out.append((a, size - 1 if b is None else min(b, size - 1)))
    return out


def _check(r, data, ranges):
    """206 with either multipart/byteranges or (when everything was
    coalesced into one range) a single Content-Range."""
    assert r.status == 206, r
    assert r.rc == 0, r
    spans = _clip(ranges, len(data))
    ct = r.header("content-type") or ""
    if ct.lower().startswith("multipart/byteranges"):
        return check_multipart(r, data, spans, content_type=CT)
    a, b, n = parse_content_range(r.header("content-range"))
    assert n == len(data)
    assert r.body == data[a:b + 1]
    check_cover([(a, b)], spans)
    return [(a, b)]


# (ranges, multipart required: the spans are far apart, so none may be
# coalesced)
CASES = [
    ([(0, 99), (1000, 1099)], True),
    ([(10, 19), (BLOCK - 5, BLOCK + 5), (5 * MiB, 5 * MiB + 10)], True),
    ([(0, 0), (None, 1)], True),                       # first and last byte
    ([(100, 199), (None, 300)], True),                 # with a suffix
    ([(4 * MiB, None), (0, 9)], True),                 # open, out of order
    ([(0, 99), (50, 149)], False),                     # overlapping
    ([(0, 99), (100, 199)], False),                    # adjacent
    ([(500, 599), (0, 999)], False),                   # one inside another
    ([(0, 9), (SIZE + 10, SIZE + 20)], False),         # one unsatisfiable
    ([(0, 9), (1000, 1009), (2000, 2009), (3000, 3009)], True),
    ([(0, 9), (20, 29), (40, 49), (60, 69)], False),  # close: may merge
]


@pytest.mark.parametrize("ranges,multipart", CASES,
                         ids=[_spec(c[0]) for c in CASES])
def test_multi_range(fault, edge_fault, get, ranges, multipart):
    key = "r0002/multi.bin"
    data, etag = _put(fault, key)
    e = edge_fault(["--max-object-size", "64MiB"])
    url = e.url("/" + key)
    for attempt in ("cold", "warm"):
        r = get(url, "-H", "Range: " + _spec(ranges))
        parts = _check(r, data, ranges)
        if multipart:
            assert r.header("content-type").lower().startswith(
                "multipart/byteranges"), r
            assert len(parts) == len(ranges), parts
            asked = _clip(ranges, SIZE)
            if asked == sorted(asked):
                # parts in the order asked (RFC 9110 14.6)
                assert parts == asked, parts
            else:
                assert sorted(parts) == sorted(asked), parts
        if attempt == "warm":
            assert r.xcache() == "hit", r
        else:
            assert r.xcache() == "miss", r
    check_block_fetches(fault, key, SIZE, etag=etag)


def test_multi_range_cold_fetches_only_its_blocks(fault, edge_fault, get):
    # larger than cache.orphan_fill_max (8 MiB), so that the edge does not
    # complete the object once the client is served
    key = "r0002/sparse.bin"
    size = 24 * MiB + 5
    info = fault.put(key, size=size, seed=SEED + 1, content_type=CT)
    data = harness.object_bytes(size, SEED + 1)
    e = edge_fault(["--max-object-size", "64MiB"])
    ranges = [(100, 199), (20 * MiB + 100, 20 * MiB + 199)]
    r = get(e.url("/" + key), "-H", "Range: " + _spec(ranges))
    _check(r, data, ranges)
    assert r.xcache() == "miss"
    gets = check_block_fetches(fault, key, size, etag=info["etag"])
    assert sum(g["bytes_sent"] for g in gets) <= 4 * BLOCK, gets
    starts = {range_of(g)[0] for g in gets}
    assert 0 in starts and 20 * MiB in starts, gets


def test_all_unsatisfiable_416(fault, edge_fault, get):
    key = "r0002/unsat.bin"
    _put(fault, key)
    e = edge_fault(["--max-object-size", "64MiB"])
    spec = "bytes=%d-%d,%d-" % (SIZE, SIZE + 5, SIZE + 100)
    for _ in range(2):
        r = get(e.url("/" + key), "-H", "Range: " + spec)
        assert r.status == 416, r
        assert r.header("content-range") == "bytes */%d" % SIZE, r
    for g in origin_gets(fault, key):
        assert "," not in (g["range"] or ""), g


def test_invalid_element_ignores_whole_range(fault, edge_fault, get):
    key = "r0002/invalid.bin"
    data, _ = _put(fault, key)
    e = edge_fault(["--max-object-size", "64MiB"])
    for spec in ("bytes=0-9,abc", "bytes=0-9,5-2", "bytes=0-9;20-29"):
        r = get(e.url("/" + key), "-H", "Range: " + spec)
        assert r.status == 200 and r.body == data, (spec, r)
        assert r.header("content-range") is None


def test_default_max_ranges_16(fault, edge_fault, get):
    key = "r0002/many.bin"
    data, _ = _put(fault, key)
    e = edge_fault(["--max-object-size", "64MiB"])
    url = e.url("/" + key)
    assert get(url).body == data            # warm: the limit, not blocks
    sixteen = [(i * 1000, i * 1000 + 9) for i in range(16)]
    r = get(url, "-H", "Range: " + _spec(sixteen))
    assert len(_check(r, data, sixteen)) == 16
    seventeen = sixteen + [(17000, 17009)]
    r = get(url, "-H", "Range: " + _spec(seventeen))
    assert r.status == 200, r
    assert r.body == data and r.header("content-range") is None
    assert r.xcache() == "hit"


def test_max_ranges_config(fault, edge, get):
    key = "r0002/limit.bin"
    data, _ = _put(fault, key)
    e = edge(config=fault_config(fault, cache={"max_object_size": "64MiB"},
                                 limits={"max_ranges": 2}))
    url = e.url("/" + key)
    two = [(0, 9), (100, 109)]
    r = get(url, "-H", "Range: " + _spec(two))
    assert len(_check(r, data, two)) == 2
    three = two + [(200, 209)]
    r = get(url, "-H", "Range: " + _spec(three))
    assert r.status == 200 and r.body == data, r
    # a single range is never refused by the limit
    r = get(url, "-H", "Range: bytes=5-6")
    assert r.status == 206 and r.body == data[5:7]
    for g in origin_gets(fault, key):
        assert "," not in (g["range"] or ""), g
