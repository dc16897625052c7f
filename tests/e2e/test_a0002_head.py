"""
a0002: HEAD on an uncached and on a cached object: the object's headers
with the right Content-Length and no body (checked on one connection: a
body after a HEAD would be taken for the next response).
"""

import harness

KEY = "a0002/head.bin"


def head_then_get(e, path):
    req = ("HEAD %s HTTP/1.1\r\nHost: %s\r\n\r\n"
           "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
           % (path, e.listen, path, e.listen)).encode()
    raw = harness.raw_exchange(e.port, req, timeout=10)
    resps, rest = harness.parse_responses(raw.data, ["HEAD", "GET"])
    assert raw.eof and not raw.reset, raw
    assert rest == b"", "bytes after the last response: %r" % rest[:200]
    assert len(resps) == 2, raw
    return resps


def test_head_uncached_and_cached(s3, edge_s3, get):
    data = harness.object_bytes(70000, 2)
    etag = s3.put(KEY, data, content_type="application/x-test")
    e = edge_s3()
    path = harness.url_path(KEY)

    h, g = head_then_get(e, path)
    assert h.status == 200
    assert h.header("content-length") == str(len(data))
    assert h.header("etag") == etag
    assert h.header("content-type") == "application/x-test"
    assert h.body == b""
    assert g.status == 200 and g.body == data

    # now cached for certain
    r = get(e.url(path))
    assert r.xcache() == "hit" and r.body == data
    h, g = head_then_get(e, path)
    assert h.status == 200
    assert h.header("content-length") == str(len(data))
    assert h.header("etag") == etag
    assert h.header("x-cache") == "Hit from s3edge"
    assert g.status == 200 and g.body == data
    assert g.header("x-cache") == "Hit from s3edge"

    lines = e.wait_access(5)
    assert [l["method"] for l in lines] == ["HEAD", "GET", "GET", "HEAD",
                                            "GET"]
    assert lines[3]["cache"] == "HIT"


def test_head_missing(s3, edge_s3):
    s3.put("a0002/after.txt", b"after")
    e = edge_s3()
    req = ("HEAD /a0002/missing HTTP/1.1\r\nHost: %s\r\n\r\n"
           "GET /a0002/after.txt HTTP/1.1\r\nHost: %s\r\n"
           "Connection: close\r\n\r\n" % (e.listen, e.listen)).encode()
    raw = harness.raw_exchange(e.port, req, timeout=10)
    assert raw.eof and not raw.reset, raw
    resps, rest = harness.parse_responses(raw.data, ["HEAD", "GET"])
    assert rest == b"" and len(resps) == 2, raw
    assert resps[0].status == 404 and resps[0].body == b""
    assert resps[1].status == 200 and resps[1].body == b"after"
