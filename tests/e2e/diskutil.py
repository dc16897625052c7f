"""
diskutil.py: what the k tests (disk cache) share.

  stats(edge)              SIGUSR1, then the "stats ..." line it logs, as ints
  wait_stats(edge, pred)   poll stats until pred(stats) holds
  stored(dir)              {S3 key: path} of the complete files in a disk
                           cache directory, read from their headers
  read_header(path)        the few header fields the tests look at
  kill9(edge)              SIGKILL, and tell the fixture it was meant

Every wait has a deadline.
"""

import os
import signal
import struct
from pathlib import Path

import harness

MAGIC = b"s3edgeC\n"
FIXED = 208  # bytes before the key (common/diskfmt.h)


def _stats_lines(e):
    # whole lines only: the last one may still be being written
    return [l for l in e.stderr_text().split("\n")[:-1] if "[info] stats " in l]


def stats(e, timeout=5.0):
    """Ask the edge for its counters (SIGUSR1) and return the new line's
    values as ints."""
    e.check_alive()
    before = len(_stats_lines(e))
    e.proc.send_signal(signal.SIGUSR1)
    lines = harness.wait_for(
        lambda: (lambda ls: ls if len(ls) > before else None)(_stats_lines(e)),
        timeout, "a stats line after SIGUSR1")
    kv = harness.parse_logfmt(lines[-1].split("[info] stats ", 1)[1])
    return {k: int(v) for k, v in kv.items()}


def wait_stats(e, pred, timeout, what):
    last = {}

    def check():
        last.clear()
        last.update(stats(e))
        return pred(last)
    try:
        harness.wait_for(check, timeout, what, interval=0.05)
    except AssertionError as ex:
        raise AssertionError("%s; last stats: %r" % (ex, last)) from None
    return dict(last)


def read_header(path):
    """(gen, body_len, key, data_off) of a stored file, or None when its
    fixed header part is not there."""
    with open(path, "rb") as f:
        b = f.read(4096)
    if len(b) < FIXED or b[:8] != MAGIC:
        return None
    header_len, = struct.unpack_from("<I", b, 12)
    gen, body_len = struct.unpack_from("<QQ", b, 16)
    key_len, = struct.unpack_from("<I", b, 44)
    key = b[FIXED:FIXED + key_len].decode("utf-8", "replace")
    data_off = (header_len + 4095) // 4096 * 4096
    return gen, body_len, key, data_off


def stored_files(d):
    return sorted(p for p in Path(d).glob("[0-9a-f][0-9a-f]/*.s3e"))


def stored(d):
    """{S3 key: path} for the files under d. The cache key is
    "distribution\\nS3 key"; the S3 key is what tests know."""
    out = {}
    for p in stored_files(d):
        h = read_header(p)
        if h is not None:
            out[h[2].split("\n", 1)[1]] = p
    return out


def temp_files(d):
    return sorted(Path(d).glob("tmp/*.tmp"))


def kill9(e):
    """SIGKILL the edge; the fixture will not count it as a crash."""
    e.proc.send_signal(signal.SIGKILL)
    e.proc.wait(harness.STOP_TIMEOUT)
    e.stopped = True


def stop_clean(e):
    """SIGTERM and assert a clean exit (no leak or sanitizer report)."""
    problems = e.stop()
    assert not problems, "\n".join(problems)


def flip_byte(path, off):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x5a]))


def truncate(path, size):
    os.truncate(path, size)
