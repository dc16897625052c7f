"""
b0003: the origin's errors become the edge's: 5xx (500 InternalError, 503
SlowDown) and 4xx other than 403/404 are a 502; 403 from the origin is a
403. Bodies are short text of ours, nothing is cached: once the origin
recovers, the next request is a miss that returns the object.
"""

import pytest

import harness

KEY = "b0003/flaky.bin"


@pytest.mark.parametrize("status,code,want", [
    (500, "InternalError", 502),
    (503, "SlowDown", 502),
    (400, "InvalidArgument", 502),
    (403, "AccessDenied", 403),
])
def test_origin_error_mapping(fault, edge_fault, get, status, code, want):
    fault.put(KEY, size=5000, seed=9)
    fault.fault(KEY, status=status, error_code=code)
    e = edge_fault()
    r = get(e.url("/" + KEY), timeout=30)
    assert r.status == want, r
    assert len(r.body) < 512 and b"<Error>" not in r.body, r.body
    assert not r.has("x-amz-request-id")
    assert fault.key_stats(KEY)["GET"] >= 1

    fault.fault(KEY, clear=True)
    r = get(e.url("/" + KEY))
    if want == 403:
        # S3's 403 is cached for a short time, like CloudFront's error
        # caching (c0003 covers it): the origin is not asked again yet
        assert r.status == 403 and r.xcache() == "hit", r
        return
    assert r.status == 200 and r.body == harness.object_bytes(5000, 9)
    assert r.xcache() == "miss"
