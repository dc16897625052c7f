"""
t0002: SNI picks the certificate (RFC 6066 3). Each name gets the
certificate carrying it: exact (a.test), wildcard for one label
(x.b.test under *.b.test, but not b.test nor y.x.b.test, RFC 6125
6.4.3), whatever the case; no SNI and unknown names get the first
certificate listed. curl checks the chosen certificate against the test
CA and the name. OCSP stapling (RFC 6066 8): a client asking for status
gets the response from the file for a.test, none for a certificate
without one; a client not asking gets none.
"""

import re

import harness
import tlsutil
from tlsutil import https_get, pki, s_client, tls_config  # noqa: F401 (pki: fixture)


def test_each_name_gets_its_certificate(fault, edge, pki, tmp_path):
    fault.put("t0002/o.bin", size=4096, seed=5)
    e = edge(config=tls_config(pki, fault), env={})
    cases = [
        ("a.test", "CN=a.test", ["a.test"]),
        ("A.Test", "CN=a.test", ["a.test"]),
        ("x.b.test", "CN=*.b.test", ["*.b.test"]),
        ("other.b.test", "CN=*.b.test", ["*.b.test"]),
        ("default.test", "CN=default.test", ["default.test"]),
        # no match: the default (the first certificate listed)
        ("b.test", "CN=default.test", ["default.test"]),
        ("y.x.b.test", "CN=default.test", ["default.test"]),
        ("unknown.example", "CN=default.test", ["default.test"]),
        (None, "CN=default.test", ["default.test"]),
    ]
    for name, subject, names in cases:
        for version in ("-tls1_2", "-tls1_3"):
            s = s_client(e.port, version, servername=name)
            assert s.ok, (name, s)
            assert (s.subject, s.names) == (subject, names), (name, version, s)
    # clients that check the name against the certificate are satisfied
    for name in ("a.test", "x.b.test", "default.test"):
        r = https_get(pki, e.port, "/t0002/o.bin", name=name, workdir=tmp_path)
        assert r.rc == 0 and r.status == 200, (name, r)
        assert r.body == harness.object_bytes(4096, 5)
    r = https_get(pki, e.port, "/t0002/o.bin", name="b.test", workdir=tmp_path)
    assert r.rc == 60 and r.status is None, r  # the default does not name b.test


def test_first_certificate_is_the_default(fault, edge, pki):
    certs = [(pki.b[0], pki.b[1], None), (pki.a[0], pki.a[1], pki.a_ocsp)]
    e = edge(config=tls_config(pki, fault, certs=certs), env={})
    s = s_client(e.port)
    assert s.ok and s.subject == "CN=*.b.test", s
    s = s_client(e.port, servername="a.test")
    assert s.ok and s.subject == "CN=a.test", s


def test_two_certificates_one_name(fault, edge, pki):
    """The certificate listed first serves a name both carry."""
    first = pki.leaf("t0002-first", "dup.test,first.test")
    second = pki.leaf("t0002-second", "dup.test,second.test")
    certs = [(pki.default[0], pki.default[1], None), (first[0], first[1], None),
             (second[0], second[1], None)]
    e = edge(config=tls_config(pki, fault, certs=certs), env={})
    for name, names in (("dup.test", ["dup.test", "first.test"]),
                        ("first.test", ["dup.test", "first.test"]),
                        ("second.test", ["dup.test", "second.test"])):
        s = s_client(e.port, servername=name)
        assert s.ok and s.names == names, (name, s)


def test_ocsp_stapling(fault, edge, pki):
    e = edge(config=tls_config(pki, fault), env={})
    for version in ("-tls1_2", "-tls1_3"):
        s = s_client(e.port, version, "-status", servername="a.test")
        assert s.ok, s
        assert s.ocsp_status == "successful", s
        assert s.ocsp_cert_status == "good", s
        # x.b.test's certificate has no response configured
        s = s_client(e.port, version, "-status", servername="x.b.test")
        assert s.ok and s.ocsp_none and s.ocsp_status is None, s
    # not asked for: not sent
    s = s_client(e.port, servername="a.test")
    assert s.ok and s.ocsp_status is None and "OCSP" not in s.out, s
    # the stapled response is the file's: same production time, same serial
    info = tlsutil.run([tlsutil.OPENSSL, "ocsp", "-respin", pki.a_ocsp,
                        "-resp_text", "-noverify"]).decode()
    s = s_client(e.port, "-status", servername="a.test")
    for field in ("Produced At", "Serial Number"):
        want = re.search(r"%s: (.*)" % field, info).group(1).strip()
        got = re.search(r"%s: (.*)" % field, s.out)
        assert got and got.group(1).strip() == want, (field, want, s)
