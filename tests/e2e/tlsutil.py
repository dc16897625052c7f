"""
tlsutil.py: what the t-tier (TLS) tests share.

  Pki          a test CA and server certificates made with the openssl CLI
               in a temporary directory (never committed): a.test (its
               chain holds the CA, and it has an OCSP response), *.b.test,
               default.test, plus anything a test asks for
  tls_config() the YAML of an edge with one TLS listener at $listen in
               front of the fault origin
  s_client()   openssl s_client, its output parsed: protocol, cipher,
               ALPN, the server certificate's subject and names, reuse,
               OCSP status
  https_get()  curl over TLS, with --resolve so that SNI and the name check
               see the test names while the socket goes to 127.0.0.1

Every subprocess has a timeout; every wait a deadline.
"""

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

import harness

OPENSSL = "openssl"
DAYS = "2"


def run(argv, timeout=30, **kw):
    r = subprocess.run([str(a) for a in argv], capture_output=True,
                       timeout=timeout, **kw)
    if r.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (
            " ".join(str(a) for a in argv), r.returncode,
            r.stderr.decode(errors="replace")))
    return r.stdout


class Pki:
    """A CA and server certificates in `d`, all with P-256 keys."""

    def __init__(self, d):
        self.dir = Path(d)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = self.dir / "ca.pem"
        self.ca_key = self.dir / "ca.key"
        run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.ca_key,
             "-out", self.ca, "-days", DAYS, "-subj", "/CN=s3edge test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        self.index = self.dir / "index.txt"
        self.index.write_text("")
        self.a = self.leaf("a", "a.test", chain=True)
        self.b = self.leaf("b", "*.b.test")
        self.default = self.leaf("default", "default.test")
        self.a_ocsp = self.ocsp("a")

    def path(self, name):
        return self.dir / name

    def leaf(self, name, dns, chain=False, cn=None):
        """name.key and name.pem (the certificate, then the CA when chain)
        for the DNS name(s) dns ("a.test" or "x.test,y.test"). Returns
        (cert, key)."""
        key, csr = self.dir / (name + ".key"), self.dir / (name + ".csr")
        crt, pem = self.dir / (name + ".crt"), self.dir / (name + ".pem")
        ext = self.dir / (name + ".ext")
        names = ",".join("DNS:" + n for n in dns.split(","))
        ext.write_text("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                       "extendedKeyUsage=serverAuth\n" % names)
        run([OPENSSL, "req", "-new", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
             "-subj", "/CN=%s" % (cn or dns.split(",")[0])])
        run([OPENSSL, "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey",
             self.ca_key, "-CAcreateserial", "-days", DAYS, "-out", crt,
             "-extfile", ext])
        serial = run([OPENSSL, "x509", "-in", crt, "-noout", "-serial"]
                     ).decode().strip().split("=")[1]
        expiry = time.strftime("%y%m%d%H%M%SZ",
                               time.gmtime(time.time() + 2 * 86400))
        with open(self.index, "a") as f:
            f.write("V\t%s\t\t%s\tunknown\t/CN=%s\n"
                    % (expiry, serial, cn or dns.split(",")[0]))
        text = crt.read_text()
        if chain:
            text += self.ca.read_text()
        pem.write_text(text)
        os.chmod(key, 0o600)
        return pem, key

    def ocsp(self, name):
        """A "good" OCSP response (DER) for name.crt, signed by the CA."""
        req, resp = self.dir / (name + ".ocspreq"), self.dir / (name + ".ocsp")
        run([OPENSSL, "ocsp", "-issuer", self.ca, "-cert",
             self.dir / (name + ".crt"), "-no_nonce", "-reqout", req])
        run([OPENSSL, "ocsp", "-index", self.index, "-rsigner", self.ca,
             "-rkey", self.ca_key, "-CA", self.ca, "-reqin", req,
             "-respout", resp, "-ndays", "1"])
        return resp


def tls_config(pki, fault, certs=None, tls_extra="", log_level="debug",
               extra=""):
    """An edge config: one TLS listener at $listen (certificates: a.test
    with its OCSP response, *.b.test, default.test first unless `certs`
    says otherwise), the fault origin, debug logs. tls_extra: more
    lines under tls: (4 spaces in)."""
    if certs is None:
        certs = [(pki.default[0], pki.default[1], None),
                 (pki.a[0], pki.a[1], pki.a_ocsp),
                 (pki.b[0], pki.b[1], None)]
    lines = ["listen:", "  - address: \"$listen\"", "    tls:",
             "      certificates:"]
    for cert, key, ocsp in certs:
        lines.append("        - cert: \"%s\"" % cert)
        lines.append("          key: \"%s\"" % key)
        if ocsp:
            lines.append("          ocsp: \"%s\"" % ocsp)
    for l in tls_extra.splitlines():
        lines.append("      " + l)
    lines += ["log:", "  level: %s" % log_level, "  error_log: stderr",
              "  access_log: \"$access_log\"",
              "origins:", "  - name: fault",
              "    endpoint: %s" % fault.url, "    bucket: %s" % fault.BUCKET,
              "    credentials: {source: anonymous}",
              "distributions:", "  - name: all", "    origin: fault"]
    return "\n".join(lines) + "\n" + extra


class SClient:
    def __init__(self, rc, out, err):
        self.rc = rc
        self.out = out
        self.err = err
        m = re.search(r"^(New|Reused), (TLSv[\d.]+), Cipher is (\S+)",
                      out, re.M)
        self.reused = bool(m) and m.group(1) == "Reused"
        self.version = m.group(2) if m else None
        self.cipher = m.group(3) if m and m.group(3) != "(NONE)" else None
        m = re.search(r"^ALPN protocol: (\S+)", out, re.M)
        self.alpn = m.group(1) if m else None
        m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                      out, re.S)
        self.cert_pem = m.group(0) if m else None
        self.subject = self.names = None
        if self.cert_pem:
            info = subprocess.run(
                [OPENSSL, "x509", "-noout", "-subject", "-ext",
                 "subjectAltName", "-nameopt", "RFC2253"],
                input=self.cert_pem.encode(), capture_output=True,
                timeout=10).stdout.decode()
            m = re.search(r"^subject=(.*)$", info, re.M)
            self.subject = m.group(1).strip() if m else None
            self.names = sorted(re.findall(r"DNS:([^,\s]+)", info))
        self.ocsp_status = None
        m = re.search(r"OCSP Response Status: (\S+)", out)
        if m:
            self.ocsp_status = m.group(1)
        m = re.search(r"Cert Status: (\S+)", out)
        self.ocsp_cert_status = m.group(1) if m else None
        self.ocsp_none = "OCSP response: no response sent" in out

    @property
    def ok(self):
        return self.cipher is not None

    def text(self):
        return self.out + self.err

    def __repr__(self):
        return "<s_client rc=%s %s %s alpn=%s subject=%s reused=%s>\n%s" % (
            self.rc, self.version, self.cipher, self.alpn, self.subject,
            self.reused, (self.err + self.out)[-3000:])


