"""
k0002: nothing torn is ever served from disk.

- kill -9 while a 50 MiB object is being written to disk (the test waits
  for the temp file to appear and kills at once): after a restart the
  leftover temp file is deleted and counted, and the object served is the
  origin's, byte for byte (a hit if the write had ended, else fetched
  again).
- Files damaged on purpose while the edge is down: one truncated, one
  with a flipped byte in its header, one with a flipped byte in its first
  block, a temp file left in tmp/: the scan deletes the truncated and the
  bad-header files and the temp file; the bad block is found when read,
  before any header went out, so the client gets the origin's bytes
  without noticing. Each is fetched again once, and every body is exact.
- A flipped byte in the third block of a multi-block object: the client
  already has the first blocks when the bad one is read; that block and
  the rest come from the origin (Range, If-Match of the same version), so
  the response completes with exact bytes; the file is deleted and the
  object written again.
- SIGTERM while a write runs and while a disk load streams to a slow
  client: clean exits, no temp file, whole files only.
"""

import os
import socket
import time

import diskutil
import harness

MiB = 1024 * 1024


def kill_during_write(e, disk, timeout=10):
    """Poll for the write of the one object to start and SIGKILL the edge
    the moment its temp file shows. True when it died before the rename."""
    deadline = time.monotonic() + timeout
    for _ in range(10 ** 6):
        tmp = diskutil.temp_files(disk)
        if tmp or diskutil.stored(disk) or time.monotonic() > deadline:
            break
    diskutil.kill9(e)
    assert tmp or diskutil.stored(disk), "no disk write started"
    return bool(tmp) and not diskutil.stored(disk)


