"""
a0004: a 50 MiB object through the edge, byte for byte (sha256), streamed:
the client has the first body byte while the origin is still sending (the
fault origin sends at 20 MiB/s per connection; we compare with the
origin's own progress counters, not a clock). The edge fetches it as
block-aligned ranges of 1 MiB, each block exactly once. The second
download is a hit, identical, and the origin is not asked again.
"""

import hashlib
import socket
import time

import harness

KEY = "a0004/big.bin"
RATE = 20 * 1024 * 1024


def read_head(sock, deadline):
    buf = b""
    for _ in range(100000):
        i = buf.find(b"\r\n\r\n")
        if i >= 0:
            return buf[:i], buf[i + 4:]
        left = deadline - time.monotonic()
        assert left > 0, "no response head before the deadline"
        sock.settimeout(left)
        b = sock.recv(65536)
        assert b, "connection closed before the response head: %r" % buf
        buf += b
    raise AssertionError("response head never ended")


def test_large_object_streams_and_caches(fault, edge_fault, get, big_object):
    path, data, digest = big_object
    size = len(data)
    fault.put(KEY, file=path, content_type="application/octet-stream")
    fault.fault(KEY, rate=RATE)
    e = edge_fault()

    deadline = time.monotonic() + 60
    with socket.create_connection(("127.0.0.1", e.port), timeout=10) as s:
        s.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % (KEY, e.listen)).encode())
        head, body = read_head(s, deadline)
        for _ in range(1000):
            if body:
                break
            s.settimeout(max(0.01, deadline - time.monotonic()))
            body = s.recv(65536)
            assert body, "closed before the first body byte"
        # First body byte is here: the origin must still be sending.
        recs = fault.requests_for(KEY)
        assert recs and not all(r["done"] for r in recs), \
            "origin had finished before the client saw a body byte: " \
            "the edge buffered the whole object"
        assert sum(r["bytes_sent"] for r in recs) < size

        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 200"), lines
        hdrs = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip()
                for l in lines[1:]}
        assert hdrs.get("content-length") == str(size), hdrs
        assert hdrs.get("x-cache") == "Miss from s3edge", hdrs

        h = hashlib.sha256(body)
        got = len(body)
        for _ in range(10 ** 6):
            left = deadline - time.monotonic()
            assert left > 0, "body not complete before the deadline " \
                             "(%d of %d bytes)" % (got, size)
            s.settimeout(left)
            b = s.recv(1 << 20)
            if not b:
                break
            h.update(b)
            got += len(b)
    assert got == size
    assert h.hexdigest() == digest

    r = get(e.url("/" + KEY), keep_body_file=True, timeout=60)
    assert r.status == 200, r
    assert r.header("x-cache") == "Hit from s3edge"
    assert r.header("content-length") == str(size)
    assert harness.sha256_file(r.body_path) == digest
    ks = fault.key_stats(KEY)
    block = 1 << 20
    nblocks = (size + block - 1) // block
    assert ks["GET"] == nblocks and ks["HEAD"] == 0, ks
    assert ks["bytes"] == size
    ranges = sorted(r["headers"].get("range") for r in fault.requests_for(KEY))
    want = sorted("bytes=%d-%d" % (i * block, min(size, (i + 1) * block) - 1)
                  for i in range(nblocks))
    assert ranges == want
