"""
rangeutil.py: helpers of the r tier (ranges, coalescing, block fills).

  parse_content_range()   "bytes a-b/n" or "bytes */n", strictly
  parse_byteranges()      multipart/byteranges, strictly (each part's
                          length is the one its Content-Range gives)
  parse_byteranges_email() the same body through Python's email parser
  origin_gets(), check_block_fetches(), fetched_spans(), max_overlap():
                          what the fault origin saw for one key
  fault_config()          a YAML config (dict) in front of the fault origin
  established()           clients connected to a local port right now
  CurlStream              curl in the background, its body hashed as it
                          arrives (never written to disk), progress live

Every wait has a deadline; every loop is bounded.
"""

import email
import email.policy
import hashlib
import json
import os
import re
import subprocess
import tempfile
import threading
import time

import harness

KiB = 1024
MiB = 1024 * 1024
BLOCK = MiB                     # cache.block_size default

# curl's exit code for a response the edge cut, on a command-line edge
# under E2E_PROTO: HTTP/1.1, the connection closed before Content-Length
# bytes (18, partial file); HTTP/2, RST_STREAM (92)
CUT_RC = 92 if harness.E2E_PROTO in ("h2c", "h2") else 18

_CR = re.compile(r"bytes (\d+)-(\d+)/(\d+)\Z")
_CR_STAR = re.compile(r"bytes \*/(\d+)\Z")


def parse_content_range(value):
    """(first, last, size) of "bytes a-b/n", or (None, None, size) of
    "bytes */n". Anything else fails the test."""
    assert value is not None, "no Content-Range"
    m = _CR.match(value.strip())
    if m:
        a, b, n = (int(x) for x in m.groups())
        assert a <= b < n, "Content-Range out of order: %r" % value
        return a, b, n
    m = _CR_STAR.match(value.strip())
    assert m, "malformed Content-Range %r" % value
    return None, None, int(m.group(1))


def boundary_of(content_type):
    m = re.match(r'\s*multipart/byteranges\s*;(.*)\Z', content_type or "",
                 re.I | re.S)
    assert m, "not multipart/byteranges: %r" % content_type
    b = re.search(r'boundary=(?:"([^"]+)"|([^\s;]+))', m.group(1), re.I)
    assert b, "no boundary in %r" % content_type
    boundary = b.group(1) or b.group(2)
    assert 1 <= len(boundary) <= 70, boundary   # RFC 2046 5.1.1
    return boundary.encode("latin-1")


def parse_byteranges(body, content_type):
    """Strict multipart/byteranges parser (RFC 9110 14.6, RFC 2046 5.1):
    optional preamble, then per part "--B" CRLF, header fields, CRLF, as
    many bytes as its Content-Range says, CRLF; then "--B--". Returns
    [(headers {lower name: value}, (first, last, size), data)]."""
    delim = b"--" + boundary_of(content_type)
    pos = body.find(delim)
    assert pos >= 0, "no delimiter in the body"
    assert pos == 0 or body[pos - 2:pos] == b"\r\n", "delimiter not at a line start"
    parts = []
    for _ in range(10000):
        pos += len(delim)
        if body[pos:pos + 2] == b"--":
            epilogue = body[pos + 2:]
            assert epilogue.strip(b"\r\n") == b"", \
                "bytes after the close delimiter: %r" % epilogue[:80]
            return parts
        assert body[pos:pos + 2] == b"\r\n", \
            "delimiter not followed by CRLF: %r" % body[pos:pos + 20]
        pos += 2
        end = body.find(b"\r\n\r\n", pos)
        assert end >= 0, "part headers do not end"
        headers = {}
        for line in body[pos:end].split(b"\r\n"):
            name, colon, value = line.partition(b":")
            assert colon and name.strip() == name and name, \
                "bad part header line %r" % line
            lname = name.decode("latin-1").lower()
            assert lname not in headers, "repeated part header %r" % name
            headers[lname] = value.decode("latin-1").strip()
        a, b, n = parse_content_range(headers.get("content-range"))
        assert a is not None, "a part with Content-Range */n"
        start = end + 4
        data = body[start:start + (b - a + 1)]
        assert len(data) == b - a + 1, "part body short"
        parts.append((headers, (a, b, n), data))
        pos = start + len(data)
        assert body[pos:pos + 2 + len(delim)] == b"\r\n" + delim, \
            "part of %d-%d not followed by CRLF and the delimiter" % (a, b)
        pos += 2
    raise AssertionError("too many parts")


