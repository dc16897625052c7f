"""
a0003: 404 and 403 at the edge. A missing key is a short 404 of ours
(never S3's XML); a refusal by the origin (wrong secret, unknown key,
anonymous edge in front of a private bucket) is a 403. The positive
controls: an anonymous edge in front of a public bucket, and temporary
credentials (session token) signed in.
"""

import harness


def assert_our_body(r):
    assert len(r.body) < 512, r.body
    assert b"<?xml" not in r.body and b"<Error>" not in r.body, r.body
    assert not r.has("x-amz-request-id")


def test_missing_key_404(s3, edge_s3, get):
    e = edge_s3()
    r = get(e.url("/a0003/no-such-key.txt"))
    assert r.status == 404, r
    assert_our_body(r)
    assert s3.gets("a0003/no-such-key.txt") == 1
    assert e.wait_access(1)[0]["status"] == "404"


def test_root_is_404_without_listing(s3, edge_s3, get):
    e = edge_s3()
    r = get(e.url("/"))
    assert r.status == 404, r
    assert_our_body(r)
    # GET /bucket/ would be ListObjects: it must never be sent
    assert s3.stats()["requests"] == []


def test_wrong_secret_403(s3, edge_s3, get):
    s3.put("a0003/secret.txt", b"secret")
    e = edge_s3(env={"AWS_ACCESS_KEY_ID": s3.AKID,
                     "AWS_SECRET_ACCESS_KEY": "not-the-secret"})
    s3.reset()
    r = get(e.url("/a0003/secret.txt"))
    assert r.status == 403, r
    assert_our_body(r)
    st = s3.stats()
    assert st["counts"] == {}
    assert set(st["refused"]) == {"SignatureDoesNotMatch"}, st


def test_unknown_key_403(s3, edge_s3, get):
    s3.put("a0003/secret.txt", b"secret")
    e = edge_s3(env={"AWS_ACCESS_KEY_ID": "AKIDNOBODYKNOWS00000",
                     "AWS_SECRET_ACCESS_KEY": s3.SECRET})
    s3.reset()
    r = get(e.url("/a0003/secret.txt"))
    assert r.status == 403, r
    assert_our_body(r)
    assert set(s3.stats()["refused"]) == {"InvalidAccessKeyId"}


def test_anonymous_edge_private_bucket_403(s3, edge, get):
    s3.put("a0003/secret.txt", b"secret")
    e = edge(["--origin", s3.origin_url(), "--anonymous"], env={})
    s3.reset()
    r = get(e.url("/a0003/secret.txt"))
    assert r.status == 403, r
    assert_our_body(r)
    st = s3.stats()
    assert st["counts"] == {} and set(st["refused"]) == {"AccessDenied"}


def test_no_credentials_means_anonymous(s3, edge, get):
    s3.put("a0003/pub.txt", b"public bytes", bucket=s3.PUBLIC)
    s3.put("a0003/secret.txt", b"secret")
    e = edge(["--origin", s3.origin_url(s3.PUBLIC)], env={})
    r = get(e.url("/a0003/pub.txt"))
    assert r.status == 200 and r.body == b"public bytes", r
    e2 = edge(["--origin", s3.origin_url()], env={})
    r = get(e2.url("/a0003/secret.txt"))
    assert r.status == 403, r


def test_anonymous_edge_public_bucket(s3, edge, get):
    s3.put("a0003/pub.txt", b"public bytes", bucket=s3.PUBLIC)
    e = edge(["--origin", s3.origin_url(s3.PUBLIC), "--anonymous"],
             env={"AWS_ACCESS_KEY_ID": s3.AKID,
                  "AWS_SECRET_ACCESS_KEY": "ignored-when-anonymous"})
    s3.reset()
    r = get(e.url("/a0003/pub.txt"))
    assert r.status == 200 and r.body == b"public bytes", r
    assert s3.stats()["refused"] == {}


def test_session_token(s3, edge_s3, get):
    s3.put("a0003/token.txt", b"temporary credentials")
    e = edge_s3(env={"AWS_ACCESS_KEY_ID": s3.TOKEN_AKID,
                     "AWS_SECRET_ACCESS_KEY": s3.TOKEN_SECRET,
                     "AWS_SESSION_TOKEN": s3.TOKEN})
    s3.reset()
    r = get(e.url("/a0003/token.txt"))
    assert r.status == 200 and r.body == b"temporary credentials", r
    assert s3.stats()["refused"] == {}

    e2 = edge_s3(env={"AWS_ACCESS_KEY_ID": s3.TOKEN_AKID,
                      "AWS_SECRET_ACCESS_KEY": s3.TOKEN_SECRET})
    r = get(e2.url("/a0003/token.txt"))
    assert r.status == 403, r
    assert set(s3.stats()["refused"]) == {"InvalidAccessKeyId"}
