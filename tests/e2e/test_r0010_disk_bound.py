"""
r0010: objects larger than the memory store flow to the disk cache without
ever being whole in memory (cache.memory_max_object_size; by default the
memory size).

  - a 48 MiB object through an edge with 8 MiB of memory: the miss streams
    it, its blocks are written to disk as they complete, the file is
    complete (read back from its header) and the process never held the
    object (peak RSS); the next requests, whole and ranged, are disk hits
    with no origin request, and so after a restart;
  - a client that leaves mid-way: no file, no temp file, nothing in the
    budget; the next request fetches and stores it whole;
  - a block of the file corrupted on disk: the hit still sends every byte
    right (that block and the rest come from the origin, pinned with
    If-Match), the file is deleted and counted;
  - sixteen clients at once on the cold object: one file, sixteen right
    bodies;
  - aria2c with 16 connections through a cold edge with 64 MiB of memory
    (the 1 GiB object), then again from the disk: byte-identical both
    times, the second time without the origin.
"""

import os
import socket
from pathlib import Path

import pytest

import diskutil
import harness
from rangeutil import CurlStream, aria2c, check_block_fetches, origin_gets

KiB = 1024
MiB = 1024 * KiB
SIZE = 48 * MiB
ASAN = os.environ.get("E2E_ASAN") == "1"

# aria2c speaks HTTP/1.1 whatever the pass: once, in the HTTP/1.1 pass
once = pytest.mark.skipif(harness.E2E_PROTO in ("h2c", "h2"),
                          reason="protocol-independent: runs in the "
                                 "HTTP/1.1 pass")


def _args(disk, memory="8MiB", disk_size="512MiB"):
    return ["--memory-cache", memory, "--max-object-size", "2GiB",
            "--disk-cache", "%s:%s" % (disk, disk_size)]


def _peak_rss(e):
    """The process's peak resident size in bytes (VmHWM)."""
    for line in open("/proc/%d/status" % e.proc.pid):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * KiB
    raise AssertionError("no VmHWM")


def _no_temp_files(disk):
    return not any((Path(disk) / "tmp").glob("*"))


