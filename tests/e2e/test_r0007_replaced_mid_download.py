"""
r0007: the object is replaced in S3 while the edge is still fetching its
blocks. Every block fetch after the first carries If-Match with the first
ETag, so S3 answers 412 and no body is ever stitched from two versions:

  - a client whose response had started is cut (HTTP/1.1: the connection
    closes before Content-Length bytes; HTTP/2: RST_STREAM), and what it
    got is a prefix of the old version;
  - every client, whenever it came, gets either a whole version or a cut
    prefix of one version, never a mix;
  - the blocks of the old version are dropped: the next request gets the
    new version whole, and the origin saw the 412.
"""

import pytest

import harness
from rangeutil import CUT_RC, MiB, CurlStream, origin_gets

SIZE = 48 * MiB
HELD = 20 * MiB         # the origin holds the fetch of this block back
GATE = "r0007"
RATE = 2 * MiB          # per origin connection


def _version(body, old, new):
    """'old' / 'new' (whole), 'old-prefix' / 'new-prefix' (cut), or
    'MIXED'."""
    for name, data in (("old", old), ("new", new)):
        if bytes(body) == data:
            return name
    for name, data in (("old", old), ("new", new)):
        if len(body) < len(data) and data[:len(body)] == bytes(body):
            return name + "-prefix"
    return "MIXED"


# held: the fetch of block 20 waits for a gate, so a reader in order
# cannot get past it and the object is still being filled when it is
# replaced, whatever the machine's speed; slow: every fetch crawls, so many
# block fetches are in flight when the 412 comes (the fill needs >= 2 s,
# the replacement follows the first byte)
MODES = [("held", SIZE), ("held", SIZE - 3 * MiB - 17), ("slow", SIZE)]


@pytest.mark.parametrize("mode,new_size", MODES,
                         ids=["held-same-size", "held-shorter",
                              "slow-same-size"])
def test_replaced_between_block_fetches(fault, edge_fault, tmp_path,
                                        mode, new_size):
    key = "r0007/replaced-%s-%d.bin" % (mode, new_size)
    old = harness.object_bytes(SIZE, 701)
    new = harness.object_bytes(new_size, 702)
    v1 = fault.put(key, size=SIZE, seed=701)
    try:
        if mode == "held":
            fault.fault(key, at_offset=HELD, hold=GATE)
        else:
            fault.fault(key, rate=RATE)
        e = edge_fault(["--memory-cache", "512MiB",
                        "--max-object-size", "256MiB"])
        url = e.url("/" + key)

        a = CurlStream(url, timeout=60, keep=True, workdir=tmp_path)
        harness.wait_for(lambda: a.nbytes > 0 or a.proc.poll() is not None,
                         30, "client A's first body bytes")
        v2 = fault.put(key, size=new_size, seed=702)
        assert v2["etag"] != v1["etag"]
        # B comes after the replacement, while the old fill runs: its
        # response starts from the old blocks
        b = CurlStream(url, timeout=60, keep=True, workdir=tmp_path)
        harness.wait_for(lambda: b.nbytes > 0 or b.proc.poll() is not None,
                         30, "client B's first body bytes")
        # C asks for a block nobody fetched yet: its fetch meets the 412
        c = CurlStream(url, "-H", "Range: bytes=%d-%d" % (40 * MiB,
                                                          40 * MiB + 99),
                       timeout=60, keep=True, workdir=tmp_path)
        c.wait()
        fault.release(GATE)
        a.wait(), b.wait()

        # A started on the old version, which can no longer complete
        assert a.status == 200 and a.header("etag") == v1["etag"], a
        assert _version(a.body, old, new) == "old-prefix", \
            "client A: %s (%d bytes, rc %s)" % (
                _version(a.body, old, new), a.nbytes, a.rc)
        assert a.rc == CUT_RC, a
        # B: a whole version or a cut prefix of one, never a mix
        vb = _version(b.body, old, new)
        assert vb != "MIXED", b
        assert b.header("etag") == (v1 if vb.startswith("old")
                                    else v2)["etag"], (vb, b)
        if vb in ("old", "new"):
            assert b.rc == 0, b
        else:
            assert b.rc in harness.CURL_TRUNCATED, b
        # C asked for 100 bytes at 40 MiB: old or new bytes there, as its
        # ETag and Content-Range say, or cut
        if c.rc == 0 and c.status == 206:
            assert c.header("etag") in (v1["etag"], v2["etag"]), c
            is_old = c.header("etag") == v1["etag"]
            assert c.header("content-range") == "bytes %d-%d/%d" % (
                40 * MiB, 40 * MiB + 99, SIZE if is_old else new_size), c
            src = old if is_old else new
            assert bytes(c.body) == src[40 * MiB:40 * MiB + 100], \
                "C's bytes are not those of the version its ETag names"
        else:
            assert c.rc in harness.CURL_TRUNCATED or c.status in (
                502, 503, 504), c

        gets = origin_gets(fault, key)
        assert any(g["status"] == 412 for g in gets), \
            "the origin never answered 412: %r" % [
                (g["range"], g["headers"].get("if-match"), g["status"])
                for g in gets]
        for g in gets:
            assert "," not in (g["range"] or "")
            im = g["headers"].get("if-match")
            assert im in (None, v1["etag"], v2["etag"]), g

        # the old version is gone from the cache: the new one, whole
        fault.fault(key, clear=True)
        d = CurlStream(url, timeout=60, keep=True, workdir=tmp_path).wait()
        assert d.rc == 0 and d.status == 200, d
        assert d.nbytes == new_size and d.sha256 == v2["sha256"], \
            "after the 412: %s" % _version(d.body, old, new)
        assert d.header("etag") == v2["etag"]
        d2 = CurlStream(url, "-H", "Range: bytes=-1000", timeout=60,
                        keep=True, workdir=tmp_path).wait()
        assert d2.status == 206 and bytes(d2.body) == new[-1000:], d2
        e.check_alive()
    finally:
        fault.delete(key)
