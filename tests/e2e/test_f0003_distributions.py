"""
f0003: a config with several origins and distributions. The Host header
(port removed, case ignored) picks the distribution: exact name, then the
longest "*.domain"; the path prefix is removed and the key prefix put in
front; a path outside the prefix is a 404 that reaches no origin;
distributions cache apart even when they name the same S3 object; with
query_string: all the query is part of the cache key and is sent to S3
(signed: the gate checks the canonical query string); with query_string:
allow only the listed parameters are, in the client's order.
"""

import pytest

CONFIG = """\
listen:
  - $listen
log:
  access_log: $access_log
origins:
  - name: private
    endpoint: %(gate)s
    bucket: e2e
    region: us-east-1
    addressing: path
    credentials:
      source: static
      access_key_id: %(akid)s
      secret_access_key: %(secret)s
  - name: public
    endpoint: %(gate)s
    bucket: e2e-public
    credentials:
      source: anonymous
distributions:
  - name: files
    hosts: [files.example.test]
    origin: private
    path_prefix: /dl/
    key_prefix: f0003/
  - name: pub
    hosts: ["*.public.example.test"]
    origin: public
  - name: deep
    hosts: ["*.deep.public.example.test"]
    origin: private
  - name: q
    hosts: [q.example.test]
    origin: private
    query_string: all
  - name: qa
    hosts: [qa.example.test]
    origin: private
    query_string: allow
    query_keys: [v, lang]
"""


@pytest.fixture
def e(s3, edge):
    s3.put("f0003/a.txt", b"private a")
    s3.put("f0003/pub.txt", b"public pub", bucket=s3.PUBLIC)
    cfg = CONFIG % {"gate": s3.url, "akid": s3.AKID, "secret": s3.SECRET}
    e = edge(config=cfg, env={})
    s3.reset()
    return e


def test_prefixes(s3, e, get):
    r = get(e.url("/dl/a.txt"), "-H", "Host: files.example.test")
    assert r.status == 200 and r.body == b"private a", r
    r = get(e.url("/dl/a.txt"), "-H", "Host: FILES.Example.TEST:8443")
    assert r.status == 200 and r.xcache() == "hit", r
    assert s3.stats()["counts"] == {"GET /e2e/f0003/a.txt": 1}

    r = get(e.url("/elsewhere/a.txt"), "-H", "Host: files.example.test")
    assert r.status == 404, r
    assert s3.stats()["counts"] == {"GET /e2e/f0003/a.txt": 1}


def test_wildcards(s3, e, get):
    r = get(e.url("/f0003/pub.txt"), "-H", "Host: cdn.public.example.test")
    assert r.status == 200 and r.body == b"public pub", r
    # the longer wildcard wins: this one is the private bucket
    r = get(e.url("/f0003/a.txt"), "-H", "Host: x.deep.public.example.test")
    assert r.status == 200 and r.body == b"private a", r
    assert s3.stats()["counts"] == {"GET /e2e-public/f0003/pub.txt": 1,
                                    "GET /e2e/f0003/a.txt": 1}
    assert s3.stats()["refused"] == {}


def test_distributions_cache_apart(s3, e, get):
    r1 = get(e.url("/dl/a.txt"), "-H", "Host: files.example.test")
    r2 = get(e.url("/f0003/a.txt"), "-H", "Host: a.deep.public.example.test")
    assert (r1.status, r2.status) == (200, 200)
    assert (r1.xcache(), r2.xcache()) == ("miss", "miss")
    assert s3.gets("f0003/a.txt") == 2


def test_query_string_all(s3, e, get):
    h = ("-H", "Host: q.example.test")
    for q, want in (("?v=1", "miss"), ("?v=2", "miss"), ("?v=1", "hit"),
                    ("?b=x%20y&a=%2F", "miss")):
        r = get(e.url("/f0003/a.txt" + q), *h)
        assert r.status == 200 and r.body == b"private a", (q, r)
        assert r.xcache() == want, q
    recs = s3.stats()["requests"]
    assert [(x["path"], x["query"]) for x in recs] == [
        ("/e2e/f0003/a.txt", "v=1"), ("/e2e/f0003/a.txt", "v=2"),
        ("/e2e/f0003/a.txt", "b=x%20y&a=%2F")]
    assert s3.stats()["refused"] == {}

    # ignored queries (the default) are neither sent nor keyed
    r = get(e.url("/dl/a.txt?v=9"), "-H", "Host: files.example.test")
    assert r.status == 200
    assert s3.stats()["requests"][-1]["query"] == ""


def test_query_string_allow_list(s3, e, get):
    h = ("-H", "Host: qa.example.test")
    # tracking parameters do not split the cache; listed ones do
    for q, want in (("?v=1&utm=a", "miss"), ("?utm=b&v=1", "hit"),
                    ("?v=1&lang=de", "miss"), ("?V=1", "miss"),
                    ("?junk=1", "hit")):
        r = get(e.url("/f0003/a.txt" + q), *h)
        assert r.status == 200 and r.body == b"private a", (q, r)
        assert r.xcache() == want, (q, r.xcache())
    recs = s3.stats()["requests"]
    # only the allowed parameters reach S3 (and are signed)
    assert [x["query"] for x in recs] == ["v=1", "v=1&lang=de", ""], recs
    assert s3.stats()["refused"] == {}
