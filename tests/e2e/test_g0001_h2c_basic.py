"""
g0001: HTTP/2 with prior knowledge (h2c) on the HTTP/1.1 port. A miss then
a hit give the same bytes and the same headers as HTTP/1.1 (lower-cased,
without connection-specific fields); HEAD, 404 and 405 are the same
answers; a 50 MiB object arrives byte-identical; the access log says
HTTP/2.0. The preface may arrive in pieces.
"""

import harness
from h2client import H2Client, RawH2, curl_h2

KEY = "g0001/hello.txt"

# fields whose values may differ between two responses of the same object
VOLATILE = {"date", "age", "x-cache"}
HOP = {"connection", "keep-alive", "transfer-encoding"}


def comparable(r):
    return sorted((k.lower(), v) for k, v in r.headers
                  if k.lower() not in VOLATILE | HOP)


def test_miss_then_hit_like_h1(s3, edge_s3, get):
    data = b"hello over h2c\n" * 300
    etag = s3.put(KEY, data, content_type="text/plain; charset=utf-8",
                  metadata={"owner": "g0001"})
    e = edge_s3()
    s3.reset()
    url = e.url(harness.url_path(KEY))

    r1 = curl_h2(get, url)
    assert r1.rc == 0 and r1.status == 200, r1
    assert r1.info.get("http_version") == "2", r1.info
    assert r1.body == data
    assert r1.header("x-cache") == "Miss from s3edge"
    r2 = curl_h2(get, url)
    assert r2.status == 200 and r2.body == data, r2
    assert r2.header("x-cache") == "Hit from s3edge"
    assert r2.header("age", "").isdigit()
    assert r2.header("etag") == etag
    assert r2.header("content-length") == str(len(data))
    assert r2.header("server") == "s3edge"
    assert r2.header("x-amz-meta-owner") == "g0001"
    assert not r2.has("x-amz-request-id")
    # every field name is lower case on the wire (RFC 9113 8.2.1)
    assert all(k == k.lower() for k, _ in r2.headers), r2.headers

    h1 = get(url, "--http1.1")
    assert h1.status == 200 and h1.body == data
    assert h1.header("x-cache") == "Hit from s3edge"
    assert comparable(h1) == comparable(r2)
    assert comparable(r1) == comparable(r2)

    assert s3.gets(KEY) == 1
    lines = e.wait_access(3)
    assert [(l["proto"], l["status"], l["cache"]) for l in lines] == [
        ("HTTP/2.0", "200", "MISS"), ("HTTP/2.0", "200", "HIT"),
        ("HTTP/1.1", "200", "HIT")], lines
    assert lines[0]["host"] == e.client_authority()
    assert int(lines[1]["bytes"]) == len(data)


def test_head_404_405_like_h1(s3, edge_s3, get):
    data = b"x" * 1234
    s3.put("g0001/head.bin", data)
    e = edge_s3()
    for path in ("/g0001/head.bin", "/g0001/missing"):
        for args in (("-I",), ()):
            a = get(e.url(path), *args)
            b = curl_h2(get, e.url(path), *args)
            assert a.status == b.status, (a, b)
            if not args:
                assert a.body == b.body, (a, b)
            assert comparable(a) == comparable(b)
    with H2Client(e.port) as c:
        st = c.get("/g0001/head.bin", method="HEAD")
        # END_STREAM on the HEADERS, no DATA (RFC 9110 9.3.2)
        assert st.status == 200 and st.ended and st.data == b""
        assert st.header("content-length") == "1234"
        assert not any(type(ev).__name__ == "DataReceived" for ev in c.events)
    r = curl_h2(get, e.url("/g0001/missing"))
    assert r.status == 404 and r.body.startswith(b"404 Not Found")
    assert r.header("content-type") == "text/plain; charset=utf-8"
    r = curl_h2(get, e.url("/g0001/head.bin"), "-X", "DELETE")
    assert r.status == 405 and r.header("allow") == "GET, HEAD", r


