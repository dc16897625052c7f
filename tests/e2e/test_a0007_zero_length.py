"""
a0007: an empty object (S3 allows them; an empty file is a common
download) is a 200 with Content-Length: 0, cached like any other.
"""

import harness

KEY = "a0007/empty"


def test_empty_object(s3, edge_s3, get):
    etag = s3.put(KEY, b"", content_type="text/plain")
    e = edge_s3()
    s3.reset()
    r1 = get(e.url("/" + KEY))
    r2 = get(e.url("/" + KEY))
    for r in (r1, r2):
        assert r.status == 200 and r.rc == 0, r
        assert r.body == b""
        assert r.header("content-length") == "0"
        assert r.header("etag") == etag
    assert (r1.xcache(), r2.xcache()) == ("miss", "hit")
    # the first fetch asks for block 0 by Range, which an empty object
    # cannot satisfy; the edge then asks for it whole, once
    assert s3.gets(KEY) <= 2

    req = ("HEAD /%s HTTP/1.1\r\nHost: e2e\r\n\r\n"
           "GET /%s HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n"
           % (KEY, KEY)).encode()
    raw = harness.raw_exchange(e.port, req, timeout=5)
    resps, rest = harness.parse_responses(raw.data, ["HEAD", "GET"])
    assert raw.eof and rest == b"" and len(resps) == 2, raw
    assert [x.header("content-length") for x in resps] == ["0", "0"]


def test_empty_object_chunked_origin(fault, edge_fault, get):
    fault.put(KEY, data=b"")
    fault.fault(KEY, chunked=True)
    e = edge_fault()
    r1 = get(e.url("/" + KEY))
    r2 = get(e.url("/" + KEY))
    for r in (r1, r2):
        assert r.status == 200 and r.rc == 0 and r.body == b"", r
    assert r2.xcache() == "hit"
