"""
r0003: If-Range (RFC 9110 13.1.5) evaluated at the edge, cold and warm.
An entity tag that matches strongly -> 206; another tag, a weak tag (even
W/ of the same one) or garbage -> 200 with the whole object. An HTTP date
exactly equal to Last-Modified -> 206; any other date -> 200. If-Range
without Range changes nothing. Whatever the client sends, S3 sees only
block ranges.
"""

import pytest

import harness
from rangeutil import MiB, check_block_fetches, parse_content_range

SIZE = 10 * MiB + 4321     # above cache.orphan_fill_max: no fill after a range
SEED = 303
LAST_MODIFIED = 1700000000          # Tue, 14 Nov 2023 22:13:20 GMT
RANGE = (MiB - 50, MiB + 49)


def _lm(t):
    import email.utils
    return email.utils.formatdate(t, usegmt=True)


# (name, If-Range value made from the ETag, partial expected)
CASES = [
    ("etag", lambda etag: etag, True),
    ("other-etag", lambda etag: '"0123456789abcdef0123456789abcdef"', False),
    ("weak-same-etag", lambda etag: "W/" + etag, False),
    ("date-equal", lambda etag: _lm(LAST_MODIFIED), True),
    ("date-earlier", lambda etag: _lm(LAST_MODIFIED - 1), False),
    ("date-later", lambda etag: _lm(LAST_MODIFIED + 3600), False),
    ("garbage", lambda etag: "not a validator", False),
]


@pytest.mark.parametrize("name,value,partial", CASES,
                         ids=[c[0] for c in CASES])
def test_if_range(fault, edge_fault, get, name, value, partial):
    key = "r0003/%s.bin" % name
    info = fault.put(key, size=SIZE, seed=SEED, last_modified=LAST_MODIFIED)
    data = harness.object_bytes(SIZE, SEED)
    etag = info["etag"]
    e = edge_fault(["--max-object-size", "64MiB"])
    url = e.url("/" + key)
    a, b = RANGE
    for attempt in ("miss", "hit"):
        r = get(url, "-H", "Range: bytes=%d-%d" % (a, b),
                "-H", "If-Range: " + value(etag))
        assert r.rc == 0, r
        assert r.header("etag") == etag, r
        if partial:
            assert r.status == 206, (name, attempt, r)
            assert parse_content_range(r.header("content-range")) == \
                (a, b, SIZE)
            assert r.body == data[a:b + 1]
        else:
            assert r.status == 200, (name, attempt, r)
            assert r.header("content-range") is None
            assert r.body == data
        if attempt == "hit":
            assert r.xcache() == "hit", r
    check_block_fetches(fault, key, SIZE, etag=etag)


def test_if_range_without_range(fault, edge_fault, get):
    key = "r0003/norange.bin"
    info = fault.put(key, size=SIZE, seed=SEED, last_modified=LAST_MODIFIED)
    data = harness.object_bytes(SIZE, SEED)
    e = edge_fault(["--max-object-size", "64MiB"])
    for v in (info["etag"], '"other"'):
        r = get(e.url("/" + key), "-H", "If-Range: " + v)
        assert r.status == 200 and r.body == data, r
