"""
g0002: real HTTP/2 clients over h2c. nghttp -nv shows our SETTINGS
(MAX_CONCURRENT_STREAMS 128, a 16 MiB initial window, the header list
limit) and a clean exchange; h2load with many connections and streams
gets only 2xx; one connection carries many streams at once, beyond
MAX_CONCURRENT_STREAMS (the client queues), each body intact; a body of
several MiB on one stream is not held back by our receive windows.
"""

import re
import subprocess

import harness
from h2client import H2Client, SETTINGS_MAX_CONCURRENT_STREAMS

KEY = "g0002/obj.bin"


def run(argv, timeout=60):
    r = subprocess.run(argv, capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace"), \
        r.stderr.decode("utf-8", "replace")


def h2load_counts(text):
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, "
                  r"(\d+) succeeded, (\d+) failed, (\d+) errored", text)
    s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, "
                  r"(\d+) 5xx", text)
    assert m and s, text
    return [int(x) for x in m.groups()], [int(x) for x in s.groups()]


def test_nghttp_verbose(fault, edge_fault):
    data = harness.object_bytes(100000, 21)
    fault.put(KEY, data=data)
    e = edge_fault()
    rc, out, err = run(["nghttp", "-nv", "-t", "20", e.url("/" + KEY)])
    assert rc == 0, (out, err)
    assert "recv SETTINGS frame" in out
    assert "[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):128]" in out, out
    assert "[SETTINGS_INITIAL_WINDOW_SIZE(0x04):16777216]" in out, out
    assert "[SETTINGS_MAX_HEADER_LIST_SIZE(0x06):32768]" in out, out
    m = re.search(r"recv \(stream_id=(\d+)\) :status: 200", out)
    assert m, out
    sid = m.group(1)
    assert "recv (stream_id=%s) x-cache: Miss from s3edge" % sid in out
    assert "recv (stream_id=%s) content-length: 100000" % sid in out
    # the whole body arrived and the stream ended normally
    got = sum(int(n) for n in re.findall(
        r"recv DATA frame <length=(\d+), flags=0x0[01], stream_id=%s>" % sid,
        out))
    assert got == len(data), out
    assert re.search(r"recv DATA frame <length=\d+, flags=0x01, "
                     r"stream_id=%s>" % sid, out), out
    assert "RST_STREAM" not in out
    # the connection window was opened at once (WINDOW_UPDATE on stream 0)
    assert re.search(r"recv WINDOW_UPDATE frame <length=4, flags=0x00, "
                     r"stream_id=0>", out), out


def test_h2load_many_connections(fault, edge_fault):
    fault.put(KEY, data=harness.object_bytes(4096, 22))
    e = edge_fault()
    with H2Client(e.port) as c:
        assert c.get("/" + KEY).status == 200  # cache it
    rc, out, err = run(["h2load", "-n", "2000", "-c", "10", "-m", "10",
                        e.url("/" + KEY)], timeout=120)
    assert rc == 0, (out, err)
    reqs, codes = h2load_counts(out)
    assert reqs == [2000, 2000, 2000, 2000, 0, 0], out
    assert codes == [2000, 0, 0, 0], out
    assert fault.key_stats(KEY)["GET"] == 1
    e.check_alive()


def test_many_streams_one_connection(fault, edge_fault):
    objs = {}
    for i in range(40):
        d = harness.object_bytes(20000 + i * 997, 100 + i)
        fault.put("g0002/m%d.bin" % i, data=d)
        objs["/g0002/m%d.bin" % i] = d
    e = edge_fault()
    with H2Client(e.port, timeout=30) as c:
        c.wait(lambda: SETTINGS_MAX_CONCURRENT_STREAMS in c.remote_settings,
               what="the server's SETTINGS")
        assert c.remote_settings[SETTINGS_MAX_CONCURRENT_STREAMS] == 128
        # 128 streams at once, three per object (misses, coalesced fills,
        # hits), all in flight together
        sids = {}
        for rnd in range(3):
            for p in objs:
                sids[c.request(p)] = p
        sids.update({c.request(p): p for p in list(objs)[:8]})
        assert len(sids) == 128
        c.wait(lambda: all(c.streams[s].done() for s in sids), 30,
               "128 streams")
        for s, p in sids.items():
            st = c.streams[s]
            assert st.status == 200 and st.ended and st.reset is None, s
            assert bytes(st.data) == objs[p], p
        # concurrent misses may each reach the origin (no coalescing
        # yet), but never more than once per request, and then it is cached
        for i in range(40):
            assert 1 <= fault.key_stats("g0002/m%d.bin" % i)["GET"] <= 4
        st = c.get("/g0002/m7.bin")
        assert st.header("x-cache") == "Hit from s3edge"
        assert bytes(st.data) == objs["/g0002/m7.bin"]


def test_h2load_streams_beyond_the_limit(fault, edge_fault):
    """-m 200 > 128: h2load must respect our limit; nothing is refused."""
    fault.put(KEY, data=harness.object_bytes(1024, 23))
    e = edge_fault()
    rc, out, err = run(["h2load", "-n", "1000", "-c", "1", "-m", "200",
                        e.url("/" + KEY)], timeout=120)
    assert rc == 0, (out, err)
    reqs, codes = h2load_counts(out)
    assert reqs[3] == 1000 and codes[0] == 1000, out


def test_large_body_one_stream_with_big_client_window(fault, edge_fault):
    data = harness.object_bytes(8 * 1024 * 1024, 24)
    fault.put("g0002/big.bin", data=data)
    e = edge_fault()
    rc, out, err = run(["nghttp", "-n", "-s", "-w", "24", "-W", "24",
                        e.url("/g0002/big.bin")], timeout=60)
    assert rc == 0, (out, err)
    with H2Client(e.port, timeout=30) as c:
        st = c.get("/g0002/big.bin", timeout=30)
        assert st.status == 200 and st.header("x-cache") == "Hit from s3edge"
        assert harness.sha256(bytes(st.data)) == harness.sha256(data)
