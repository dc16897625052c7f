"""
a0008: freshness. With --default-ttl 2s an object S3 sent without
Cache-Control is a hit at first and a miss again once it is 2 s old;
Cache-Control: max-age=2 from S3 does the same under a long default TTL;
Age counts up on hits. An object's age counts from the origin's Date,
which has whole seconds (RFC 9111 4.2.3), so it may expire up to a second
early: the lower bound is TTL - 1 s.
"""

import time

import harness


def wait_for_miss(get, url, t0, timeout=10.0):
    """Request until the edge goes back to the origin. Returns (hits seen,
    seconds from t0 to the miss)."""
    hits = 0
    deadline = t0 + timeout
    for _ in range(1000):
        r = get(url)
        assert r.status == 200, r
        if r.xcache() != "hit":
            return hits, time.monotonic() - t0
        hits += 1
        assert time.monotonic() < deadline, \
            "still a hit after %.1fs (%d hits)" % (timeout, hits)
        time.sleep(0.1)
    raise AssertionError("unreachable")


def test_default_ttl_expires(s3, edge_s3, get):
    key = "a0008/ttl.txt"
    s3.put(key, b"short-lived")
    e = edge_s3(["--default-ttl", "2s"])
    url = e.url("/" + key)
    s3.reset()
    t0 = time.monotonic()
    r = get(url)
    assert r.xcache() == "miss"
    hits, took = wait_for_miss(get, url, t0)
    assert hits >= 1, "not cached at all"
    assert 1.0 <= took, took
    assert s3.gets(key) == 2


def test_max_age_from_origin(s3, edge_s3, get):
    key = "a0008/maxage.txt"
    s3.put(key, b"two seconds", cache_control="max-age=2")
    e = edge_s3(["--default-ttl", "1h"])
    url = e.url("/" + key)
    s3.reset()
    t0 = time.monotonic()
    assert get(url).xcache() == "miss"
    hits, took = wait_for_miss(get, url, t0)
    assert hits >= 1 and took >= 1.0, (hits, took)
    assert s3.gets(key) == 2


def test_age_counts_up(s3, edge_s3, get):
    key = "a0008/age.txt"
    s3.put(key, b"aging")
    e = edge_s3()
    url = e.url("/" + key)
    assert get(url).xcache() == "miss"
    r = harness.wait_for(
        lambda: (lambda x: x if int(x.header("age", "0")) >= 1 else None)(
            get(url)), 5.0, "Age to reach 1", interval=0.2)
    assert r.xcache() == "hit" and r.body == b"aging"
