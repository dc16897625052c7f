"""
k0003: the disk fills up. The disk cache lives on a 2 MiB filesystem the
test mounts (a size-limited tmpfs; else an ext4 image on a loop device)
while its budget says 64 MiB, so writes run into ENOSPC. The edge goes
on serving every object, byte for byte (misses from the origin, then hits
from memory), logs the condition once, counts the failed writes, leaves
no temp file behind and no incomplete file in place; what did fit on disk
is served from there after a restart.
"""

import os
import shutil
import subprocess

import pytest

import diskutil
import harness

KiB = 1024


def run(argv):
    return subprocess.run(argv, capture_output=True, timeout=60)


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MiB filesystem mounted at tmp_path/mnt, unmounted at the end."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    how = None
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root (euid %d)"
                    % os.geteuid())
    r = run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs",
             str(mnt)])
    if r.returncode == 0:
        how = "tmpfs"
    else:
        tmpfs_err = r.stderr.decode(errors="replace").strip()
        img = tmp_path / "fs.img"
        mkfs = shutil.which("mkfs.ext4") or "/usr/sbin/mkfs.ext4"
        with open(img, "wb") as f:
            f.truncate(4 * 1024 * 1024)
        r = run([mkfs, "-q", "-F", "-m", "0", "-b", "1024", str(img)])
        if r.returncode == 0:
            r = run(["mount", "-o", "loop", str(img), str(mnt)])
        if r.returncode != 0:
            pytest.skip("cannot mount a small filesystem: tmpfs: %s; loop "
                        "ext4: %s" % (tmpfs_err,
                                      r.stderr.decode(errors="replace")))
        how = "ext4"
    try:
        yield mnt, how
    finally:
        if run(["umount", str(mnt)]).returncode != 0:
            run(["umount", "-l", str(mnt)])


def test_disk_full_keeps_serving(fault, edge_fault, get, small_fs):
    mnt, how = small_fs
    disk = mnt / "cache"
    size = 700 * KiB
    keys = ["k0003/obj%d.bin" % i for i in range(6)]
    datas = {}
    for i, k in enumerate(keys):
        datas[k] = harness.object_bytes(size, 300 + i)
        fault.put(k, data=datas[k])
    args = ["--disk-cache", "%s:64MiB" % disk, "--memory-cache", "64MiB"]
    e = edge_fault(args)

    for k in keys:
        r = get(e.url("/" + k))
        assert r.rc == 0 and r.status == 200 and r.xcache() == "miss", r
        assert r.body == datas[k]
    st = diskutil.wait_stats(
        e, lambda s: s["disk_writes"] + s["disk_write_errors"] == len(keys),
        15, "every write to end, written or failed")
    # 6 x 700 KiB cannot fit in 2 MiB
    assert 1 <= st["disk_writes"] <= 2, (how, st)
    assert st["disk_write_errors"] == len(keys) - st["disk_writes"], st
    assert st["disk_objects"] == st["disk_writes"], st
    # the failed writes left nothing: no temp file, nothing incomplete
    assert diskutil.temp_files(disk) == []
    files = diskutil.stored(disk)
    assert len(files) == st["disk_writes"], files
    for k, p in files.items():
        _, body_len, _, data_off = diskutil.read_header(p)
        assert os.path.getsize(p) == data_off + body_len == data_off + size
    log = e.stderr_text()
    assert log.count("no space left") == 1, log
    assert "serving from memory and the origin" in log

    # everything is still served, from memory now
    for k in keys:
        r = get(e.url("/" + k))
        assert r.rc == 0 and r.status == 200 and r.xcache() == "hit", r
        assert r.body == datas[k]
        assert fault.key_stats(k)["GET"] == 1, k
    diskutil.stop_clean(e)

    # after a restart, what made it to disk is a hit; the rest is fetched
    # again (and fails to be written again, quietly counted)
    e2 = edge_fault(args)
    diskutil.wait_stats(e2, lambda s: s["disk_scan_done"] == 1, 10, "the scan")
    for k in keys:
        r = get(e2.url("/" + k))
        assert r.rc == 0 and r.status == 200, r
        assert r.body == datas[k]
        assert r.xcache() == ("hit" if k in files else "miss"), (k, r)
    st = diskutil.stats(e2)
    assert st["hits_disk"] == len(files), st
    e2.check_alive()


def test_disk_full_during_a_stream_write(fault, edge_fault, get, small_fs):
    """An object larger than the memory cache goes to disk block by block
    (r0010); the disk fills up part way: the client still gets every
    byte, the file is given up (counted, no temp file, nothing in the
    index), and the next request is served whole again."""
    mnt, how = small_fs
    disk = mnt / "cache"
    key = "k0003/stream.bin"
    size = 6 * 1024 * KiB
    fault.put(key, size=size, seed=333)
    data = harness.object_bytes(size, 333)
    e = edge_fault(["--disk-cache", "%s:64MiB" % disk, "--memory-cache", "2MiB",
                    "--max-object-size", "64MiB"])
    # the second request may still find the first object (its clients
    # gone, it leaves the index a moment later) or start a write of its own
    for _ in range(2):
        r = get(e.url("/" + key))
        assert r.rc == 0 and r.status == 200, r
        assert harness.sha256(r.body) == harness.sha256(data)
    st = diskutil.wait_stats(e, lambda s: s["disk_write_errors"] >= 1, 15,
                             "the stream write to fail")
    assert st["disk_writes"] == 0 and st["disk_objects"] == 0, (how, st)
    assert st["disk_bytes"] == 0, st
    harness.wait_for(lambda: diskutil.temp_files(disk) == [], 10,
                     "the temp files deleted")
    assert diskutil.stored(disk) == {}
    assert "no space left" in e.stderr_text()
    diskutil.stop_clean(e)
