"""
t0001: TLS listeners serve what the cleartext ones do. curl over TLS
(HTTP/1.1, checked against the test CA) gets a miss then a hit with one
origin GET; curl --http2 over TLS gets HTTP/2 through ALPN; ALPN prefers
h2, falls back to http/1.1, serves HTTP/1.1 to a client without ALPN and
refuses a client whose protocols it does not speak (RFC 7301 3.2); only
TLS 1.2 and 1.3 are accepted, narrowed further by `protocols`. The
command line's --tls-listen/--tls-cert/--tls-key make the same listener.
"""

import subprocess

import harness
from tlsutil import https_get, pki, s_client, tls_config  # noqa: F401 (pki: fixture)

KEY = "t0001/hello.bin"


def test_cli_https_miss_then_hit(s3, edge_s3, get, pki, tmp_path):
    data = harness.object_bytes(300 * 1024, 1)
    s3.put(KEY, data)
    port = harness.free_port()
    e = edge_s3(["--tls-listen", "127.0.0.1:%d" % port,
                 "--tls-cert", pki.a[0], "--tls-key", pki.a[1]])
    s3.reset()
    harness.wait_for(lambda: harness.port_open(port), 5, "the TLS port")

    r1 = https_get(pki, port, "/" + KEY, workdir=tmp_path)
    assert r1.rc == 0 and r1.status == 200, r1
    assert r1.body == data
    assert r1.xcache() == "miss"
    assert r1.info.get("http_version") == "1.1"
    assert r1.info.get("scheme", "").lower() == "https"
    r2 = https_get(pki, port, "/" + KEY, workdir=tmp_path)
    assert r2.status == 200 and r2.body == data, r2
    assert r2.xcache() == "hit"
    assert s3.gets(KEY) == 1

    # the cleartext listener next to it still serves, from the same cache
    r3 = get(e.url("/" + KEY))
    assert r3.status == 200 and r3.body == data and r3.xcache() == "hit"
    lines = e.wait_access(3)
    assert [(l["proto"], l["status"], l["cache"]) for l in lines] == [
        ("HTTP/1.1", "200", "MISS"), ("HTTP/1.1", "200", "HIT"),
        (harness.PROTO_NAME, "200", "HIT")], lines
    assert "listening on 127.0.0.1:%d (TLS)" % port in e.stderr_text()


def test_http2_over_tls(fault, edge, pki, tmp_path):
    data = harness.object_bytes(200 * 1024, 2)
    fault.put("t0001/h2.bin", data=data)
    e = edge(config=tls_config(pki, fault), env={})
    r = https_get(pki, e.port, "/t0001/h2.bin", "--http2", workdir=tmp_path)
    assert r.rc == 0 and r.status == 200, r
    assert r.info.get("http_version") == "2", r.info
    assert r.body == data
    r = https_get(pki, e.port, "/t0001/h2.bin", "--http2", workdir=tmp_path)
    assert r.info.get("http_version") == "2" and r.xcache() == "hit"
    assert r.body == data
    assert fault.key_stats("t0001/h2.bin")["GET"] == 1
    lines = e.wait_access(2)
    assert [l["proto"] for l in lines] == ["HTTP/2.0", "HTTP/2.0"], lines


def test_alpn_choices(fault, edge, pki, tmp_path):
    fault.put("t0001/alpn.bin", size=1000, seed=3)
    e = edge(config=tls_config(pki, fault), env={})
    s = s_client(e.port, "-alpn", "http/1.1", servername="a.test")
    assert s.ok and s.alpn == "http/1.1", s
    s = s_client(e.port, "-alpn", "h2,http/1.1", servername="a.test")
    assert s.ok and s.alpn == "h2", s
    # the server's preference wins over the client's order
    s = s_client(e.port, "-alpn", "http/1.1,h2", servername="a.test")
    assert s.ok and s.alpn == "h2", s
    # no ALPN at all: HTTP/1.1
    s = s_client(e.port, servername="a.test")
    assert s.ok and s.alpn is None, s
    r = https_get(pki, e.port, "/t0001/alpn.bin", "--no-alpn",
                  workdir=tmp_path)
    assert r.status == 200 and r.info.get("http_version") == "1.1", r
    assert r.body == harness.object_bytes(1000, 3)
    # nothing in common: no_application_protocol alert
    s = s_client(e.port, "-alpn", "spdy/3.1,h3", servername="a.test")
    assert not s.ok, s
    assert "no application protocol" in s.text(), s
    assert "TLS handshake failed" in e.stderr_text()
    # and the listener goes on serving
    r = https_get(pki, e.port, "/t0001/alpn.bin", "--http2", workdir=tmp_path)
    assert r.status == 200 and r.info.get("http_version") == "2", r