def s_client(port, *args, servername=None, sess_out=None, timeout=10):
    """openssl s_client to 127.0.0.1:port. With sess_out, stdin stays
    open until the session (TLS 1.3: the post-handshake ticket) is in
    the file, so that it is saved before the client leaves."""
    argv = [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port]
    argv += ["-servername", servername] if servername else ["-noservername"]
    if sess_out:
        # a file left from an earlier session would pass for this one's
        if Path(sess_out).exists():
            Path(sess_out).unlink()
        argv += ["-sess_out", str(sess_out)]
    argv += [str(a) for a in args]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        if sess_out:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and p.poll() is None:
                if Path(sess_out).exists() and Path(sess_out).stat().st_size:
                    # a TLS 1.3 server sends two tickets; take the last
                    time.sleep(0.2)
                    break
                time.sleep(0.02)
        out, err = p.communicate(b"", timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("openssl s_client hung: %s" % err.decode(
            errors="replace"))
    return SClient(p.returncode, out.decode("utf-8", "replace"),
                   err.decode("utf-8", "replace"))


def https_get(pki, port, path, *args, name="a.test", workdir, timeout=30,
              **kw):
    """curl https://name:port/path, name resolving to 127.0.0.1, checked
    against the test CA."""
    return harness.curl("https://%s:%d%s" % (name, port, path),
                        "--cacert", str(pki.ca), "--resolve",
                        "%s:%d:127.0.0.1" % (name, port), *args,
                        workdir=workdir, timeout=timeout, **kw)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The session's test CA and certificates. Tests that change files
    make their own with pki.leaf()."""
    return Pki(tmp_path_factory.mktemp("pki"))
