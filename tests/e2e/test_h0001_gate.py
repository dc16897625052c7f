"""
h0001: the harness's S3 origin itself: s3rver behind the SigV4 gate.
These run without s3edge; they show that the gate accepts what real S3
clients sign (curl's and awscli's SigV4, two implementations) and refuses
what S3 refuses, so that an s3edge test passing through it means
something.
"""

import datetime
import re

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import harness

EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def signed_headers(url, akid, secret, when, region="us-east-1", token=None):
    """Headers for a GET signed by botocore at time `when`."""
    req = AWSRequest(method="GET", url=url)
    ts = when.strftime("%Y%m%dT%H%M%SZ")
    req.context["timestamp"] = ts
    req.headers["x-amz-date"] = ts
    req.headers["x-amz-content-sha256"] = EMPTY
    if token:
        req.headers["x-amz-security-token"] = token
    signer = S3SigV4Auth(Credentials(akid, secret, token), "s3", region)
    creq = signer.canonical_request(req)
    sig = signer.signature(signer.string_to_sign(req, creq), req)
    hs = signer.headers_to_sign(req)
    auth = "AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=%s, Signature=%s" % (
        signer.scope(req), signer.signed_headers(hs), sig)
    out = ["-H", "Authorization: " + auth, "-H", "x-amz-date: " + ts,
           "-H", "x-amz-content-sha256: " + EMPTY]
    if token:
        out += ["-H", "x-amz-security-token: " + token]
    return out


def error_code(body):
    m = re.search(rb"<Code>([^<]+)</Code>", body)
    return m.group(1).decode() if m else None


