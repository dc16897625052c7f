"""
r0005: 200 clients ask for one cold 100 MiB object at once (a release
stampede). The origin's first answer is held back until every client has
sent its request, so they all wait on the same cold object. Coalescing:
at most one origin fetch per block, so the origin sends each byte of the
object exactly once (the sum of its bytes for the key is the object's
size) and its block ranges do not overlap; every client gets the whole
object, byte-identical (sha256). The clients' median time to first byte is
reported, not asserted.
"""

import statistics
import time

import harness
from rangeutil import (MiB, CurlStream, check_block_fetches, fetched_spans,
                       union)

KEY = "r0005/release.bin"
SIZE = 100 * MiB
SEED = 505
CLIENTS = 200
HOLD_S = 3.0        # the origin's first answer waits this long


def test_stampede_one_fetch_per_block(fault, edge_fault, tmp_path):
    info = fault.put(KEY, size=SIZE, seed=SEED)
    digest = info["sha256"]
    try:
        fault.fault(KEY, first_byte_delay=HOLD_S, times=1)
        e = edge_fault(["--memory-cache", "512MiB",
                        "--max-object-size", "256MiB"])
        url = e.url("/" + KEY)

        clients = []
        try:
            for _ in range(CLIENTS):
                clients.append(CurlStream(url, timeout=120,
                                          workdir=tmp_path))
            t_all_started = time.monotonic()
            for c in clients:
                c.wait(150)
        finally:
            for c in clients:
                c.kill()

        bad = [c for c in clients
               if c.rc != 0 or c.status != 200 or c.nbytes != SIZE
               or c.sha256 != digest]
        assert not bad, "%d of %d clients failed, e.g. %r" % (
            len(bad), CLIENTS, bad[:3])

        gets = check_block_fetches(fault, KEY, SIZE, etag=info["etag"])
        spans = fetched_spans(gets, SIZE)
        sent = sum(g["bytes_sent"] for g in gets)
        assert sent == SIZE, "origin sent %d bytes for a %d-byte object " \
            "(%d GETs)" % (sent, SIZE, len(gets))
        assert union(spans) == [(0, SIZE - 1)], spans
        assert sum(b - a + 1 for a, b in spans) == SIZE, \
            "a block was fetched twice: %r" % sorted(spans)

        # the stampede was real: the first origin answer came after every
        # client had been started
        first = min(gets, key=lambda g: g["t_start"])
        assert first["t_first_byte"] is not None
        assert first["t_first_byte"] > t_all_started, \
            "clients started too slowly to overlap (%.2fs after the hold)" \
            % (t_all_started - first["t_first_byte"])

        ttfb = sorted(c.t_first - c.t_spawn for c in clients)
        last = sorted(c.t_end - c.t_spawn for c in clients)
        print("r0005: %d clients, origin GETs %d; TTFB median %.3fs "
              "(includes the %.1fs hold), last byte median %.3fs max %.3fs"
              % (CLIENTS, len(gets), statistics.median(ttfb), HOLD_S,
                 statistics.median(last), last[-1]))
        e.check_alive()
    finally:
        fault.delete(KEY)
