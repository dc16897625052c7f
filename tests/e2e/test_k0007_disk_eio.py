"""
k0007: the disk answers EIO (reads, then writes), the way a failing disk
does; a small LD_PRELOAD library (eioshim.c, built by the test) makes
pread and pwritev fail on the cache directory while a flag file exists.
The node keeps serving exact bytes from memory and the origin, counts the
errors, logs them once per condition (not once per request), never leaves
a temp file or a torn file behind, and uses the disk again once it works.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import diskutil
import harness

KiB = 1024
HERE = Path(__file__).resolve().parent


@pytest.fixture
def shim(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler to build the EIO shim")
    so = tmp_path / "eioshim.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(so),
                    str(HERE / "eioshim.c"), "-ldl"], check=True)
    return so


def test_disk_eio_keeps_serving(fault, edge, get, tmp_path, shim):
    disk = tmp_path / "disk"
    keys = ["k0007/obj%d.bin" % i for i in range(6)]
    datas = {}
    for i, k in enumerate(keys):
        datas[k] = harness.object_bytes(300 * KiB, 700 + i)
        fault.put(k, data=datas[k])
    env = {"LD_PRELOAD": str(shim), "EIO_SHIM_DIR": str(disk),
           # the sanitizer runtime need not come first for this test
           "ASAN_OPTIONS": ":".join(x for x in (
               os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0") if x)}
    e = edge(["--origin", fault.origin_url(), "--anonymous",
              "--memory-cache", "1MiB", "--max-object-size", "1MiB",
              "--disk-cache", "%s:64MiB" % disk], env=env)

    for k in keys[:4]:
        r = get(e.url("/" + k))
        assert r.rc == 0 and r.body == datas[k], r
    diskutil.wait_stats(e, lambda s: s["disk_writes"] == 4, 10, "the writes")

    # reads fail: evicted objects come from the origin instead, exact
    (tmp_path / "eio-read").touch()
    for rnd in range(2):
        for k in keys[:4]:
            r = get(e.url("/" + k))
            assert r.rc == 0 and r.status == 200 and r.body == datas[k], (rnd, k, r)
    st = diskutil.stats(e)
    assert st["disk_read_errors"] >= 2, st
    gets = sum(fault.key_stats(k)["GET"] for k in keys[:4])
    assert gets > 4, "evicted objects were not fetched again"

    # writes fail: new objects are served, counted, nothing half-written
    (tmp_path / "eio-write").touch()
    for k in keys[4:]:
        r = get(e.url("/" + k))
        assert r.rc == 0 and r.body == datas[k], r
    st = diskutil.wait_stats(e, lambda s: s["disk_write_errors"] >= 2, 10,
                             "the failed writes")
    assert diskutil.temp_files(disk) == []
    log = e.stderr_text()
    # once per condition (then at most once a minute), not per request
    assert 1 <= log.count("Input/output error") <= 4, log

    # the disk works again: objects are written and read back whole
    (tmp_path / "eio-read").unlink()
    (tmp_path / "eio-write").unlink()
    k = keys[5]
    for _ in range(40):
        # evicted from memory by others, then read back from disk
        for other in keys[:4]:
            get(e.url("/" + other))
        st = diskutil.stats(e)
        if st["disk_writes"] >= 5:
            break
    st = diskutil.wait_stats(e, lambda s: s["disk_writes"] >= 5, 10,
                             "writes working again")
    for k in keys:
        r = get(e.url("/" + k))
        assert r.rc == 0 and r.body == datas[k], r
    assert diskutil.temp_files(disk) == []
    e.check_alive()
