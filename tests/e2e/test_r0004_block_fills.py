"""
r0004: block fills and cache.block_size.

Every origin fetch is "Range: bytes=B*bs-((B+n)*bs-1)" for the configured
block size (64KiB..64MiB); the first fetch of an object learns its size
from Content-Range and every later one carries If-Match with its ETag. A
cold small range fetches at most two blocks. Blocks fetched for one
request serve the next ones (Hit, no origin request), including a whole
GET once every block is in. The new keys (cache.block_size,
readahead_blocks, orphan_fill_max, reader_timeout, limits.max_ranges) pass
`s3edge -t` with their defaults; block sizes outside 64KiB..64MiB and
values of the wrong kind are errors naming the file and the key.
"""

import subprocess

import pytest

import harness
from rangeutil import (KiB, MiB, check_block_fetches, fault_config,
                       fetched_spans, origin_gets, parse_content_range,
                       range_of, union)

SEED = 404


@pytest.mark.parametrize("bs", [64 * KiB, 256 * KiB, 4 * MiB])
def test_block_size(fault, edge, get, bs):
    key = "r0004/bs%d.bin" % bs
    size = 6 * bs + 1234
    info = fault.put(key, size=size, seed=SEED)
    data = harness.object_bytes(size, SEED)
    # orphan_fill_max 0: the small range is not followed by a fetch of
    # the rest of the (small) object once the client has its bytes
    e = edge(config=fault_config(fault, cache={
        "block_size": "%dKiB" % (bs // KiB), "max_object_size": "64MiB",
        "memory_size": "256MiB", "orphan_fill_max": "0"}))
    url = e.url("/" + key)

    # a small cold range in the middle of block 2
    a, b = 2 * bs + 100, 2 * bs + 199
    r = get(url, "-H", "Range: bytes=%d-%d" % (a, b))
    assert r.status == 206 and r.body == data[a:b + 1], r
    assert parse_content_range(r.header("content-range")) == (a, b, size)
    assert r.xcache() == "miss"
    gets = check_block_fetches(fault, key, size, bs=bs, etag=info["etag"])
    assert sum(g["bytes_sent"] for g in gets) <= 2 * bs, gets
    assert range_of(gets[0])[0] == 2 * bs, gets
    assert "if-match" not in gets[0]["headers"] or \
        gets[0]["headers"]["if-match"] == info["etag"]

    # the whole object: every block fetched once, the first one not again
    r = get(url)
    assert r.status == 200 and r.body == data, r
    gets = check_block_fetches(fault, key, size, bs=bs, etag=info["etag"])
    spans = fetched_spans(gets, size)
    assert union(spans) == [(0, size - 1)], spans
    assert sum(b - a + 1 for a, b in spans) == size, \
        "some bytes fetched twice: %r" % spans
    for g in gets[1:]:
        assert g["headers"].get("if-match") == info["etag"], g
    n = len(gets)

    # now everything is a hit
    for hdr in ([], ["-H", "Range: bytes=%d-%d" % (bs - 1, 3 * bs)],
                ["-H", "Range: bytes=-%d" % (bs + 7)]):
        r = get(url, *hdr)
        assert r.status in (200, 206) and r.xcache() == "hit", (hdr, r)
    assert len(origin_gets(fault, key)) == n


def _check_config(s3edge_bin, fault, tmp_path, extra):
    cfg = fault_config(fault, cache=extra.get("cache"),
                       limits=extra.get("limits"))
    text = harness.yaml_dump(cfg).replace("$listen", "127.0.0.1:1") \
        .replace("$access_log", "off")
    p = tmp_path / "r0004.yaml"
    p.write_text(text + "\n")
    r = subprocess.run([str(s3edge_bin), "-t", "-c", str(p)],
                       capture_output=True, timeout=20)
    return r.returncode, r.stderr.decode("utf-8", "replace"), p


# the defaults spelled out, and the ends of the block size range
GOOD = [
    {"cache": {"block_size": "1MiB", "readahead_blocks": 8,
               "orphan_fill_max": "8MiB", "reader_timeout": "30s"},
     "limits": {"max_ranges": 16}},
    {"cache": {"block_size": "64KiB"}},
    {"cache": {"block_size": "64MiB", "max_object_size": "256MiB"}},
]


@pytest.mark.parametrize("extra", GOOD, ids=["defaults", "64KiB", "64MiB"])
def test_new_keys_accepted(s3edge_bin, fault, tmp_path, extra):
    rc, err, _ = _check_config(s3edge_bin, fault, tmp_path, extra)
    assert rc == 0, err


BAD = [
    ({"cache": {"block_size": v}}, "cache.block_size")
    for v in ("32KiB", "65535", "128MiB", "0", "big", "-1MiB")
] + [
    ({"cache": {"readahead_blocks": -1}}, "cache.readahead_blocks"),
    ({"cache": {"readahead_blocks": "many"}}, "cache.readahead_blocks"),
    ({"cache": {"orphan_fill_max": "lots"}}, "cache.orphan_fill_max"),
    ({"cache": {"reader_timeout": "soon"}}, "cache.reader_timeout"),
    ({"limits": {"max_ranges": -1}}, "limits.max_ranges"),
    ({"limits": {"max_ranges": "x"}}, "limits.max_ranges"),
]


@pytest.mark.parametrize("extra,keyname", BAD,
                         ids=["%s=%s" % (k, list(list(x.values())[0].values())[0])
                              for x, k in BAD])
def test_new_keys_bad_values(s3edge_bin, fault, tmp_path, extra, keyname):
    rc, err, p = _check_config(s3edge_bin, fault, tmp_path, extra)
    assert rc == 1, err
    assert str(p) + ":" in err and keyname in err, err