def test_larger_than_memory_goes_to_disk(fault, edge_fault, get, tmp_path):
    key = "r0010/big.bin"
    data = harness.object_bytes(SIZE, 1010)
    fault.put(key, size=SIZE, seed=1010)
    disk = tmp_path / "disk"
    e = edge_fault(_args(disk))
    url = e.url("/" + key)
    base = _peak_rss(e)

    r = get(url)
    assert r.rc == 0 and r.status == 200 and r.xcache() == "miss", r
    assert harness.sha256(r.body) == harness.sha256(data)
    st = diskutil.wait_stats(e, lambda s: s["disk_writes"] == 1, 20,
                             "the object written to disk")
    assert st["disk_objects"] == 1 and st["disk_write_bytes"] == SIZE, st
    assert st["mem_objects"] == 0 and st["mem_bytes"] == 0, st
    files = diskutil.stored(disk)
    assert list(files) == [key], files
    _, body_len, _, data_off = diskutil.read_header(files[key])
    assert body_len == SIZE and files[key].stat().st_size == data_off + SIZE
    assert _no_temp_files(disk)
    grown = _peak_rss(e) - base
    print("r0010: peak RSS grew by %.1f MiB passing %d MiB"
          % (grown / MiB, SIZE // MiB))
    if not ASAN:  # the sanitizer's allocator keeps freed memory around
        assert grown < SIZE // 2, "the object was held in memory: %d" % grown
    gets = len(origin_gets(fault, key))
    check_block_fetches(fault, key, SIZE)

    # hits from the file: whole, a range, another range
    r = get(url)
    assert r.rc == 0 and r.status == 200 and r.xcache() == "hit", r
    assert harness.sha256(r.body) == harness.sha256(data)
    for a, b in ((30 * MiB + 17, 31 * MiB + 4000), (SIZE - 100, SIZE - 1)):
        r = get(url, "-H", "Range: bytes=%d-%d" % (a, b))
        assert r.status == 206 and r.xcache() == "hit", r
        assert r.body == data[a:b + 1]
    assert len(origin_gets(fault, key)) == gets
    st = diskutil.stats(e)
    assert st["hits_disk"] == 3 and st["disk_read_errors"] == 0, st
    if not ASAN:
        assert _peak_rss(e) - base < SIZE // 2

    # a restart finds the file
    assert e.stop() == []
    e2 = edge_fault(_args(disk))
    diskutil.wait_stats(e2, lambda s: s["disk_scan_done"] == 1, 20, "the scan")
    r = get(e2.url("/" + key))
    assert r.rc == 0 and r.status == 200 and r.xcache() == "hit", r
    assert harness.sha256(r.body) == harness.sha256(data)
    assert len(origin_gets(fault, key)) == gets


def _read_some_and_leave(e, path, nbytes):
    """GET over HTTP/1.1 on a raw socket, read nbytes of it, close."""
    s = socket.create_connection(("127.0.0.1", e.port), timeout=10)
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        got = 0
        for _ in range(100000):
            b = s.recv(256 * KiB)
            if not b:
                break
            got += len(b)
            if got >= nbytes:
                break
        assert got >= nbytes, got
    finally:
        s.close()


def test_client_leaves_midway(fault, edge_fault, get, tmp_path):
    key = "r0010/left.bin"
    data = harness.object_bytes(SIZE, 1011)
    fault.put(key, size=SIZE, seed=1011)
    disk = tmp_path / "disk"
    # slow enough that the client leaves long before the end
    fault.fault(key, rate=8 * MiB)
    e = edge_fault(_args(disk))
    _read_some_and_leave(e, "/" + key, 3 * MiB)
    # the fetches stop, the file is given up and its temp file deleted
    harness.wait_for(lambda: _no_temp_files(disk), 20, "the temp file gone")
    st = diskutil.stats(e)
    assert st["disk_writes"] == 0 and st["disk_objects"] == 0, st
    assert st["disk_bytes"] == 0, st
    assert diskutil.stored(disk) == {}
    fault.reset()

    r = get(e.url("/" + key))
    assert r.rc == 0 and r.status == 200 and r.xcache() == "miss", r
    assert harness.sha256(r.body) == harness.sha256(data)
    diskutil.wait_stats(e, lambda s: s["disk_writes"] == 1, 20, "stored")
    assert list(diskutil.stored(disk)) == [key]


def test_corrupt_block_of_a_disk_bound_file(fault, edge_fault, get, tmp_path):
    key = "r0010/corrupt.bin"
    data = harness.object_bytes(SIZE, 1012)
    info = fault.put(key, size=SIZE, seed=1012)
    disk = tmp_path / "disk"
    e = edge_fault(_args(disk))
    url = e.url("/" + key)
    r = get(url)
    assert r.status == 200 and r.body == data, r
    diskutil.wait_stats(e, lambda s: s["disk_writes"] == 1, 20, "stored")
    path = diskutil.stored(disk)[key]
    _, _, _, data_off = diskutil.read_header(path)
    bad = 30 * MiB + 12345
    with open(path, "r+b") as f:
        f.seek(data_off + bad)
        f.write(bytes([data[bad] ^ 0xFF]))
    n = len(origin_gets(fault, key))

    r = get(url)
    assert r.rc == 0 and r.status == 200 and r.xcache() == "hit", r
    assert harness.sha256(r.body) == harness.sha256(data)
    st = diskutil.stats(e)
    assert st["disk_discarded"] == 1, st
    later = origin_gets(fault, key)[n:]
    assert later, "no block came from the origin"
    assert all(g["range"] and int(g["range"][6:].split("-")[0]) >= 30 * MiB
               for g in later), [g["range"] for g in later]
    assert all(g["headers"].get("if-match") == info["etag"] for g in later), \
        [g["headers"] for g in later[:2]]
    harness.wait_for(lambda: not path.exists(), 10, "the bad file deleted")
    # the next request fetches it again (and stores it again)
    r = get(url)
    assert r.status == 200 and r.body == data and r.xcache() == "miss", r


def test_sixteen_clients_at_once(fault, edge_fault, tmp_path):
    key = "r0010/stampede.bin"
    data = harness.object_bytes(SIZE, 1013)
    fault.put(key, size=SIZE, seed=1013)
    digest = harness.sha256(data)
    disk = tmp_path / "disk"
    e = edge_fault(_args(disk))
    url = e.url("/" + key)
    clients = [CurlStream(url, timeout=60, piped=True, workdir=tmp_path)
               for _ in range(16)]
    for c in clients:
        c.wait(70)
        assert c.rc == 0 and c.status == 200, c
        assert c.nbytes == SIZE and c.sha256 == digest, c
    st = diskutil.wait_stats(e, lambda s: s["disk_writes"] == 1, 20, "stored")
    assert st["disk_objects"] == 1 and st["disk_writes_skipped"] == 0, st
    assert list(diskutil.stored(disk)) == [key]
    sent = sum(g["bytes_sent"] for g in origin_gets(fault, key))
    print("r0010: 16 clients of a cold %d MiB disk-bound object: origin sent "
          "%.1f MiB" % (SIZE // MiB, sent / MiB))
    check_block_fetches(fault, key, SIZE)


def _aria2c(url, tmp_path, out):
    r, took = aria2c(url, tmp_path, out.name)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    return took


@once
def test_aria2c_gib_through_disk(gib_object, fault, edge_fault, tmp_path):
    key, _, size, digest, etag = gib_object
    disk = tmp_path / "disk"
    e = edge_fault(_args(disk, memory="64MiB", disk_size="2GiB"))
    base = _peak_rss(e)
    url = e.url("/" + key)
    out = tmp_path / "aria2c.bin"
    try:
        took = _aria2c(url, tmp_path, out)
        assert out.stat().st_size == size
        assert harness.sha256_file(out) == digest
        out.unlink()
        cold_grown = _peak_rss(e) - base
        st = diskutil.wait_stats(e, lambda s: s["disk_writes"] == 1, 60,
                                 "the object on disk")
        assert st["mem_bytes"] == 0, st
        gets = len(origin_gets(fault, key))
        check_block_fetches(fault, key, size, etag=etag)
        took2 = _aria2c(url, tmp_path, out)
        assert out.stat().st_size == size
        assert harness.sha256_file(out) == digest
    finally:
        if out.exists():
            out.unlink()
    assert len(origin_gets(fault, key)) == gets
    st = diskutil.stats(e)
    assert st["hits_disk"] >= 16 and st["disk_read_errors"] == 0, st
    grown = _peak_rss(e) - base
    print("r0010: aria2c -x16 1 GiB cold through disk %.1fs, warm from disk "
          "%.1fs; peak RSS grew by %.0f MiB (%.0f MiB in the cold pass)"
          % (took, took2, grown / MiB, cold_grown / MiB))
    if not ASAN:
        assert grown < size // 4, "held %d bytes" % grown
