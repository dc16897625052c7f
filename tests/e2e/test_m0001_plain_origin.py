"""
m0001: a plain (type http) origin. Requests reach it with the client's
path and query exactly as sent (escapes and all, no S3 key mapping), the
origin's own Host, and no signature; GETs are cached as from S3 (a second
GET is a hit the origin never sees, a 404 is cached as a negative entry).
--plain-origin URL does the same from the command line, and refuses a URL
with a path.
"""

import subprocess

import harness

CONFIG = """\
listen:
  - $listen
log:
  access_log: $access_log
origins:
  - name: app
    type: http
    endpoint: %(url)s
distributions:
  - name: d
    origin: app
    query_string: all
"""


def hdr(rec, name):
    for k, v in rec["headers"]:
        if k.lower() == name:
            return v
    return None


def test_path_and_query_unchanged_no_signature_cached(plain, edge, get):
    data = harness.object_bytes(300 * 1024, 1)
    # escapes kept as sent (lowercase hex too); S3 would get them re-encoded
    path = "/m0001/a%20b/c%7e;x=1/%7Euser,(x)"
    plain.put(path, data)
    e = edge(config=CONFIG % {"url": plain.url})
    target = path + "?b=2&a=%2F%20&a=1&empty="
    r = get(e.url(target))
    assert r.status == 200, r
    assert harness.sha256(r.body) == harness.sha256(data)
    assert r.xcache() == "miss"
    seen = plain.requests(path)
    assert len(seen) == 1
    # exactly what the client sent: nothing decoded, re-encoded or sorted
    assert seen[0]["target"] == target
    assert seen[0]["method"] == "GET"
    assert hdr(seen[0], "authorization") is None
    assert hdr(seen[0], "x-amz-date") is None
    assert hdr(seen[0], "x-amz-content-sha256") is None
    assert hdr(seen[0], "host") == "127.0.0.1:%d" % plain.port

    r2 = get(e.url(target))
    assert r2.status == 200 and r2.body == data
    assert r2.xcache() == "hit"
    assert len(plain.requests(path)) == 1  # served from the cache
    # another query is another object (query_string: all)
    r3 = get(e.url(path + "?other=1"))
    assert r3.status == 200 and r3.xcache() == "miss"
    assert [x["target"] for x in plain.requests(path)][-1] == path + "?other=1"

    h = get(e.url(target), "-I")
    assert h.status == 200 and h.header("content-length") == str(len(data))
    assert len(plain.requests(path)) == 2


def test_not_found_is_cached_briefly(plain, edge, get):
    e = edge(config=CONFIG % {"url": plain.url})
    for _ in range(2):
        r = get(e.url("/m0001/missing"))
        assert r.status == 404
    assert len(plain.requests("/m0001/missing")) == 1


def test_plain_origin_command_line(plain, edge, get):
    plain.put("/m0001/cli/x.txt", b"from the plain origin\n")
    e = edge(["--plain-origin", plain.url])
    for i in range(2):
        r = get(e.url("/m0001/cli/x.txt?ignored=1"))
        assert r.status == 200 and r.body == b"from the plain origin\n"
    seen = plain.requests("/m0001/cli/x.txt")
    # the default query policy (ignore) keys and forwards no query
    assert [x["target"] for x in seen] == ["/m0001/cli/x.txt"]
    assert hdr(seen[0], "authorization") is None


def test_plain_origin_url_with_a_path_is_refused(s3edge_bin):
    r = subprocess.run([str(s3edge_bin), "--plain-origin", "http://127.0.0.1:1/bucket",
                        "-t"], capture_output=True, timeout=10)
    assert r.returncode == 1
    assert b"expected http(s)://host[:port] without a path" in r.stderr
    r = subprocess.run([str(s3edge_bin), "--plain-origin", "http://127.0.0.1:1",
                        "--origin", "http://127.0.0.1:1/b", "-t"],
                       capture_output=True, timeout=10)
    assert r.returncode == 1 and b"not both" in r.stderr
    r = subprocess.run([str(s3edge_bin), "--plain-origin", "http://127.0.0.1:1",
                        "-t"], capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr


def test_redirects_and_gone_pass_as_they_are(plain, edge, get):
    """A plain origin's redirects and 410 reach the client with their
    status, Location and body (not the 502 an S3 origin's would give), and
    are not cached: each request goes to the origin. HEAD too."""
    e = edge(config=CONFIG % {"url": plain.url})
    for st in (301, 302, 303, 307, 308, 410):
        path = "/m0001/moved%d" % st
        loc = None if st == 410 else "https://example.test/new/%d?x=1" % st
        body = b"see elsewhere %d\n" % st
        plain.put(path, body, status=st, location=loc)
        for _ in range(2):
            r = get(e.url(path))
            assert r.rc == 0 and r.status == st, (st, r)
            assert r.header("location") == loc, (st, r.headers)
            assert r.body == body
            assert r.xcache() in ("miss", "pass"), r
        r = get(e.url(path), "-I")
        assert r.status == st and r.header("location") == loc, r
        # Range on a redirect: still the redirect, whole
        r = get(e.url(path), "-H", "Range: bytes=0-3")
        assert r.status == st and r.body == body, r
        assert len(plain.requests(path)) == 4, st
