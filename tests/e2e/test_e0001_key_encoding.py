"""
e0001: keys S3 allows and URLs make awkward: spaces, '+', '~', '%',
unicode, repeated and leading slashes. Uploaded with awscli, fetched with
curl using percent-encoding; the origin must see each key encoded once,
the way SigV4 signs it (every byte outside RFC 3986 unreserved
percent-encoded, '/' kept), and the gate checked that signature.
Repeated slashes go through the fault origin: s3rver's file store folds
"a//b" into "a/b".
"""

from urllib.parse import quote

import pytest

import harness

KEYS = [
    "e0001/with space.txt",
    "e0001/plus+sign.txt",
    "e0001/tilde~name.txt",
    "e0001/100%.txt",
    "e0001/ünïcødé/日本語.txt",
    "e0001/mixed + ~ é=&;,@$!'()*.txt",
    "e0001/hash#and?question[]{}^|`\"<>.txt",
]


@pytest.fixture(scope="module")
def bodies(s3origin, tmp_path_factory):
    """One awscli run uploads every key (they are file names below a
    directory), once for this module."""
    s3 = s3origin
    src = tmp_path_factory.mktemp("e0001") / "upload"
    bodies = {}
    for i, key in enumerate(KEYS):
        p = src / key
        p.parent.mkdir(parents=True, exist_ok=True)
        bodies[key] = ("body of %r #%d\n" % (key, i)).encode()
        p.write_bytes(bodies[key])
    s3.aws("s3", "cp", "--recursive", "--only-show-errors", str(src),
           "s3://%s/" % s3.BUCKET)
    return bodies


def test_awkward_keys_roundtrip(s3, edge_s3, get, bodies):
    e = edge_s3()
    s3.reset()
    for key in KEYS:
        r = get(e.url(harness.url_path(key)))
        assert r.status == 200, (key, r)
        assert r.body == bodies[key], key
    counts = s3.stats()["counts"]
    want = {"GET " + harness.s3path(s3.BUCKET, k): 1 for k in KEYS}
    assert counts == want
    assert s3.stats()["refused"] == {}


def test_equivalent_spellings_hit_one_key(s3, edge_s3, get, bodies):
    e = edge_s3()
    s3.reset()
    key = "e0001/ünïcødé/日本語.txt"
    spellings = [harness.url_path(key),
                 harness.url_path(key).lower(),          # lower-case hex
                 "/" + quote(key, safe="/~").replace("~", "%7E")]
    for sp in spellings:
        r = get(e.url(sp))
        assert r.status == 200 and r.body == bodies[key], (sp, r)
    # '+' in a path is a plus (only forms turn it into a space)
    r = get(e.url("/e0001/plus+sign.txt"))
    assert r.status == 200 and r.body == bodies["e0001/plus+sign.txt"]
    r = get(e.url("/e0001/tilde%7Ename.txt"))
    assert r.status == 200 and r.body == bodies["e0001/tilde~name.txt"]
    counts = s3.stats()["counts"]
    assert counts == {
        "GET " + harness.s3path(s3.BUCKET, key): 1,
        "GET " + harness.s3path(s3.BUCKET, "e0001/plus+sign.txt"): 1,
        "GET " + harness.s3path(s3.BUCKET, "e0001/tilde~name.txt"): 1,
    }, counts


def test_repeated_and_leading_slashes(fault, edge_fault, get):
    keys = ["e0001//double.txt", "e0001/a//b///c.txt", "/leading.txt"]
    for k in keys:
        fault.put(k, data=("key %r\n" % k).encode())
    e = edge_fault()
    for k in keys:
        r = get(e.url("/" + quote(k, safe="/~")), "--path-as-is")
        assert r.status == 200, (k, r)
        assert r.body == ("key %r\n" % k).encode()
        recs = fault.requests_for(k)
        assert [q["path"] for q in recs] == [
            "/" + fault.BUCKET + "/" + quote(k, safe="/~")], recs
    # "a/b" is another key than "a//b"
    r = get(e.url("/e0001/double.txt"))
    assert r.status == 404
