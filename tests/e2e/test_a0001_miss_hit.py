"""
a0001: a miss, then a hit. The first GET goes to S3 (signed: the gate
checked s3edge's SigV4 with botocore), the second is served from memory;
the origin sees exactly one GET for the key. Response headers follow the
spec: S3's object headers pass, S3's internal ones do not.
"""

import email.utils
import re
import time

import harness

KEY = "a0001/hello.txt"


def check_object_headers(r, data, etag):
    assert r.header("content-length") == str(len(data))
    assert r.header("content-type") == "text/plain; charset=utf-8"
    assert r.header("etag") == etag
    lm = email.utils.parsedate_to_datetime(r.header("last-modified"))
    assert abs(lm.timestamp() - time.time()) < 600
    d = email.utils.parsedate_to_datetime(r.header("date"))
    assert abs(d.timestamp() - time.time()) < 60
    assert r.header("server", "").split("/")[0] == "s3edge"
    assert r.header("x-amz-meta-owner") == "e2e"
    assert r.header("x-amz-meta-build") == "42"
    for h in ("x-amz-request-id", "x-amz-id-2"):
        assert not r.has(h), "%s must not reach clients" % h


def test_miss_then_hit(s3, edge_s3, get):
    data = b"hello from the origin\n" * 50
    etag = s3.put(KEY, data, content_type="text/plain; charset=utf-8",
                  metadata={"owner": "e2e", "build": "42"})
    e = edge_s3()
    s3.reset()
    url = e.url(harness.url_path(KEY))

    r1 = get(url)
    assert r1.status == 200, r1
    assert r1.body == data
    assert r1.header("x-cache") == "Miss from s3edge"
    check_object_headers(r1, data, etag)

    r2 = get(url)
    assert r2.status == 200, r2
    assert r2.body == data
    assert r2.header("x-cache") == "Hit from s3edge"
    age = r2.header("age")
    assert age is not None and age.isdigit() and int(age) < 60, age
    check_object_headers(r2, data, etag)

    st = s3.stats()
    assert st["counts"] == {"GET " + harness.s3path(s3.BUCKET, KEY): 1}, st
    assert st["refused"] == {}, st

    lines = e.wait_access(2)
    assert [(l.get("method"), l.get("path"), l.get("status"), l.get("cache"))
            for l in lines] == [("GET", "/" + KEY, "200", "MISS"),
                                ("GET", "/" + KEY, "200", "HIT")], lines
    for l in lines:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z",
                            l.get("time", "")), l
        assert l.get("proto") == harness.PROTO_NAME
        assert l.get("client", "").startswith("127.0.0.1:")
        assert int(l.get("bytes", "-1")) >= len(data)
        assert float(l.get("dur_ms", "-1")) >= 0
        assert l.get("host") == e.client_authority()
    assert "listening on %s" % e.listen in e.stderr_text()


def test_query_ignored_by_default(s3, edge_s3, get):
    key = "a0001/query.bin"
    data = harness.object_bytes(4096, 11)
    s3.put(key, data)
    e = edge_s3()
    s3.reset()
    r1 = get(e.url(harness.url_path(key) + "?v=1"))
    r2 = get(e.url(harness.url_path(key) + "?v=2"))
    assert (r1.status, r2.status) == (200, 200)
    assert r1.body == data and r2.body == data
    assert r2.xcache() == "hit"
    recs = s3.stats()["requests"]
    assert [(q["method"], q["path"], q["query"]) for q in recs] == [
        ("GET", harness.s3path(s3.BUCKET, key), "")]