def curl_sigv4(s3, akid=None, secret=None):
    return ["--aws-sigv4", "aws:amz:%s:s3" % s3.REGION,
            "--user", "%s:%s" % (akid or s3.AKID, secret or s3.SECRET),
            "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]


def test_signed_roundtrip_and_counts(s3, get):
    data = b"gate roundtrip\n" * 100
    etag = s3.put("h0001/plain.txt", data, content_type="text/plain",
                  metadata={"color": "blue"})
    s3.reset()
    url = s3.url + harness.s3path(s3.BUCKET, "h0001/plain.txt")
    r = get(url, *curl_sigv4(s3))
    assert r.status == 200, r
    assert r.body == data
    assert r.header("etag") == etag
    assert r.header("x-amz-meta-color") == "blue"
    assert r.header("content-type") == "text/plain"
    assert r.has("x-amz-request-id") and r.has("x-amz-id-2")
    st = s3.stats()
    assert st["counts"] == {"GET /e2e/h0001/plain.txt": 1}
    assert [q["status"] for q in st["requests"]] == [200]


def test_awscli_roundtrip_awkward_key(s3, tmp_path):
    key = "h0001/sp ace/plus+tilde~ü.bin"
    data = harness.object_bytes(300000, 1)
    s3.put(key, data, client="aws")
    s3.reset()
    r = harness.curl(s3.url + harness.s3path(s3.BUCKET, key),
                     *curl_sigv4(s3), workdir=tmp_path)
    assert r.status == 200 and r.body == data, r
    assert s3.stats()["counts"] == {
        "GET /e2e/h0001/sp%20ace/plus%2Btilde~%C3%BC.bin": 1}


def test_refusals(s3, get):
    s3.put("h0001/r.txt", b"r")
    s3.reset()
    url = s3.url + "/e2e/h0001/r.txt"
    now = datetime.datetime.now(datetime.timezone.utc)

    r = get(url)
    assert (r.status, error_code(r.body)) == (403, "AccessDenied")
    r = get(url, "-H", "Authorization: AWS4-HMAC-SHA256 nonsense")
    assert (r.status, error_code(r.body)) == (403, "AccessDenied")
    r = get(url, *curl_sigv4(s3, akid="AKIDUNKNOWN"))
    assert (r.status, error_code(r.body)) == (403, "InvalidAccessKeyId")
    r = get(url, *curl_sigv4(s3, secret="wrong"))
    assert (r.status, error_code(r.body)) == (403, "SignatureDoesNotMatch")
    r = get(url, "--aws-sigv4", "aws:amz:us-east-1:s3",
            "--user", "%s:%s" % (s3.AKID, s3.SECRET))
    assert (r.status, error_code(r.body)) == (400, "InvalidRequest")
    r = get(url, *signed_headers(url, s3.AKID, s3.SECRET,
                                 now - datetime.timedelta(minutes=20)))
    assert (r.status, error_code(r.body)) == (403, "RequestTimeTooSkewed")
    r = get(url, *signed_headers(url, s3.AKID, s3.SECRET, now,
                                 region="eu-west-1"))
    assert (r.status, error_code(r.body)) == (400,
                                              "AuthorizationHeaderMalformed")
    # the key with a session token: without it, and with it
    r = get(url, *signed_headers(url, s3.TOKEN_AKID, s3.TOKEN_SECRET, now))
    assert (r.status, error_code(r.body)) == (403, "InvalidAccessKeyId")
    r = get(url, *signed_headers(url, s3.TOKEN_AKID, s3.TOKEN_SECRET, now,
                                 token="not-the-token"))
    assert (r.status, error_code(r.body)) == (400, "InvalidToken")
    r = get(url, *signed_headers(url, s3.TOKEN_AKID, s3.TOKEN_SECRET, now,
                                 token=s3.TOKEN))
    assert r.status == 200 and r.body == b"r"
    # a query string is part of the signature
    qurl = url + "?versionless=1&b=x%20y&a=%2F"
    r = get(qurl, *signed_headers(qurl, s3.AKID, s3.SECRET, now))
    assert r.status == 200 and r.body == b"r", r
    r = get(qurl.replace("b=x", "b=z"),
            *signed_headers(qurl, s3.AKID, s3.SECRET, now))
    assert (r.status, error_code(r.body)) == (403, "SignatureDoesNotMatch")
    # a 14-minute skew is still accepted
    r = get(url, *signed_headers(url, s3.AKID, s3.SECRET,
                                 now - datetime.timedelta(minutes=14)))
    assert r.status == 200 and r.body == b"r"

    st = s3.stats()
    assert st["counts"] == {"GET /e2e/h0001/r.txt": 3}
    assert st["refused"] == {"AccessDenied": 2, "InvalidAccessKeyId": 2,
                             "SignatureDoesNotMatch": 2, "InvalidRequest": 1,
                             "RequestTimeTooSkewed": 1,
                             "AuthorizationHeaderMalformed": 1,
                             "InvalidToken": 1}


def test_anonymous_bucket(s3, get):
    s3.put("h0001/pub.txt", b"public", bucket=s3.PUBLIC)
    s3.put("h0001/priv.txt", b"private")
    r = get(s3.url + "/e2e-public/h0001/pub.txt")
    assert r.status == 200 and r.body == b"public"
    r = get(s3.url + "/e2e/h0001/priv.txt")
    assert r.status == 403
    r = get(s3.url + "/e2e-public/h0001/pub.txt", "-X", "DELETE")
    assert r.status == 403


def test_keepalive_and_head(s3, get):
    s3.put("h0001/k1", b"one")
    s3.put("h0001/k2", b"two!")
    r = get(s3.url + "/e2e/h0001/k1", *curl_sigv4(s3), "-I")
    assert r.status == 200 and r.header("content-length") == "3"
    hdir = harness.Path(r.body_path).parent
    r = harness.subprocess.run(
        ["curl", "-sS", "--http1.1", "--aws-sigv4", "aws:amz:us-east-1:s3",
         "--user", "%s:%s" % (s3.AKID, s3.SECRET),
         "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
         "-w", "[%{num_connects}]", s3.url + "/e2e/h0001/k1",
         s3.url + "/e2e/h0001/k2"], capture_output=True, timeout=20,
        cwd=hdir)
    assert r.stdout == b"one[1]two![0]"
