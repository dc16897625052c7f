"""
b0004: the origin fails in the middle of a body (connection reset, or a
body shorter than its Content-Length). The client must see a truncated
transfer, never a short body presented as complete, and the torn object
must not be cached: the next request is a miss that returns it whole.
"""

import pytest

import harness

KEY = "b0004/torn.bin"
SIZE = 300000


@pytest.mark.parametrize("how", ["reset_after", "short_body"])
def test_truncated_origin_body(fault, edge_fault, get, how):
    fault.put(KEY, size=SIZE, seed=4)
    data = harness.object_bytes(SIZE, 4)
    fault.fault(KEY, times=1, **{how: 100000})
    e = edge_fault(["--idle-timeout", "2s"])

    r = get(e.url("/" + KEY), timeout=20)
    if r.status == 200:
        # headers went out: the transfer must end short, as an error
        assert r.rc in harness.CURL_TRUNCATED, "curl saw a complete transfer: %r" % r
        assert len(r.body) < SIZE
        assert r.body == data[:len(r.body)]
    elif r.status is None:
        # HTTP/2: the stream was reset before curl took its HEADERS
        # (nghttp2 sends frames when the session writes): an error too
        assert harness.E2E_PROTO in ("h2c", "h2") and r.rc in harness.CURL_TRUNCATED, r
    else:
        assert r.status in (502, 504), r

    r = get(e.url("/" + KEY))
    assert r.status == 200 and r.rc == 0
    assert r.body == data
    assert r.xcache() == "miss"