def parse_byteranges_email(body, content_type):
    """The same body through the standard library's MIME parser:
    [(Content-Type, Content-Range, data)]."""
    msg = email.message_from_bytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
        + body, policy=email.policy.HTTP)
    assert msg.is_multipart(), "email parser: not multipart"
    assert not msg.defects, "email parser defects: %r" % msg.defects
    out = []
    for part in msg.iter_parts():
        assert not part.defects, "part defects: %r" % part.defects
        out.append((part["Content-Type"], part["Content-Range"],
                    part.get_payload(decode=True)))
    return out


def check_multipart(r, data, ranges, content_type=None):
    """A 206 multipart/byteranges answer to `ranges` (inclusive (a, b)
    pairs, already clipped to the object) on an object of bytes `data`:
    both parsers agree, every part is correct, the parts cover exactly the
    union of the ranges. Returns the parts [(first, last)]."""
    ct = r.header("content-type")
    assert r.header("content-length") is None or \
        int(r.header("content-length")) == len(r.body), r
    strict = parse_byteranges(r.body, ct)
    loose = parse_byteranges_email(r.body, ct)
    assert len(strict) == len(loose), (len(strict), len(loose))
    spans = []
    for (h, (a, b, n), d), (lct, lcr, ld) in zip(strict, loose):
        assert n == len(data), (a, b, n)
        assert d == data[a:b + 1], "part %d-%d has wrong bytes" % (a, b)
        assert ld == d, "the email parser read part %d-%d otherwise" % (a, b)
        assert lcr == h["content-range"]
        assert "content-type" in h, "part %d-%d has no Content-Type" % (a, b)
        if content_type:
            assert h["content-type"] == content_type, h
        spans.append((a, b))
    check_cover(spans, ranges)
    return spans


# RFC 9110 14.1.2: a server may coalesce ranges that overlap or that are
# separated by a gap smaller than the overhead of sending multiple parts
# (a delimiter and two header fields: on the order of 100 bytes)
GAP_OK = 256


def check_cover(parts, asked):
    """The parts sent cover every byte asked for, and nothing else but
    the small gaps between ranges a server may coalesce."""
    got = union(parts)
    for a, b in union(asked):
        assert any(x <= a and b <= y for x, y in got), \
            "bytes %d-%d asked for, not sent: %r" % (a, b, got)
    allowed = union(asked, gap=GAP_OK)
    for x, y in got:
        assert any(a <= x and y <= b for a, b in allowed), \
            "bytes %d-%d sent, not asked for: %r" % (x, y, asked)


def union(spans, gap=0):
    """Sorted union of inclusive spans, adjacent ones (and those closer
    than gap bytes) merged."""
    out = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + 1 + gap:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


# ----------------------------------------------------- what the origin saw

def origin_gets(fault, key):
    return [r for r in fault.requests_for(key) if r["method"] == "GET"]


def range_of(rec):
    """(first, last-or-None) of a recorded request's Range header."""
    v = rec["range"]
    assert v is not None, "an origin GET without Range: %r" % rec
    m = re.match(r"bytes=(\d+)-(\d*)\Z", v)
    assert m, "origin saw a Range that is not one a-b range: %r" % v
    return int(m.group(1)), int(m.group(2)) if m.group(2) else None


