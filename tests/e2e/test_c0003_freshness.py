"""
c0003: RFC 9111 freshness at the edge, against the fault origin (which
implements S3's conditional GETs exactly):

  - a stale object is revalidated with a conditional GET; a 304 keeps the
    stored body (X-Cache: RefreshHit), a 200 replaces it;
  - stale-while-revalidate serves the stale copy at once and refreshes it in
    the background; stale-if-error serves it when the origin fails;
  - S3's 404 and 403 are cached briefly (negative caching), per the
    distribution's negative_ttl_404 / negative_ttl_403, 0 turning it off;
  - client preconditions are answered from the cache: If-None-Match and
    If-Modified-Since give 304, a failing If-Match gives 412;
  - min_ttl / max_ttl clamp what S3 says, as in a CloudFront cache policy.
"""

import time

import harness

SIZE = 20000


def wait_stale(seconds):
    time.sleep(seconds + 0.2)


def gets(fault, key):
    return [r for r in fault.requests_for(key) if r["method"] == "GET"]


def test_revalidation_304_keeps_body(fault, edge_fault, get):
    key = "c0003/reval.bin"
    fault.put(key, size=SIZE, seed=31, cache_control="max-age=1")
    e = edge_fault()
    url = e.url("/" + key)
    assert get(url).xcache() == "miss"
    assert get(url).xcache() == "hit"
    wait_stale(1)
    r = get(url)
    assert r.status == 200 and r.body == harness.object_bytes(SIZE, 31), r
    assert r.xcache() == "refreshhit"
    reqs = gets(fault, key)
    assert len(reqs) == 2
    # the second origin request was conditional and answered 304, no body
    assert "if-none-match" in reqs[1]["headers"]
    assert reqs[1]["status"] == 304
    # refreshed: fresh again for another second
    assert get(url).xcache() == "hit"
    assert len(gets(fault, key)) == 2


def test_revalidation_200_replaces(fault, edge_fault, get):
    key = "c0003/replaced.bin"
    fault.put(key, size=SIZE, seed=32, cache_control="max-age=1")
    e = edge_fault()
    url = e.url("/" + key)
    assert get(url).body == harness.object_bytes(SIZE, 32)
    fault.put(key, size=SIZE, seed=33, cache_control="max-age=60")
    wait_stale(1)
    r = get(url)
    assert r.body == harness.object_bytes(SIZE, 33)
    assert r.xcache() == "miss"
    r = get(url)
    assert r.body == harness.object_bytes(SIZE, 33) and r.xcache() == "hit"


def test_stale_while_revalidate(fault, edge_fault, get):
    key = "c0003/swr.bin"
    fault.put(key, size=SIZE, seed=34, cache_control="max-age=1, stale-while-revalidate=30")
    e = edge_fault()
    url = e.url("/" + key)
    get(url)
    fault.fault(key, first_byte_delay=2.0)
    wait_stale(1)
    t0 = time.monotonic()
    r = get(url)
    took = time.monotonic() - t0
    # served at once from the stale copy, not after the 2 s origin delay
    assert r.status == 200 and r.body == harness.object_bytes(SIZE, 34)
    assert r.xcache() == "hit" and took < 1.5, (r.xcache(), took)
    # the background revalidation reaches the origin
    harness.wait_for(lambda: len(gets(fault, key)) >= 2, 10, "background revalidation")


def test_stale_if_error(fault, edge_fault, get):
    key = "c0003/sie.bin"
    fault.put(key, size=SIZE, seed=35, cache_control="max-age=1, stale-if-error=60")
    e = edge_fault()
    url = e.url("/" + key)
    get(url)
    fault.fault(key, status=503, error_code="SlowDown")
    wait_stale(1)
    r = get(url)
    assert r.status == 200 and r.body == harness.object_bytes(SIZE, 35), r
    assert len(gets(fault, key)) == 2


def test_no_stale_without_permission(fault, edge_fault, get):
    key = "c0003/nosie.bin"
    fault.put(key, size=SIZE, seed=36, cache_control="max-age=1")
    e = edge_fault()
    url = e.url("/" + key)
    get(url)
    fault.fault(key, status=500, error_code="InternalError")
    wait_stale(1)
    assert get(url).status == 502


def _neg_config(fault, ttl404, ttl403="10s"):
    return {
        "listen": ["$listen"],
        "log": {"access_log": "$access_log"},
        "origins": [{"name": "f", "endpoint": "http://127.0.0.1:%d" % fault.port,
                     "bucket": fault.BUCKET, "credentials": {"source": "anonymous"}}],
        "distributions": [{"name": "d", "origin": "f", "negative_ttl_404": ttl404,
                           "negative_ttl_403": ttl403}],
    }


def test_negative_caching_404(fault, edge, get):
    key = "c0003/missing.bin"
    e = edge(config=_neg_config(fault, "1s"))
    url = e.url("/" + key)
    r1, r2 = get(url), get(url)
    assert (r1.status, r2.status) == (404, 404)
    assert r2.xcache() == "hit"
    assert fault.key_stats(key)["GET"] == 1
    # the object appears; the cached 404 lasts its TTL only
    fault.put(key, size=100, seed=37)
    wait_stale(1)
    r3 = get(url)
    assert r3.status == 200 and r3.body == harness.object_bytes(100, 37)


def test_negative_caching_off(fault, edge, get):
    key = "c0003/missing-off.bin"
    e = edge(config=_neg_config(fault, "0"))
    url = e.url("/" + key)
    assert get(url).status == 404 and get(url).status == 404
    assert fault.key_stats(key)["GET"] == 2


def test_client_conditionals(fault, edge_fault, get):
    key = "c0003/cond.bin"
    fault.put(key, size=SIZE, seed=38, cache_control="max-age=60")
    e = edge_fault()
    url = e.url("/" + key)
    r = get(url)
    etag, lm = r.header("etag"), r.header("last-modified")
    assert etag and lm
    for hit in (False, True):  # on the miss path and on a hit
        if hit:
            assert get(url).xcache() == "hit"
        r = get(url, "-H", "If-None-Match: " + etag)
        assert r.status == 304 and r.body == b"", r
        assert r.header("etag") == etag and not r.has("content-length")
        r = get(url, "-H", "If-None-Match: \"other\"")
        assert r.status == 200 and len(r.body) == SIZE
        r = get(url, "-H", "If-Modified-Since: " + lm)
        assert r.status == 304
        r = get(url, "-H", "If-Match: \"other\"")
        assert r.status == 412, r
        r = get(url, "-H", "If-Match: " + etag)
        assert r.status == 200 and len(r.body) == SIZE
        r = get(url, "-H", "If-Unmodified-Since: Thu, 01 Jan 1998 00:00:00 GMT")
        assert r.status == 412
    # all of it answered from the one stored copy
    assert fault.key_stats(key)["GET"] == 1


def test_ttl_clamps(fault, edge, get):
    key = "c0003/clamped.bin"
    fault.put(key, size=100, seed=39, cache_control="max-age=3600")
    cfg = _neg_config(fault, "10s")
    cfg["distributions"][0].update({"max_ttl": "1s", "default_ttl": "1s"})
    e = edge(config=cfg)
    url = e.url("/" + key)
    get(url)
    assert get(url).xcache() == "hit"
    wait_stale(1)
    assert get(url).xcache() in ("refreshhit", "miss")
    assert fault.key_stats(key)["GET"] == 2
