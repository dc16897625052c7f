"""
k0005: configuring the disk cache. A config file with cache.disk_path,
disk_size, disk_threads and disk_fsync passes -t and serves from disk
after a restart; bad values are refused with FILE:LINE: key; the command
line's --disk-cache DIR[:SIZE] refuses what it cannot use; a directory
is used by one process at a time (a second edge on it refuses to start,
saying why); a path that is not a directory is refused at start.
"""

import subprocess

import pytest

import diskutil
import harness

CONF = """\
listen:
  - $listen
log:
  level: info
  error_log: stderr
  access_log: $access_log
cache:
  memory_size: 16MiB
  disk_path: %s
  disk_size: 32MiB
  disk_threads: 3
  disk_fsync: true
origins:
  - name: f
    endpoint: %s
    bucket: fault
    credentials:
      source: anonymous
distributions:
  - name: main
    origin: f
"""

BASE = """\
listen:
  - 127.0.0.1:8080
origins:
  - name: s3
    endpoint: http://127.0.0.1:9000
    bucket: e2e
distributions:
  - name: main
    origin: s3
"""

BAD = [
    ("size-without-path", "cache:\n  disk_size: 1GiB\n", 2,
     "cache.disk_size: needs cache.disk_path"),
    ("fsync-without-path", "cache:\n  memory_size: 64MiB\n  disk_fsync: true\n",
     3, "cache.disk_fsync: needs cache.disk_path"),
    ("size-too-small", "cache:\n  disk_path: /x\n  disk_size: 64k\n", 3,
     "cache.disk_size: expected a size from 1MiB to"),
    ("threads-zero", "cache:\n  disk_path: /x\n  disk_threads: 0\n", 3,
     "cache.disk_threads: expected a number from 1 to 64"),
    ("fsync-not-bool", "cache:\n  disk_path: /x\n  disk_fsync: sometimes\n", 3,
     "cache.disk_fsync: expected true or false"),
    ("empty-path", "cache:\n  disk_path: \"\"\n", 2,
     "cache.disk_path: expected a directory path"),
]


def run(s3edge_bin, *args, timeout=15):
    return subprocess.run([str(s3edge_bin)] + list(args), capture_output=True,
                          timeout=timeout)


def test_config_file_disk_cache(fault, edge, get, tmp_path):
    disk = tmp_path / "disk"
    text = CONF % (disk, fault.url)
    key = "k0005/a.bin"
    data = harness.object_bytes(200 * 1024, 500)
    fault.put(key, data=data)
    e1 = edge(config=text)
    assert "3 I/O threads, fsync on" in e1.stderr_text()
    r = get(e1.url("/" + key))
    assert r.status == 200 and r.body == data and r.xcache() == "miss"
    st = diskutil.wait_stats(e1, lambda s: s["disk_writes"] == 1, 10, "write")
    assert st["disk_budget"] == 32 * 1024 * 1024, st
    diskutil.stop_clean(e1)
    e2 = edge(config=text)
    diskutil.wait_stats(e2, lambda s: s["disk_objects"] == 1, 10, "the scan")
    r = get(e2.url("/" + key))
    assert r.status == 200 and r.body == data and r.xcache() == "hit", r
    assert fault.key_stats(key)["GET"] == 1


@pytest.mark.parametrize("name,text,line,msg", BAD, ids=[b[0] for b in BAD])
def test_bad_disk_config(s3edge_bin, tmp_path, name, text, line, msg):
    p = tmp_path / "bad.yaml"
    p.write_text(text + BASE)
    r = run(s3edge_bin, "-t", "-c", str(p))
    err = r.stderr.decode()
    assert r.returncode == 1, (r.returncode, err)
    assert err.startswith("%s:%d: %s" % (p, line, msg)), err


@pytest.mark.parametrize("arg,why", [
    ("", "DIR[:SIZE]"),
    (":1GiB", "DIR[:SIZE]"),
    ("/tmp/x:512KiB", "SIZE of 1MiB or more"),
])
def test_bad_disk_cache_option(s3edge_bin, arg, why):
    r = run(s3edge_bin, "-t", "--origin", "http://127.0.0.1:9/b",
            "--disk-cache", arg)
    err = r.stderr.decode()
    assert r.returncode == 1 and "--disk-cache" in err and why in err, err


def test_disk_cache_option_sizes(s3edge_bin):
    # a ":SIZE" that is not a size belongs to the path
    for arg in ("/var/cache/s3edge", "/var/cache/s3edge:10GiB", "/a:b"):
        r = run(s3edge_bin, "-t", "--origin", "http://127.0.0.1:9/b",
                "--disk-cache", arg)
        assert r.returncode == 0, (arg, r.stderr)


def test_one_process_per_directory(fault, edge_fault, s3edge_bin, tmp_path):
    disk = tmp_path / "disk"
    e1 = edge_fault(["--disk-cache", str(disk)])
    r = run(s3edge_bin, "--listen", "127.0.0.1:%d" % harness.free_port(),
            "--origin", fault.origin_url(), "--anonymous",
            "--disk-cache", str(disk))
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert "disk cache %s: in use by another s3edge process" % disk in err, err
    e1.check_alive()


def test_path_not_a_directory(fault, s3edge_bin, tmp_path):
    f = tmp_path / "file"
    f.write_text("not a directory")
    r = run(s3edge_bin, "--listen", "127.0.0.1:%d" % harness.free_port(),
            "--origin", fault.origin_url(), "--anonymous",
            "--disk-cache", str(f))
    err = r.stderr.decode()
    assert r.returncode == 1 and "not a directory" in err, err
    assert f.read_text() == "not a directory"