def check_block_fetches(fault, key, size, bs=BLOCK, etag=None):
    """Every origin GET of key is one block-aligned Range
    "bytes=B*bs-((B+n)*bs-1)" (the end may be clipped to size-1), never a
    multi-range; the first one carries no If-Match or the ETag, every later
    one If-Match with the object's ETag. Returns the GET records."""
    gets = origin_gets(fault, key)
    assert gets, "the origin saw no GET of %s" % key
    for i, g in enumerate(gets):
        assert "," not in (g["range"] or ""), "multi-range to S3: %r" % g["range"]
        a, b = range_of(g)
        assert b is not None, "open-ended block fetch %r" % g["range"]
        assert a % bs == 0, "fetch not block-aligned: %r" % g["range"]
        assert (b + 1) % bs == 0 or b == size - 1, \
            "fetch does not end on a block: %r" % g["range"]
        if i > 0 and etag is not None:
            assert g["headers"].get("if-match") == etag, \
                "block fetch %r without If-Match %s: %r" % (
                    g["range"], etag, g["headers"])
    return gets


def fetched_spans(gets, size):
    """The object bytes each recorded GET sent: [(first, last)]."""
    out = []
    for g in gets:
        a, b = range_of(g)
        b = size - 1 if b is None else min(b, size - 1)
        if g["status"] == 206 and g["bytes_sent"]:
            out.append((a, a + g["bytes_sent"] - 1))
    return out


def max_overlap(recs):
    """The largest number of the records in flight at one moment
    (t_start .. t_done, or still open)."""
    ev = []
    for r in recs:
        ev.append((r["t_start"], 1))
        ev.append((r["t_done"] if r["t_done"] is not None
                   else float("inf"), -1))
    best = cur = 0
    for _, d in sorted(ev, key=lambda e: (e[0], e[1])):
        cur += d
        best = max(best, cur)
    return best


def established(port):
    """TCP connections accepted on a local port and still open (from
    /proc/net/tcp and tcp6): how many clients are connected to it."""
    n = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "01" and \
                    int(fields[1].rsplit(":", 1)[1], 16) == port:
                n += 1
    return n


def url_port(url):
    m = re.match(r"https?://[^/]*:(\d+)/", url)
    assert m, url
    return int(m.group(1))


# ----------------------------------------------------------------- configs

def fault_config(fault, cache=None, limits=None):
    """A config dict for harness.Edge: one anonymous origin (the fault
    origin), one distribution for every host, access log in the file."""
    c = {"listen": ["$listen"],
         "log": {"access_log": "$access_log"},
         "origins": [{"name": "f",
                      "endpoint": "http://127.0.0.1:%d" % fault.port,
                      "bucket": fault.BUCKET,
                      "credentials": {"source": "anonymous"}}],
         "distributions": [{"name": "d", "origin": "f"}]}
    if cache:
        c["cache"] = dict(cache)
    if limits:
        c["limits"] = dict(limits)
    return c


# ------------------------------------------------------------------ clients

