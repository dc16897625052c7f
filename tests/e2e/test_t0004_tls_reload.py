"""
t0004: SIGHUP reloads certificates and keys. New connections get the new
certificate at once, while a download that started on the old one goes
on to its last byte over the old connection (which keeps the old
certificate). A reload with a bad file (a key that does not match, a
missing certificate) is refused with the file, line and key in the
error log, and the listener keeps serving the last good certificate.
"""

import hashlib
import shutil
import signal
import socket
import ssl
import time

import harness
from tlsutil import https_get, pki, s_client, tls_config  # noqa: F401 (pki: fixture)

KEY = "t0004/big.bin"


def install(src, cert, key):
    """Copy a (cert, key) pair over the files the edge serves."""
    shutil.copyfile(src[0], cert)
    shutil.copyfile(src[1], key)


def fingerprint_of(pem_text):
    der = ssl.PEM_cert_to_DER_cert(pem_text)
    return hashlib.sha256(der).hexdigest()


def leaf_fingerprint(path):
    text = path.read_text()
    end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return fingerprint_of(text[:end] + "\n")


class SlowDownload:
    """One HTTPS GET read at the test's pace, over Python's ssl."""

    def __init__(self, pki, port, path, name):
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        ctx.set_alpn_protocols(["http/1.1"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s = ctx.wrap_socket(raw, server_hostname=name)
        self.cert_fp = hashlib.sha256(self.s.getpeercert(binary_form=True)).hexdigest()
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                        % (path, name)).encode())
        self.buf = bytearray()  # appending to bytes would copy it all each time
        self.head = None

    def read(self, at_least, deadline):
        while len(self.buf) < at_least:
            assert time.monotonic() < deadline, "download stalled"
            self.s.settimeout(max(0.05, deadline - time.monotonic()))
            b = self.s.recv(1 << 16)
            if not b:
                break
            self.buf += b
            if self.head is None and b"\r\n\r\n" in self.buf:
                i = self.buf.index(b"\r\n\r\n")
                self.head = bytes(self.buf[:i])
                del self.buf[:i + 4]
        return bytes(self.buf)

    def close(self):
        self.s.close()


def reloads(e):
    return e.stderr_text().count("certificates and keys reloaded")


def hup_and_wait(e, what, count_before=None):
    n = reloads(e) if count_before is None else count_before
    e.proc.send_signal(signal.SIGHUP)
    if what == "reloaded":
        harness.wait_for(lambda: reloads(e) > n, 5, "the reload")
    else:
        harness.wait_for(lambda: what in e.stderr_text(), 5, repr(what))


def test_reload_new_cert_old_download_completes(fault, edge, pki, tmp_path, big_object):
    path, data, digest = big_object
    fault.put(KEY, file=path)
    old = pki.leaf("t0004-old", "reload.test")
    new = pki.leaf("t0004-new", "reload.test")
    cert, key = tmp_path / "served.pem", tmp_path / "served.key"
    install(old, cert, key)
    e = edge(config=tls_config(pki, fault, certs=[(cert, key, None)]), env={})
    old_fp, new_fp = leaf_fingerprint(old[0]), leaf_fingerprint(new[0])
    assert old_fp != new_fp

    deadline = time.monotonic() + 60
    dl = SlowDownload(pki, e.port, "/" + KEY, "reload.test")
    assert dl.cert_fp == old_fp
    dl.read(1 << 20, deadline)
    assert dl.head.startswith(b"HTTP/1.1 200"), dl.head

    install(new, cert, key)
    hup_and_wait(e, "reloaded")
    s = s_client(e.port, servername="reload.test")
    assert s.ok and fingerprint_of(s.cert_pem) == new_fp, s
    r = https_get(pki, e.port, "/" + KEY, name="reload.test", workdir=tmp_path,
                  keep_body_file=True)
    assert r.status == 200 and harness.sha256_file(r.body_path) == digest, r

    # the first download, still on the old connection and certificate
    body = dl.read(len(data), deadline)
    dl.close()
    assert len(body) == len(data)
    assert hashlib.sha256(body).hexdigest() == digest
    assert dl.cert_fp == old_fp


def test_failed_reload_keeps_serving(fault, edge, pki, tmp_path):
    fault.put("t0004/small.bin", size=10000, seed=7)
    good = pki.leaf("t0004-good", "reload.test")
    other = pki.leaf("t0004-other", "reload.test")
    cert, key = tmp_path / "served.pem", tmp_path / "served.key"
    install(good, cert, key)
    e = edge(config=tls_config(pki, fault, certs=[(cert, key, None)]), env={})
    good_fp = leaf_fingerprint(good[0])
    keep_open = SlowDownload(pki, e.port, "/t0004/small.bin", "reload.test")

    # the certificate changes, the key does not: refused
    shutil.copyfile(other[0], cert)
    hup_and_wait(e, "does not match")
    err = e.stderr_text()
    line = [l for l in err.splitlines() if "does not match" in l][-1]
    assert "SIGHUP: listen %s: %s:" % (e.listen, e.config_path) in line, line
    assert "listen[0].tls.certificates[0].key: the key in %s does not match the " \
           "certificate in %s; keeping the previous certificates and keys" % (key, cert) \
        in line, line
    assert reloads(e) == 0
    s = s_client(e.port, servername="reload.test")
    assert s.ok and fingerprint_of(s.cert_pem) == good_fp, s
    r = https_get(pki, e.port, "/t0004/small.bin", name="reload.test", workdir=tmp_path)
    assert r.status == 200 and r.body == harness.object_bytes(10000, 7), r

    # a missing file: refused too
    cert.unlink()
    hup_and_wait(e, "cannot read %s: No such file or directory" % cert)
    s = s_client(e.port, servername="reload.test")
    assert s.ok and fingerprint_of(s.cert_pem) == good_fp, s

    # the files made right: taken
    install(other, cert, key)
    hup_and_wait(e, "reloaded", count_before=0)
    s = s_client(e.port, servername="reload.test")
    assert s.ok and fingerprint_of(s.cert_pem) == leaf_fingerprint(other[0]), s

    # the connection opened before all this was served all along
    body = keep_open.read(10000, time.monotonic() + 10)
    keep_open.close()
    assert keep_open.head.startswith(b"HTTP/1.1 200") and body == harness.object_bytes(10000, 7)
