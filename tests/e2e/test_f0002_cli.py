"""
f0002: the command line: -h and -v work and exit 0; an unknown flag, a
flag without its value, or a bad value exits non-zero with a message that
names it.
"""

import re
import subprocess

import pytest


def run(bin_, *args):
    return subprocess.run([str(bin_)] + list(args), capture_output=True,
                          timeout=20, stdin=subprocess.DEVNULL)


def test_help(s3edge_bin):
    r = run(s3edge_bin, "-h")
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    assert r.returncode == 0, out
    for flag in ("--listen", "--origin", "--memory-cache", "-c", "-t"):
        assert flag in out, flag


def test_version(s3edge_bin):
    r = run(s3edge_bin, "-v")
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    assert r.returncode == 0, out
    assert re.search(r"s3edge\S* v?\d+\.\d+", out), out


@pytest.mark.parametrize("args,word", [
    (["--no-such-flag"], "no-such-flag"),
    (["--listen"], "listen"),
    (["--listen", "127.0.0.1:1", "--origin", "http://127.0.0.1:1/b",
      "--memory-cache", "lots"], "memory-cache"),
    (["--listen", "127.0.0.1:1", "--origin", "http://127.0.0.1:1/b",
      "--first-byte-timeout", "soon"], "first-byte-timeout"),
    (["--listen", "127.0.0.1:1", "--origin", "ftp://127.0.0.1/b"], "origin"),
    (["-l", "loud", "--listen", "127.0.0.1:1", "--origin",
      "http://127.0.0.1:1/b"], "loud"),
])
def test_bad_arguments(s3edge_bin, args, word):
    r = run(s3edge_bin, *args)
    err = (r.stdout + r.stderr).decode("utf-8", "replace")
    assert r.returncode != 0, err
    assert r.returncode > 0, "killed by a signal: %d" % r.returncode
    assert word in err, err
