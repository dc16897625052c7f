"""
Fixtures of the e2e tier. See README.md in this directory.

Session-scoped (started once, reset per test): the S3 origin (s3rver
behind the SigV4 gate) and the fault origin. Function-scoped: s3edge
processes, made by the `edge` factory and always stopped at the end of the
test; a crash, an unclean exit or a sanitizer report fails the test.
"""

import functools
import subprocess

import pytest

import harness


def pytest_report_header(config):
    b = harness.s3edge_bin()
    return "s3edge binary: %s (%s)" % (b, "found" if b.exists() else "MISSING")


@pytest.fixture(scope="session")
def s3edge_bin():
    b = harness.s3edge_bin()
    if not b.exists():
        pytest.skip("s3edge binary not found at %s (build it, or set "
                    "S3EDGE_BIN)" % b)
    return b


@pytest.fixture(scope="session")
def s3origin(tmp_path_factory):
    if not harness.S3RVER.exists():
        r = subprocess.run(["sh", str(harness.E2E / "setup.sh")],
                           capture_output=True, timeout=300)
        if r.returncode != 0:
            pytest.fail("tests/e2e/setup.sh failed:\n%s%s" % (
                r.stdout.decode(errors="replace"),
                r.stderr.decode(errors="replace")))
    o = harness.S3Origin(tmp_path_factory.mktemp("s3origin"))
    yield o
    o.stop()


@pytest.fixture
def s3(s3origin):
    """The S3 origin, its request records cleared for this test."""
    s3origin.check_alive()
    s3origin.reset()
    return s3origin


@pytest.fixture(scope="session")
def faultorigin(tmp_path_factory):
    o = harness.FaultOrigin(tmp_path_factory.mktemp("faultorigin"))
    yield o
    o.stop()


@pytest.fixture
def fault(faultorigin):
    """The fault origin, its records and faults cleared for this test."""
    faultorigin.check_alive()
    faultorigin.reset()
    yield faultorigin
    faultorigin.reset()


@pytest.fixture(scope="session")
def plainorigin(tmp_path_factory):
    o = harness.PlainOrigin(tmp_path_factory.mktemp("plainorigin"))
    yield o
    o.stop()


@pytest.fixture
def plain(plainorigin):
    """The plain origin, its records and objects cleared for this test."""
    plainorigin.check_alive()
    plainorigin.reset()
    yield plainorigin
    plainorigin.reset()


@pytest.fixture
def edge(s3edge_bin, tmp_path):
    """Factory: edge(args=[...], config=None, env=None) -> harness.Edge.
    Every edge made here is stopped at teardown; problems fail the test."""
    made = []

    def make(args=(), config=None, env=None, **kw):
        e = harness.Edge(tmp_path / ("edge%d" % len(made)), args=args,
                         config=config, env=env, **kw)
        made.append(e)
        return e

    yield make
    problems = []
    for e in made:
        problems += e.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def s3edge_creds(s3origin):
    return {"AWS_ACCESS_KEY_ID": s3origin.AKID,
            "AWS_SECRET_ACCESS_KEY": s3origin.SECRET}


@pytest.fixture
def edge_s3(edge, s3, s3edge_creds):
    """Factory: an s3edge in front of the S3 origin's private bucket, with
    the right credentials unless env says otherwise."""
    def make(args=(), env=None, bucket=None, **kw):
        e = dict(s3edge_creds) if env is None else env
        return edge(["--origin", s3.origin_url(bucket),
                     "--region", s3.REGION] + list(args), env=e, **kw)
    return make


@pytest.fixture
def edge_fault(edge, fault):
    """Factory: an anonymous s3edge in front of the fault origin."""
    def make(args=(), **kw):
        return edge(["--origin", fault.origin_url(), "--anonymous"]
                    + list(args), env={}, **kw)
    return make


@pytest.fixture
def get(tmp_path):
    """curl bound to this test's directory: get(url, *curl_args)."""
    return functools.partial(harness.curl, workdir=tmp_path)


@pytest.fixture(scope="session")
def big_object(tmp_path_factory):
    """A 50 MiB object, generated once: (path, bytes, sha256)."""
    size = 50 * 1024 * 1024
    data = harness.object_bytes(size, 5050)
    p = tmp_path_factory.mktemp("big") / "big.bin"
    p.write_bytes(data)
    return p, data, harness.sha256(data)


GIB_KEY = "r/gib.bin"


@pytest.fixture(scope="session")
def gib_object(faultorigin, tmp_path_factory):
    """A 1 GiB object in the fault origin under GIB_KEY, made once per
    session: (key, path, size, sha256, etag). The file (read back for
    range checks) and the origin's copy are removed at the end."""
    size = 1 << 30
    piece = 64 * 1024 * 1024
    p = tmp_path_factory.mktemp("gib") / "gib.bin"
    with open(p, "wb") as f:
        for i in range(size // piece):
            f.write(harness.object_bytes(piece, 9000 + i))
    # an ETag as S3 gives a multipart upload (and no MD5 of 1 GiB to make)
    info = harness.control(faultorigin.port, "POST", "/__fault/object",
                           {"bucket": faultorigin.BUCKET, "key": GIB_KEY,
                            "file": str(p),
                            "etag": '"6f1d0c5e2b7a49f3a8c4e9d2b1f07a36-64"'},
                           timeout=180)
    assert info["size"] == size
    yield GIB_KEY, p, size, info["sha256"], info["etag"]
    try:
        faultorigin.delete(GIB_KEY)
    finally:
        p.unlink()
