"""
r0005: 200 clients ask for one cold 100 MiB object at once (a release
stampede). The origin's first answer is held back until all 200 clients
are connected to the edge, so they all wait on the same cold object.
Coalescing: at most one origin fetch per block, so the origin sends each
byte of the object exactly once (the sum of its bytes for the key is the
object's size) and its block ranges do not overlap; every client gets the
whole object, byte-identical (sha256). The time to the last byte is
reported, not asserted. The bodies go through `openssl dgst` processes,
never to disk.

Over HTTP/2 (E2E_PROTO=h2c or h2) the object is 16 MiB (16 blocks, two
read-ahead windows): 200 curl processes unframing, and over TLS
decrypting, 20 GiB take 5 to 10 minutes on 2 cores, where 200 x 20 MiB
took 55 s (h2c) and 114 s (h2) against 25 s over HTTP/1.1.
"""

import os
import statistics
import time

import harness
from rangeutil import (MiB, CurlStream, check_block_fetches, established,
                       fetched_spans, union, url_port)

KEY = "r0005/release.bin"
# E2E_ASAN=1 (tests/run-all.sh's sanitizer pass): the 100 MiB run is the
# plain build's; under ASan the same checks run on 16 MiB
SIZE = 16 * MiB if (harness.E2E_PROTO in ("h2c", "h2") or
                    os.environ.get("E2E_ASAN") == "1") else 100 * MiB
SEED = 505
CLIENTS = 200
GATE = "r0005"


def test_stampede_one_fetch_per_block(fault, edge_fault, tmp_path):
    info = fault.put(KEY, size=SIZE, seed=SEED)
    digest = info["sha256"]
    try:
        fault.fault(KEY, hold=GATE)
        e = edge_fault(["--memory-cache", "512MiB",
                        "--max-object-size", "256MiB"])
        url = e.url("/" + KEY)
        port = url_port(harness.curl_proto_args(url)[1])

        clients = []
        try:
            for _ in range(CLIENTS):
                clients.append(CurlStream(url, timeout=300, piped=True,
                                          workdir=tmp_path))
            harness.wait_for(lambda: established(port) >= CLIENTS, 60,
                             "%d clients connected" % CLIENTS, interval=0.1)
            time.sleep(0.5)     # (over TLS: their handshakes and requests)
            t_release = time.monotonic()
            fault.release(GATE)
            for c in clients:
                c.wait(330)
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

        # the stampede was real: no origin answer before the release
        assert min(g["t_first_byte"] for g in gets) >= t_release, gets[:3]

        last = sorted(c.t_end - t_release for c in clients)
        print("r0005: %d clients, %d origin GETs; from the release to the "
              "last byte: median %.1fs, max %.1fs"
              % (CLIENTS, len(gets), statistics.median(last), last[-1]))
        e.check_alive()
    finally:
        fault.delete(KEY)
