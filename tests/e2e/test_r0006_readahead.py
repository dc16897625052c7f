"""
r0006: a cold whole-object GET streams from block fills in order, with
read-ahead: the next blocks are fetched over several origin connections
at once, so a rate-limited origin (S3's throughput is per connection)
delivers faster than one connection would. Asserted: the body is
byte-identical, every block fetched exactly once, the client's first byte
arrives before the origin is done, at least two fetches of the key overlap
in time, and with cache.readahead_blocks: 2 at most nine are in flight at
once (the window grows to four times the setting for a reader that
outruns it). The speed-up is reported, not asserted.
"""

import time

from rangeutil import (MiB, CurlStream, check_block_fetches, fault_config,
                       fetched_spans, max_overlap, union)

SEED = 606
RATE = 8 * MiB          # per origin connection, bytes/s


def _cold_get(fault, e, key, size, info, tmp_path):
    t0 = time.monotonic()
    c = CurlStream(e.url("/" + key), timeout=60, workdir=tmp_path).wait()
    elapsed = time.monotonic() - t0
    assert c.rc == 0 and c.status == 200, c
    assert c.nbytes == size and c.sha256 == info["sha256"], c
    assert c.xcache() == "miss", c
    gets = check_block_fetches(fault, key, size, etag=info["etag"])
    spans = fetched_spans(gets, size)
    assert union(spans) == [(0, size - 1)], spans
    assert sum(b - a + 1 for a, b in spans) == size, \
        "bytes fetched twice: %r" % sorted(spans)
    # streamed: the first byte reached the client before the origin was
    # done with the object
    assert c.t_first is not None
    assert c.t_first < max(g["t_done"] or 0 for g in gets), \
        "the client got its first byte only after the whole fill"
    return gets, elapsed


def test_readahead_parallel_fills(fault, edge_fault, tmp_path):
    key = "r0006/movie.bin"
    size = 32 * MiB
    info = fault.put(key, size=size, seed=SEED)
    try:
        fault.fault(key, rate=RATE)
        e = edge_fault(["--max-object-size", "64MiB"])
        gets, elapsed = _cold_get(fault, e, key, size, info, tmp_path)
        overlap = max_overlap(gets)
        print("r0006: %d MiB cold in %.2fs with up to %d origin fetches at "
              "once; one connection at %d MiB/s needs %.2fs"
              % (size // MiB, elapsed, overlap, RATE // MiB, size / RATE))
        assert overlap >= 2, "no two block fetches overlapped: %r" % [
            (g["range"], g["t_start"], g["t_done"]) for g in gets]
    finally:
        fault.delete(key)


def test_readahead_blocks_bounds_parallelism(fault, edge, tmp_path):
    key = "r0006/bounded.bin"
    size = 12 * MiB
    info = fault.put(key, size=size, seed=SEED + 1)
    try:
        fault.fault(key, rate=RATE)
        e = edge(config=fault_config(fault, cache={
            "readahead_blocks": 2, "max_object_size": "64MiB"}))
        gets, elapsed = _cold_get(fault, e, key, size, info, tmp_path)
        overlap = max_overlap(gets)
        print("r0006: readahead_blocks 2: %d MiB in %.2fs, up to %d "
              "fetches at once" % (size // MiB, elapsed, overlap))
        # the window starts at 2 and grows for a reader that outruns it,
        # to 4 x 2 at most: the block read plus 8 ahead
        assert 2 <= overlap <= 4 * 2 + 1, [(g["range"], g["t_start"], g["t_done"])
                                           for g in gets]
    finally:
        fault.delete(key)
