"""
t0006: TLS settings in the config. `s3edge -t` accepts a good TLS
listener and refuses bad ones with "FILE:LINE: key.path: what was
expected" (a key that does not match its certificate, a missing file, a
TLS version below 1.2, a ticket key file of the wrong size, an unknown
ALPN protocol, an unknown TLS 1.3 suite); s3edge refuses to start on
them the same way. `ktls: on` serves either way and says once whether
the kernel took it.
"""

import os
import subprocess

import pytest

import harness
from tlsutil import https_get, pki, tls_config  # noqa: F401 (pki: fixture)


def config_text(pki, key=None, tls_lines=()):
    key = key or pki.a[1]
    lines = ["listen:",                                   # 1
             "  - 127.0.0.1:8080",                        # 2
             "  - address: 127.0.0.1:8443",               # 3
             "    tls:",                                  # 4
             "      certificates:",                       # 5
             "        - cert: \"%s\"" % pki.a[0],         # 6
             "          key: \"%s\"" % key,               # 7
             "          ocsp: \"%s\"" % pki.a_ocsp]       # 8
    lines += ["      " + l for l in tls_lines]            # 9...
    lines += ["origins:", "  - name: o", "    endpoint: http://127.0.0.1:9000",
              "    bucket: b", "distributions:", "  - name: d", "    origin: o"]
    return "\n".join(lines) + "\n"


def check(s3edge_bin, path):
    r = subprocess.run([str(s3edge_bin), "-t", "-c", str(path)], capture_output=True,
                       timeout=20, stdin=subprocess.DEVNULL)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace").strip()


def test_good_tls_config(s3edge_bin, pki, tmp_path):
    keys = tmp_path / "tk"
    keys.write_bytes(os.urandom(240))
    p = tmp_path / "good.yaml"
    p.write_text(config_text(pki, tls_lines=[
        "protocols: [TLSv1.2, TLSv1.3]", "alpn: [h2, http/1.1]",
        "ticket_key_file: \"%s\"" % keys, "ticket_key_rotation: 1h",
        "handshake_timeout: 5s", "session_cache: 1000", "ktls: auto"]))
    rc, out = check(s3edge_bin, p)
    assert rc == 0 and "is valid" in out, out


BAD = [
    ("key-mismatch", dict(key="b"), 7,
     "listen[1].tls.certificates[0].key: the key in {b_key} does not match the "
     "certificate in {a_cert}"),
    ("old-protocol", dict(tls_lines=["protocols: [TLSv1.1]"]), 9,
     "listen[1].tls.protocols[0]: expected TLSv1.2 or TLSv1.3"),
    ("ticket-key-size", dict(tls_lines=["ticket_key_file: \"{tk48}\""]), 9,
     "listen[1].tls.ticket_key_file: expected 80 bytes per key in {tk48} (made with "
     "openssl rand 80), found 48 bytes"),
    ("alpn", dict(tls_lines=["alpn: [h2, spdy/3]"]), 9,
     "listen[1].tls.alpn[1]: expected h2 or http/1.1"),
    ("suite", dict(tls_lines=["ciphersuites: TLS_AES_128_GCM_SHA256:TLS_NULL"]), 9,
     "listen[1].tls.ciphersuites: expected TLS 1.3 suites separated by ':'"),
    ("missing-cert", dict(key="missing"), 7,
     "listen[1].tls.certificates[0].key: cannot read {missing}: No such file or "
     "directory"),
]


@pytest.mark.parametrize("name,kw,line,msg", BAD, ids=[b[0] for b in BAD])
def test_bad_tls_config(s3edge_bin, pki, tmp_path, name, kw, line, msg):
    tk48 = tmp_path / "tk48"
    tk48.write_bytes(os.urandom(48))
    subst = dict(b_key=pki.b[1], a_cert=pki.a[0], tk48=tk48,
                 missing=tmp_path / "missing.key")
    kw = dict(kw)
    if kw.get("key") == "b":
        kw["key"] = pki.b[1]
    elif kw.get("key") == "missing":
        kw["key"] = str(tmp_path / "missing.key")
    kw["tls_lines"] = [l.format(**subst) for l in kw.get("tls_lines", ())]
    p = tmp_path / ("%s.yaml" % name)
    p.write_text(config_text(pki, **kw))
    rc, out = check(s3edge_bin, p)
    assert rc == 1, out
    assert out.startswith("%s:%d: %s" % (p, line, msg.format(**subst))), out
    # starting for real fails the same way, before listening
    r = subprocess.run([str(s3edge_bin), "-c", str(p)], capture_output=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert "%s:%d: %s" % (p, line, msg.format(**subst)) in r.stderr.decode(), r.stderr


def test_ktls_on_serves(fault, edge, pki, tmp_path, big_object):
    path, data, digest = big_object
    fault.put("t0006/big.bin", file=path)
    e = edge(config=tls_config(pki, fault, tls_extra="ktls: on"), env={})
    for version in ("--tlsv1.3", "--tlsv1.2"):
        r = https_get(pki, e.port, "/t0006/big.bin", version, "--tls-max",
                      version[6:], workdir=tmp_path, keep_body_file=True)
        assert r.status == 200 and harness.sha256_file(r.body_path) == digest, r
    text = harness.wait_for(lambda: (lambda t: t if "kernel TLS" in t else None)(
        e.stderr_text()), 5, "the kernel TLS verdict")
    verdicts = [l for l in text.splitlines() if "kernel TLS" in l]
    assert len(verdicts) == 1, verdicts
    assert ("kernel TLS in use for sending" in verdicts[0] or
            "kernel TLS was asked for, but the kernel or the cipher did not take it"
            in verdicts[0]), verdicts