def test_kill9_while_writing_then_restart(fault, edge_fault, get, tmp_path,
                                          big_object):
    path, data, digest = big_object
    mid_write = 0
    # the write takes tens of milliseconds: a few tries catch it in the act
    for attempt in range(3):
        key = "k0002/big%d.bin" % attempt
        fault.put(key, file=path)
        disk = tmp_path / ("disk%d" % attempt)
        args = ["--disk-cache", "%s:256MiB" % disk, "--memory-cache", "128MiB"]

        e1 = edge_fault(args)
        r = get(e1.url("/" + key), keep_body_file=True, timeout=60)
        assert r.status == 200 and r.rc == 0, r
        assert harness.sha256_file(r.body_path) == digest
        os.unlink(r.body_path)
        killed_mid_write = kill_during_write(e1, disk)

        e2 = edge_fault(args)
        st = diskutil.wait_stats(e2, lambda s: s["disk_scan_done"] == 1, 20,
                                 "the start scan")
        assert diskutil.temp_files(disk) == []
        if killed_mid_write:
            assert st["disk_discarded"] == 1, st
            assert st["disk_objects"] == 0, st
        r = get(e2.url("/" + key), keep_body_file=True, timeout=60)
        assert r.status == 200 and r.rc == 0, r
        assert r.header("content-length") == str(len(data))
        assert harness.sha256_file(r.body_path) == digest
        os.unlink(r.body_path)
        gets = fault.key_stats(key)["GET"]
        nblocks = -(-len(data) // MiB)  # one origin request per block
        if killed_mid_write:
            assert r.xcache() == "miss" and gets == 2 * nblocks, (r, gets)
            mid_write += 1
        else:
            assert r.xcache() == "hit" and gets == nblocks, (r, gets)
        diskutil.stop_clean(e2)
        if mid_write:
            break


def test_damaged_files_are_discarded_and_fetched_again(fault, edge_fault,
                                                       get, tmp_path):
    sizes = {"trunc": 2 * MiB + 77, "header": 300 * 1024,
             "block0": 700 * 1024, "ok": 1 * MiB + 5}
    keys = {n: "k0002/%s.bin" % n for n in sizes}
    datas = {}
    for i, (n, size) in enumerate(sorted(sizes.items())):
        datas[n] = harness.object_bytes(size, 200 + i)
        fault.put(keys[n], data=datas[n])
    disk = tmp_path / "disk"
    args = ["--disk-cache", str(disk)]

    e1 = edge_fault(args)
    for n in sizes:
        r = get(e1.url("/" + keys[n]))
        assert r.status == 200 and r.body == datas[n], r
    diskutil.wait_stats(e1, lambda s: s["disk_writes"] == len(sizes), 10,
                        "the writes")
    diskutil.stop_clean(e1)

    files = diskutil.stored(disk)
    assert set(files) == set(keys.values()), files
    trunc = files[keys["trunc"]]
    diskutil.truncate(trunc, os.path.getsize(trunc) - 1000)  # torn tail
    diskutil.flip_byte(files[keys["header"]], 215)            # inside the key
    _, _, _, data_off = diskutil.read_header(files[keys["block0"]])
    diskutil.flip_byte(files[keys["block0"]], data_off + 12345)
    # a temp file as a crash leaves it
    leftover = disk / "tmp" / "00000000000000aa-deadbeef.tmp"
    leftover.write_bytes(b"half a file")

    e2 = edge_fault(args)
    st = diskutil.wait_stats(e2, lambda s: s["disk_scan_done"] == 1, 10,
                             "the start scan")
    # truncated, bad header, temp file: gone at the scan
    assert st["disk_discarded"] == 3, st
    assert st["disk_scanned"] == 2, st
    assert not trunc.exists() and not files[keys["header"]].exists()
    assert not list(disk.glob("stale-*"))  # the old tmp/ was emptied
    assert "bad file" in e2.stderr_text()

    for n in sizes:
        r = get(e2.url("/" + keys[n]))
        assert r.rc == 0 and r.status == 200, (n, r)
        assert harness.sha256(r.body) == harness.sha256(datas[n]), n
        want = "hit" if n == "ok" else "miss"
        assert r.xcache() == want, (n, r)
        nblocks = max(1, -(-len(datas[n]) // MiB))  # one request per block
        assert fault.key_stats(keys[n])["GET"] == nblocks * (1 if n == "ok" else 2), n
    st = diskutil.stats(e2)
    assert st["disk_discarded"] == 4, st       # the bad block, when read
    assert st["hits_disk"] == 1, st
    assert "bad checksum in block 0" in e2.stderr_text()
    # the refetched objects are on disk again, whole
    st = diskutil.wait_stats(e2, lambda s: s["disk_writes"] == 3, 10,
                             "the rewrites")
    assert st["disk_objects"] == 4, st


def test_bad_later_block_is_fetched_from_the_origin(fault, edge_fault, get, tmp_path):
    """A block found bad on disk after the headers went out does not cut
    the response: that block and the ones after come from the origin,
    pinned to the same version by If-Match, and the object is stored
    again."""
    key = "k0002/blocks.bin"
    data = harness.object_bytes(5 * MiB, 230)
    fault.put(key, data=data)
    disk = tmp_path / "disk"
    args = ["--disk-cache", str(disk)]
    e1 = edge_fault(args)
    r = get(e1.url("/" + key))
    assert r.status == 200 and r.body == data
    diskutil.wait_stats(e1, lambda s: s["disk_writes"] == 1, 10, "the write")
    diskutil.stop_clean(e1)
    first_gets = fault.key_stats(key)["GET"]

    path = diskutil.stored(disk)[key]
    _, _, _, data_off = diskutil.read_header(path)
    diskutil.flip_byte(path, data_off + 2 * MiB + 999)  # block 2

    e2 = edge_fault(args)
    diskutil.wait_stats(e2, lambda s: s["disk_objects"] == 1, 10, "the scan")
    r = get(e2.url("/" + key))
    assert r.rc == 0 and r.status == 200 and r.xcache() == "hit", r
    assert r.body == data, "a wrong byte reached the client"
    assert not path.exists()
    recs = fault.requests_for(key)[first_gets:]
    etag = r.header("etag")
    # block 2 from the origin, and any of 1, 3 and 4 the load had not
    # brought yet (its reads run in parallel), each once, pinned to the
    # version
    got = sorted(x["headers"].get("range") for x in recs)
    blocks = ["bytes=%d-%d" % (i * MiB, (i + 1) * MiB - 1) for i in (1, 2, 3, 4)]
    assert blocks[1] in got and len(set(got)) == len(got), recs
    assert set(got) <= set(blocks), recs
    assert all(x["headers"].get("if-match") == etag for x in recs), recs
    # now whole in memory, and written to disk again
    r = get(e2.url("/" + key))
    assert r.rc == 0 and r.body == data and r.xcache() == "hit", r
    assert fault.key_stats(key)["GET"] == first_gets + len(got)
    st = diskutil.wait_stats(e2, lambda s: s["disk_writes"] == 1, 10, "the rewrite")
    assert st["disk_discarded"] == 1, st
    assert "bad block checksum" in e2.stderr_text()
    e2.check_alive()

def test_sigterm_with_disk_io_in_flight(fault, edge_fault, get, tmp_path,
                                        big_object):
    """A stop while a 50 MiB write runs, then while a 50 MiB disk load
    streams to a slow client: clean exits (no leak, no report), no temp
    file left, and what is on disk is whole."""
    path, data, digest = big_object
    key = "k0002/stop.bin"
    fault.put(key, file=path)
    disk = tmp_path / "disk"
    args = ["--disk-cache", "%s:256MiB" % disk, "--memory-cache", "128MiB"]

    e1 = edge_fault(args)
    r = get(e1.url("/" + key), keep_body_file=True, timeout=60)
    assert r.status == 200 and harness.sha256_file(r.body_path) == digest
    os.unlink(r.body_path)
    diskutil.stop_clean(e1)  # the write may be in flight: abandoned cleanly
    assert diskutil.temp_files(disk) == []
    files = diskutil.stored(disk)
    for p in files.values():
        _, body_len, _, data_off = diskutil.read_header(p)
        assert body_len == len(data)
        assert os.path.getsize(p) == data_off + body_len
    if not files:
        # the stop came first: write it now
        e1 = edge_fault(args)
        r = get(e1.url("/" + key), keep_body_file=True, timeout=60)
        assert r.status == 200
        os.unlink(r.body_path)
        diskutil.wait_stats(e1, lambda s: s["disk_writes"] == 1, 20, "write")
        diskutil.stop_clean(e1)

    e2 = edge_fault(args)
    diskutil.wait_stats(e2, lambda s: s["disk_objects"] == 1, 20, "the scan")
    with socket.create_connection(("127.0.0.1", e2.port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(("GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % key).encode())
        head = s.recv(4096)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"X-Cache: Hit from s3edge" in head, head
        diskutil.stop_clean(e2)  # the load or the response in flight