def test_alpn_http11_only(fault, edge, pki, tmp_path):
    fault.put("t0001/alpn11.bin", size=5000, seed=4)
    e = edge(config=tls_config(pki, fault, tls_extra="alpn: [http/1.1]"),
             env={})
    s = s_client(e.port, "-alpn", "h2,http/1.1", servername="a.test")
    assert s.ok and s.alpn == "http/1.1", s
    r = https_get(pki, e.port, "/t0001/alpn11.bin", "--http2",
                  workdir=tmp_path)
    assert r.status == 200 and r.info.get("http_version") == "1.1", r
    assert r.body == harness.object_bytes(5000, 4)
    s = s_client(e.port, "-alpn", "h2", servername="a.test")
    assert not s.ok and "no application protocol" in s.text(), s


def test_old_versions_refused(fault, edge, pki):
    e = edge(config=tls_config(pki, fault), env={})
    # SECLEVEL=0 lets the client offer TLS 1.0/1.1 at all: the refusal
    # must come from the server, as a protocol_version alert
    for flag in ("-tls1", "-tls1_1"):
        s = s_client(e.port, flag, "-cipher", "DEFAULT@SECLEVEL=0",
                     servername="a.test")
        assert not s.ok, s
        assert "alert protocol version" in s.text(), s
    for flag, version in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        s = s_client(e.port, flag, servername="a.test")
        assert s.ok and s.version == version, s
    harness.wait_for(lambda: "unsupported protocol" in e.stderr_text(), 5,
                     "the refusals in the debug log")


def test_protocols_narrowed(fault, edge, pki):
    e13 = edge(config=tls_config(pki, fault, tls_extra="protocols: [TLSv1.3]"),
               env={})
    e12 = edge(config=tls_config(pki, fault, tls_extra="protocols: [TLSv1.2]\n"
                                 "ciphers: ECDHE-ECDSA-AES256-GCM-SHA384"),
               env={})
    s = s_client(e13.port, "-tls1_2", servername="a.test")
    assert not s.ok and "alert protocol version" in s.text(), s
    s = s_client(e13.port, servername="a.test")
    assert s.ok and s.version == "TLSv1.3", s
    s = s_client(e12.port, "-tls1_3", servername="a.test")
    assert not s.ok, s
    s = s_client(e12.port, servername="a.test")
    assert s.ok and s.version == "TLSv1.2", s
    assert s.cipher == "ECDHE-ECDSA-AES256-GCM-SHA384", s
    # a cipher the listener does not allow
    s = s_client(e12.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256",
                 servername="a.test")
    assert not s.ok and "handshake failure" in s.text(), s


def test_cli_tls_flags_checked(s3edge_bin, pki):
    def run(*args):
        r = subprocess.run([str(s3edge_bin), "--origin", "http://127.0.0.1:1/b"]
                           + [str(a) for a in args] + ["-t"],
                           capture_output=True, timeout=20,
                           stdin=subprocess.DEVNULL)
        return r.returncode, (r.stdout + r.stderr).decode(errors="replace")

    rc, out = run("--tls-listen", "127.0.0.1:1", "--tls-cert", pki.a[0])
    assert rc == 1 and "--tls-listen needs --tls-cert FILE --tls-key FILE" in out, out
    rc, out = run("--tls-listen", "127.0.0.1:1")
    assert rc == 1 and "in pairs" in out, out
    rc, out = run("--tls-listen", "127.0.0.1:1", "--tls-cert", pki.a[0],
                  "--tls-key", pki.b[1])
    assert rc == 1, out
    assert "listen[0].tls.certificates[0].key: the key in %s does not match " \
           "the certificate in %s" % (pki.b[1], pki.a[0]) in out, out
    rc, out = run("--tls-listen", "127.0.0.1:1", "--tls-cert", pki.a[0],
                  "--tls-key", pki.a[1], "--tls-cert", pki.b[0], "--tls-key",
                  pki.b[1])
    assert rc == 0 and "is valid" in out, out
