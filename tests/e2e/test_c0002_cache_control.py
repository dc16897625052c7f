"""
c0002: S3's Cache-Control decides: no-store and private objects are not
cached (each request reaches the origin); no-cache objects are stored but
revalidated with the origin before every reuse (RFC 9111 5.2.2.4), so each
request reaches the origin too; max-age objects are cached.
"""

import pytest

import harness


@pytest.mark.parametrize("cc", ["no-store", "private", "no-cache",
                                "max-age=0, no-store"])
def test_not_cached(s3, edge_s3, get, cc):
    key = "c0002/uncacheable.txt"
    s3.put(key, b"fresh every time", cache_control=cc)
    e = edge_s3()
    s3.reset()
    for _ in range(2):
        r = get(e.url("/" + key))
        assert r.status == 200 and r.body == b"fresh every time", r
        allowed = ("miss", "pass", "refreshhit") if cc == "no-cache" else ("miss", "pass")
        assert r.xcache() in allowed, r.header("x-cache")
    assert s3.gets(key) == 2


def test_max_age_cached(s3, edge_s3, get):
    key = "c0002/cacheable.txt"
    s3.put(key, b"cache me", cache_control="public, max-age=3600")
    e = edge_s3()
    s3.reset()
    r1 = get(e.url("/" + key))
    r2 = get(e.url("/" + key))
    assert (r1.xcache(), r2.xcache()) == ("miss", "hit")
    assert r2.body == b"cache me"
    assert s3.gets(key) == 1