def test_large_object_identical(fault, edge_fault, get, big_object):
    path, data, digest = big_object
    fault.put("g0001/big.bin", file=path)
    e = edge_fault(["--max-object-size", "128MiB", "--memory-cache",
                    "256MiB"])
    for want in ("miss", "hit"):
        r = curl_h2(get, e.url("/g0001/big.bin"), timeout=60,
                    keep_body_file=True)
        assert r.rc == 0 and r.status == 200, r
        assert r.xcache() == want
        assert r.header("content-length") == str(len(data))
        assert harness.sha256_file(r.body_path) == digest
    # one origin request per 1 MiB block, none for the hit
    assert fault.key_stats("g0001/big.bin")["GET"] == -(-len(data) // (1 << 20))


def test_query_and_range_over_h2(fault, edge_fault):
    data = harness.object_bytes(10000, 3)
    fault.put("g0001/r.bin", data=data)
    e = edge_fault()
    with H2Client(e.port) as c:
        st = c.get("/g0001/r.bin?x=1", extra=[("range", "bytes=100-199")])
        assert st.status == 206, st.headers
        assert bytes(st.data) == data[100:200]
        assert st.header("content-range") == "bytes 100-199/10000"
        st = c.get("/g0001/r.bin?x=2")
        assert st.status == 200 and bytes(st.data) == data
    recs = fault.requests_for("g0001/r.bin")
    # the edge fetched the block the range is in, and answered both
    assert [r.get("range") for r in recs] == ["bytes=0-1048575"], recs


def test_preface_in_pieces(fault, edge_fault):
    fault.put("g0001/p.txt", data=b"pieces")
    e = edge_fault()
    with RawH2(e.port, trickle=True) as r:
        r.send(r.get_frame(1, "/g0001/p.txt"))
        hdrs, body, ended, code = r.response(1)
        assert dict(hdrs)[":status"] == "200" and body == b"pieces", hdrs
        assert ended and code is None


def test_http1_starting_like_the_preface(fault, edge_fault):
    """A request that shares the preface's first byte is still HTTP/1."""
    fault.put("g0001/p.txt", data=b"pieces")
    e = edge_fault()
    raw = harness.raw_exchange(e.port, b"POST /g0001/p.txt HTTP/1.1\r\n"
                               b"Host: e2e\r\nConnection: close\r\n"
                               b"Content-Length: 0\r\n\r\n")
    resps, _ = harness.parse_responses(raw.data)
    assert [r.status for r in resps] == [405], raw


def test_empty_and_pass_through_objects(fault, edge_fault):
    """An empty object: HEADERS with END_STREAM and content-length 0, no
    DATA. An object over max_object_size passes through uncached, read
    by a client slower than the origin (the fill pauses and resumes)."""
    fault.put("g0001/empty", data=b"")
    big = harness.object_bytes(3 * 1024 * 1024, 9)
    fault.put("g0001/pass.bin", data=big)
    e = edge_fault(["--max-object-size", "1MiB"])
    with H2Client(e.port) as c:
        st = c.get("/g0001/empty")
        assert st.status == 200 and st.ended and st.data == b""
        assert st.header("content-length") == "0"
        assert not any(type(ev).__name__ == "DataReceived"
                       and ev.stream_id == st.id for ev in c.events)
    # a 16 KiB stream window: the client is paced by its WINDOW_UPDATEs
    with H2Client(e.port, settings={4: 16384}, timeout=60) as c:
        st = c.get("/g0001/pass.bin", timeout=60)
        assert st.ended and st.reset is None
        assert st.header("x-cache") == "Pass from s3edge"
        assert harness.sha256(bytes(st.data)) == harness.sha256(big)
    # the first block (which tells the size), then the rest in one range
    assert fault.key_stats("g0001/pass.bin")["GET"] == 2


def test_many_long_metadata_fields_like_h1(fault, edge_fault, get):
    """x-amz-meta-* fields whose names add up to more than a few KiB reach
    h2 clients lower-cased and complete, as on HTTP/1.1."""
    meta = {("Field-%02d-" % i) + "N" * 50: "v%d" % i for i in range(40)}
    fault.put("g0001/meta.bin", data=b"m", metadata=meta)
    e = edge_fault()
    h1 = get(e.url("/g0001/meta.bin"))
    h2 = curl_h2(get, e.url("/g0001/meta.bin"))
    assert h1.status == h2.status == 200
    names = sorted(k for k, _ in h2.headers if k.startswith("x-amz-meta-"))
    assert len(names) == 40, names
    assert comparable(h1) == comparable(h2)
