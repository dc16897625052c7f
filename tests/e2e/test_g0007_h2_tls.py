"""
g0007: HTTP/2 over TLS (ALPN h2), where DATA payloads are copied next to
their frame headers instead of referenced. nghttp -nv negotiates h2 and
gets our SETTINGS; a 50 MiB object arrives byte-identical with curl;
h2load over TLS gets only 2xx; the TLS records carrying DATA are large
(not a 9-byte record per frame header), seen from the client's side.
"""

import re
import subprocess

import harness
from tlsutil import https_get, pki, tls_config  # noqa: F401 (pki: fixture)


def run(argv, timeout=60):
    r = subprocess.run(argv, capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace"), \
        r.stderr.decode("utf-8", "replace")


def test_nghttp_over_tls(fault, edge, pki):
    data = harness.object_bytes(300000, 71)
    fault.put("g0007/a.bin", data=data)
    e = edge(config=tls_config(pki, fault, log_level="info"), env={})
    rc, out, err = run(["nghttp", "-nv", "-t", "20",
                        "https://127.0.0.1:%d/g0007/a.bin" % e.port])
    assert rc == 0, (out, err)
    assert "The negotiated protocol: h2" in out, out
    assert "[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):128]" in out
    m = re.search(r"recv \(stream_id=(\d+)\) :status: 200", out)
    assert m, out
    got = sum(int(n) for n in re.findall(
        r"recv DATA frame <length=(\d+), flags=0x0[01], stream_id=%s>"
        % m.group(1), out))
    assert got == len(data)
    assert "RST_STREAM" not in out
    lines = e.wait_access(1)
    assert lines[0]["proto"] == "HTTP/2.0" and lines[0]["bytes"] == \
        str(len(data))


def test_large_object_over_tls_h2(fault, edge, pki, big_object, tmp_path):
    path, data, digest = big_object
    fault.put("g0007/big.bin", file=path)
    cfg = tls_config(pki, fault, log_level="info")
    cfg = cfg.replace("log:\n", "cache:\n  max_object_size: 128MiB\n"
                      "  memory_size: 256MiB\nlog:\n", 1)
    e = edge(config=cfg, env={})
    for want in ("miss", "hit"):
        r = https_get(pki, e.port, "/g0007/big.bin", "--http2",
                      workdir=tmp_path, timeout=60, keep_body_file=True)
        assert r.rc == 0 and r.status == 200, r
        assert r.info.get("http_version") == "2"
        assert r.xcache() == want
        assert harness.sha256_file(r.body_path) == digest


def test_h2load_over_tls(fault, edge, pki):
    fault.put("g0007/s.bin", data=harness.object_bytes(2048, 72))
    e = edge(config=tls_config(pki, fault, log_level="info"), env={})
    url = "https://127.0.0.1:%d/g0007/s.bin" % e.port
    rc, out, err = run(["h2load", "-n", "2000", "-c", "8", "-m", "16", url],
                       timeout=120)
    assert rc == 0, (out, err)
    assert "Application protocol: h2" in out, out
    assert "status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx" in out, out


def test_tls_records_stay_large(fault, edge, pki, tmp_path):
    """Read the raw TLS stream of an h2 download: with frame headers
    written as records of their own, half the records would be tiny."""
    import socket
    import ssl
    import struct

    data = harness.object_bytes(2 * 1024 * 1024, 73)
    fault.put("g0007/r.bin", data=data)
    e = edge(config=tls_config(pki, fault, log_level="info"), env={})
    # a hit: the object is in 1 MiB chunks (a miss publishes what each
    # origin read brings)
    r = https_get(pki, e.port, "/g0007/r.bin", "--http2", workdir=tmp_path)
    assert r.status == 200 and r.body == data
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", e.port), timeout=10)
    # count records on the wire under the TLS layer with a memory BIO
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, outg, server_hostname="a.test")
    sizes = []
    pending = b""

    def pump_out():
        d = outg.read()
        if d:
            raw.sendall(d)

    def pump_in():
        nonlocal pending
        d = raw.recv(1 << 20)
        if not d:
            raise AssertionError("closed")
        pending += d
        for _ in range(100000):
            if len(pending) < 5:
                break
            n = struct.unpack(">H", pending[3:5])[0]
            if len(pending) < 5 + n:
                break
            if pending[0] == 23:  # application data
                sizes.append(n)
            pending = pending[5 + n:]
        inc.write(d)

    for _ in range(100):
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            pump_out()
            pump_in()
    pump_out()
    assert tls.selected_alpn_protocol() == "h2"
    import hpack
    from h2client import (END_HEADERS, END_STREAM, HEADERS, PREFACE,
                          SETTINGS_INITIAL_WINDOW_SIZE, frame,
                          settings_frame)
    hb = hpack.Encoder().encode([(":method", "GET"), (":scheme", "https"),
                                 (":authority", "a.test"),
                                 (":path", "/g0007/r.bin")])
    tls.write(PREFACE + settings_frame([(SETTINGS_INITIAL_WINDOW_SIZE,
                                         1 << 30)]) +
              frame(8, 0, 0, struct.pack(">I", 1 << 30)) +
              frame(HEADERS, END_STREAM | END_HEADERS, 1, hb))
    pump_out()
    got = 0
    for _ in range(100000):
        if got >= len(data):
            break
        pump_in()
        for _ in range(100000):
            try:
                got += len(tls.read(1 << 20))
            except ssl.SSLWantReadError:
                break
        pump_out()
    raw.close()
    assert got >= len(data)
    # 16384 bytes of plaintext (one DATA frame with its header) + 17 of
    # AEAD tag and content type
    big = [n for n in sizes if n >= 16384]
    small = [n for n in sizes if n < 100]
    # the body went out in full-size records; a handful of small ones
    # (SETTINGS, HEADERS, tickets) is all there is besides
    import collections
    hist = str(collections.Counter(sizes).most_common(12))
    assert sum(big) >= len(data) * 0.9, hist
    assert len(small) < 10, hist
