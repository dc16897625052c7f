"""
m0006: writes to an S3 origin through the edge (allowed_methods all). A
PUT is SigV4-signed with UNSIGNED-PAYLOAD, its x-amz-meta-* fields signed
too, and the gate (botocore) accepts it; the object is then served by the
edge with its type and metadata. A PUT over a cached object and a DELETE
invalidate it. A body without a length is refused with 411 (S3 wants one)
without reaching the origin; a client's own x-amz-date or Authorization
never reaches S3.
"""

import hashlib

import harness


def test_signed_put_get_delete(s3, edge_s3, get, tmp_path):
    e = edge_s3(["--allowed-methods", "all"])
    data = harness.object_bytes(3 * 1024 * 1024 + 5, 61)
    p = tmp_path / "obj.bin"
    p.write_bytes(data)
    r = get(e.url("/m0006/obj.bin"), "-T", str(p), "-H", "Content-Type: application/x-m6",
            "-H", "x-amz-meta-color: blue", "-H", "Authorization: Bearer client-secret",
            "-H", "x-amz-date: 19990101T000000Z")
    assert r.status == 200, r
    assert r.header("etag") == '"%s"' % hashlib.md5(data).hexdigest()
    assert r.header("x-amz-request-id") is None  # S3's ids stay behind
    st = s3.stats()
    assert st["refused"] == {}, st
    assert s3.count("PUT", "/e2e/m0006/obj.bin") == 1

    r = get(e.url("/m0006/obj.bin"))
    assert r.status == 200 and harness.sha256(r.body) == harness.sha256(data)
    assert r.header("content-type") == "application/x-m6"
    assert r.header("x-amz-meta-color") == "blue"
    fetched = s3.gets("m0006/obj.bin")  # the object, in blocks
    assert fetched >= 1
    assert get(e.url("/m0006/obj.bin")).xcache() == "hit"
    assert s3.gets("m0006/obj.bin") == fetched

    # a new version through the edge: the stored copy is invalidated
    p.write_bytes(b"version 2")
    r = get(e.url("/m0006/obj.bin"), "-T", str(p))
    assert r.status == 200
    r = get(e.url("/m0006/obj.bin"))
    assert r.body == b"version 2" and r.xcache() == "miss"
    assert s3.gets("m0006/obj.bin") == fetched + 1

    r = get(e.url("/m0006/obj.bin"), "-X", "DELETE")
    assert r.status == 204, r
    r = get(e.url("/m0006/obj.bin"))
    assert r.status == 404
    assert s3.stats()["refused"] == {}


def test_body_without_length_is_411(s3, edge_s3, get, tmp_path):
    e = edge_s3(["--allowed-methods", "all"])
    p = tmp_path / "c.bin"
    p.write_bytes(b"chunks")
    r = get(e.url("/m0006/chunked"), "-T", str(p), "-H", "Transfer-Encoding: chunked",
            "--http1.1")
    assert r.status == 411, r
    assert s3.count("PUT", "/e2e/m0006/chunked") == 0
    assert s3.stats()["requests"] == []


def test_not_allowed_by_default(s3, edge_s3, get):
    e = edge_s3()
    r = get(e.url("/m0006/x"), "-X", "DELETE")
    assert r.status == 405 and r.header("allow") == "GET, HEAD"
    assert s3.stats()["requests"] == []