class CurlStream:
    """curl URL in the background. The body goes through a pipe into
    sha256 in this process (`nbytes` grows as bytes arrive; keep=True also
    keeps it in memory), or with piped=True into an `openssl dgst` process, so
    that hundreds of clients cost no Python (then nbytes comes from curl's
    -w at the end, and t_first stays None). Protocol per E2E_PROTO
    (harness.curl_proto_args) unless `proto` gives curl's arguments."""

    def __init__(self, url, *args, timeout=60, keep=False, proto=None,
                 workdir=None, piped=False):
        if proto is None:
            proto, url = harness.curl_proto_args(url)
        assert not (keep and piped)
        fd, self.hfile = tempfile.mkstemp(prefix="curl-h-", dir=workdir)
        os.close(fd)
        self.argv = ["curl", "-sS"] + list(proto) + [
            "-D", self.hfile, "-o", "-", "--max-time", str(timeout),
            "-w", "%{stderr}\nCURLINFO %{json}\n"] + list(args) + [url]
        self.timeout = timeout
        self.keep = keep
        self.piped = piped
        self.body = bytearray() if keep else None
        self.nbytes = 0
        self.digest = hashlib.sha256()
        self.t_spawn = time.monotonic()
        self.t_first = None     # monotonic time of the first body byte
        self.t_end = None
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        self.hasher = None
        self.hash_out = b""
        if piped:
            # openssl's SHA-256 uses the CPU's SHA extensions: about
            # seven times less CPU than coreutils' sha256sum here
            self.hasher = subprocess.Popen(["openssl", "dgst", "-sha256",
                                            "-r"],
                                           stdin=self.proc.stdout,
                                           stdout=subprocess.PIPE)
            self.proc.stdout.close()
        self.err = b""
        self._errt = threading.Thread(target=self._read_err, daemon=True)
        self._errt.start()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read_err(self):
        self.err = self.proc.stderr.read()

    def _read(self):
        if self.hasher is not None:
            self.hash_out = self.hasher.stdout.read()
            self.t_end = time.monotonic()
            return
        out = self.proc.stdout
        for _ in range(1 << 24):
            b = out.read1(1 << 20)
            if not b:
                break
            if self.t_first is None:
                self.t_first = time.monotonic()
            self.digest.update(b)
            if self.keep:
                self.body += b
            self.nbytes += len(b)
        self.t_end = time.monotonic()

    def kill(self):
        for p in (self.proc, self.hasher):
            if p is not None:
                if p.poll() is None:
                    p.kill()
                p.wait(10)

    def wait(self, timeout=None):
        """Wait for curl to end (killing it past the deadline); fills rc,
        status, headers, info, stderr, sha256."""
        try:
            self.proc.wait(timeout if timeout is not None
                           else self.timeout + 10)
        except subprocess.TimeoutExpired:
            self.kill()
        if self.hasher is not None:
            try:
                self.hasher.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._t.join(30)
        self._errt.join(30)
        self.rc = self.proc.returncode
        text = self.err.decode("utf-8", "replace")
        self.info = {}
        self.stderr = text
        for line in text.splitlines():
            if line.startswith("CURLINFO "):
                try:
                    self.info = json.loads(line[9:])
                except ValueError:
                    pass
        if self.hasher is not None:
            self.sha256 = self.hash_out.decode("ascii", "replace").split(
                " ")[0]
            self.nbytes = int(self.info.get("size_download", -1))
        else:
            self.sha256 = self.digest.hexdigest()
        try:
            htext = open(self.hfile, "r", encoding="latin-1").read()
            os.unlink(self.hfile)
        except OSError:
            htext = ""
        self.status, self.headers = harness.parse_header_block(htext)
        return self

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def xcache(self):
        v = self.header("x-cache")
        return v.split()[0].lower() if v else None

    def __repr__(self):
        return "<curl rc=%s status=%s bytes=%d headers=%r stderr=%r>" % (
            getattr(self, "rc", None), getattr(self, "status", None),
            self.nbytes, getattr(self, "headers", None),
            getattr(self, "stderr", "")[-400:])


def aria2c(url, outdir, name, timeout=120):
    """Download url with aria2c, 16 connections (segmented Range requests
    over HTTP/1.1), into outdir/name. Returns (completed process, seconds);
    the caller checks the return code and the file."""
    argv = ["aria2c", "--max-connection-per-server=16", "--split=16",
            "--min-split-size=1M", "--file-allocation=none",
            "--allow-overwrite=true", "--auto-file-renaming=false",
            "--max-tries=1", "--timeout=30", "--connect-timeout=10",
            "--summary-interval=0", "--console-log-level=warn",
            "--download-result=hide", "--no-conf=true",
            "-d", str(outdir), "-o", name, url]
    t0 = time.monotonic()
    r = subprocess.run(argv, capture_output=True, timeout=timeout)
    return r, time.monotonic() - t0
