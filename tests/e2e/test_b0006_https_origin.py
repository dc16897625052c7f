"""
b0006: an HTTPS origin. A TLS-terminating relay (Python ssl, a test CA and
a certificate for 127.0.0.1 made with the openssl CLI) sits in front of the
SigV4 gate. s3edge must verify the certificate by default: with the CA file
the object arrives (miss then hit, one GET at the origin); without it the
handshake fails and the client gets 502 while the origin sees nothing;
--origin-insecure turns verification off.
"""

import socket
import ssl
import subprocess
import threading

import pytest

import harness

KEY = "b0006/over-tls.bin"
SIZE = 300000


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=s3edge e2e test CA", "-keyout", "ca.key",
             "-out", "ca.pem", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "leaf.key", "-out", "leaf.csr", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey",
             "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf",
             "-out", "leaf.pem", cwd=d)
    return d


class TlsRelay:
    """TLS on a free port, relayed byte for byte to 127.0.0.1:upstream."""

    def __init__(self, pki, upstream):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(pki / "leaf.pem"), str(pki / "leaf.key"))
        self.upstream = upstream
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.ls.settimeout(0.2)
        self.port = self.ls.getsockname()[1]
        self.handshakes = 0
        self.stopping = False
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _pipe(self, a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def _serve(self, c):
        try:
            c.settimeout(10)
            t = self.ctx.wrap_socket(c, server_side=True)
            t.settimeout(30)
        except (OSError, ssl.SSLError):
            c.close()
            return
        self.handshakes += 1
        u = socket.create_connection(("127.0.0.1", self.upstream), timeout=10)
        u.settimeout(30)
        threading.Thread(target=self._pipe, args=(u, t), daemon=True).start()
        self._pipe(t, u)

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def close(self):
        self.stopping = True
        self.t.join(timeout=5)
        self.ls.close()


@pytest.fixture
def relay(pki, s3):
    r = TlsRelay(pki, s3.port)
    yield r
    r.close()


def _edge(edge, s3, s3edge_creds, relay, extra):
    url = "https://127.0.0.1:%d/%s" % (relay.port, s3.BUCKET)
    return edge(["--origin", url, "--region", s3.REGION] + extra,
                env=dict(s3edge_creds))


def test_verified_https_origin(edge, s3, s3edge_creds, relay, pki, get):
    data = harness.object_bytes(SIZE, 606)
    s3.put(KEY, data)
    s3.reset()
    e = _edge(edge, s3, s3edge_creds, relay, ["--origin-ca-file", str(pki / "ca.pem")])
    r1 = get(e.url("/" + KEY))
    assert r1.status == 200 and r1.body == data, r1
    assert r1.xcache() == "miss"
    r2 = get(e.url("/" + KEY))
    assert r2.status == 200 and r2.body == data and r2.xcache() == "hit"
    assert s3.gets(KEY) == 1
    assert relay.handshakes >= 1


def test_unverifiable_origin_is_refused(edge, s3, s3edge_creds, relay, get):
    s3.put(KEY, b"secret bytes")
    s3.reset()
    # no CA file: the test CA is not in the system store
    e = _edge(edge, s3, s3edge_creds, relay, [])
    r = get(e.url("/" + KEY))
    assert r.status == 502, r
    assert b"secret" not in r.body
    assert s3.gets(KEY) == 0
    assert "TLS" in e.stderr_text() or "certificate" in e.stderr_text()


def test_insecure_flag_skips_verification(edge, s3, s3edge_creds, relay, get):
    s3.put(KEY, b"insecure but working")
    e = _edge(edge, s3, s3edge_creds, relay, ["--origin-insecure"])
    r = get(e.url("/" + KEY))
    assert r.status == 200 and r.body == b"insecure but working", r
