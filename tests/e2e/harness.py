"""
harness.py: the e2e tier's moving parts, used by conftest.py and the tests.

  S3Origin     s3rver (npm, pinned in origin/) behind s3gate.py (SigV4
               checked by botocore); objects uploaded with awscli or
               curl --aws-sigv4
  FaultOrigin  faultorigin.py, an S3-shaped origin that misbehaves on demand
  Edge         one s3edge process: command line or YAML config, logs in
               files, stopped with SIGTERM (SIGKILL after a deadline),
               checked for crashes and sanitizer reports
  curl(), raw_exchange(), parse_responses(), parse_logfmt(), sha256()

Every wait has a deadline; every process started here is stopped by its
owner, also when a test fails.
"""

import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

E2E = Path(__file__).resolve().parent
REPO = E2E.parents[1]
PYTHON = sys.executable
AWS = shutil.which("aws", path="/usr/bin") or shutil.which("aws")
S3RVER = E2E / "origin" / "node_modules" / ".bin" / "s3rver"

E2E_PROTO = os.environ.get("E2E_PROTO", "http1.1")
# what the access log says for requests made through curl()
PROTO_NAME = "HTTP/2.0" if E2E_PROTO in ("h2c", "h2") else "HTTP/1.1"
# curl's exit codes for a transfer cut short: 18 partial file, 56 receive
# error (HTTP/1.1), 92 stream not closed cleanly (HTTP/2 RST_STREAM)
CURL_TRUNCATED = (18, 56, 92)

START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0

SANITIZER_PATTERNS = [
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "WARNING: ThreadSanitizer",
    "runtime error:",
    "assertion failed in",
]


def s3edge_bin():
    env = os.environ.get("S3EDGE_BIN")
    return Path(env) if env else REPO / "build" / "edge" / "s3edge"


# ------------------------------------------------------------------ basics

def sha256(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def object_bytes(size, seed):
    """The same bytes faultorigin.py generates for (size, seed)."""
    return random.Random(seed).randbytes(size)


def free_port():
    """A port free right now on 127.0.0.1 (the caller binds it soon after;
    callers that can bind port 0 themselves should)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what, interval=0.02):
    """Poll pred() until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 1000):
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s"
                         % (timeout, what))


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def s3path(bucket, key):
    """Path-style request path as S3 wants it on the wire: every byte
    outside RFC 3986 unreserved, '/' kept, percent-encoded once."""
    return "/" + bucket + "/" + quote(key, safe="/~")


def url_path(key):
    """The client-side path for a key (percent-encoded once)."""
    return "/" + quote(key, safe="/~")


def tail(path, n=4000):
    try:
        with open(path, "rb") as f:
            data = f.read()
        return data[-n:].decode("utf-8", "replace")
    except OSError:
        return "(no %s)" % path


class BgProc:
    """A helper server process with its output in files."""

    def __init__(self, name, argv, logdir, env=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.out = Path(logdir) / (name + ".out")
        self.err = Path(logdir) / (name + ".err")
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.proc = subprocess.Popen(self.argv, stdout=o, stderr=e,
                                         stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=True)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        return self.proc.returncode

    def describe(self):
        return "%s (%s) exited %s\nstderr:\n%s" % (
            self.name, " ".join(self.argv), self.proc.returncode,
            tail(self.err))


def start_announcing(name, script, args, logdir):
    """Start one of our Python servers; it binds port 0 and writes the port
    into a file. Returns (BgProc, port)."""
    port_file = Path(logdir) / (name + ".port")
    if port_file.exists():
        port_file.unlink()
    p = BgProc(name, [PYTHON, E2E / script, "--port-file", port_file] + args,
               logdir)

    def ready():
        if not p.alive():
            raise AssertionError(p.describe())
        return port_file.exists()
    try:
        wait_for(ready, START_TIMEOUT, "%s to announce its port" % name)
    except BaseException:
        p.stop()
        raise
    return p, int(port_file.read_text())


def control(port, method, path, obj=None, timeout=10):
    """A JSON request to a test server's control endpoint."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        body = json.dumps(obj).encode() if obj is not None else None
        hdrs = {"Content-Type": "application/json"} if body else {}
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise AssertionError("control %s %s: %d %r"
                                 % (method, path, r.status, data))
        return json.loads(data)
    finally:
        c.close()


# ------------------------------------------------------------ S3 origin

class S3Origin:
    """s3rver behind the SigV4 gate."""

    BUCKET = "e2e"              # private: signed requests only
    PUBLIC = "e2e-public"       # anonymous GET/HEAD allowed by the gate
    REGION = "us-east-1"
    AKID = "AKIDE2ETESTKEY000001"
    SECRET = "e2e/Secret+Key/0123456789abcdefghijklmn"
    TOKEN_AKID = "ASIAE2ETESTKEY000002"
    TOKEN_SECRET = "e2e-session-secret-0123456789"
    TOKEN = "FwoGZXIvYXdzE2E2ETOKEN//+session=="

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.procs = []
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        if not S3RVER.exists():
            raise RuntimeError("s3rver is not installed: run tests/e2e/setup.sh")
        data = self.workdir / "s3rver-data"
        data.mkdir(exist_ok=True)
        last = None
        for _ in range(3):
            port = free_port()
            p = BgProc("s3rver", [S3RVER, "--directory", data, "--address",
                                  "127.0.0.1", "--port", port, "--silent"],
                       self.workdir)
            try:
                wait_for(lambda: (not p.alive()) or port_open(port),
                         START_TIMEOUT, "s3rver on port %d" % port)
            except AssertionError as e:
                p.stop()
                last = e
                continue
            if p.alive():
                self.s3rver_port = port
                self.procs.append(p)
                break
            last = AssertionError(p.describe())
        else:
            raise last
        args = ["--upstream", "127.0.0.1:%d" % self.s3rver_port,
                "--region", self.REGION,
                "--key", "%s:%s" % (self.AKID, self.SECRET),
                "--key", "%s:%s:%s" % (self.TOKEN_AKID, self.TOKEN_SECRET,
                                       self.TOKEN),
                "--anonymous-bucket", self.PUBLIC]
        gate, self.port = start_announcing("s3gate", "s3gate.py", args,
                                           self.workdir)
        self.procs.append(gate)
        self.gate = gate
        self.url = "http://127.0.0.1:%d" % self.port
        for b in (self.BUCKET, self.PUBLIC):
            self.create_bucket(b)

    def stop(self):
        for p in reversed(self.procs):
            p.stop()
        self.procs = []

    def check_alive(self):
        for p in self.procs:
            if not p.alive():
                raise AssertionError("S3 origin part died: " + p.describe())

    def origin_url(self, bucket=None):
        return "%s/%s" % (self.url, bucket or self.BUCKET)

    def client_env(self, akid=None, secret=None):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "HOME": str(self.workdir),
               "AWS_ACCESS_KEY_ID": akid or self.AKID,
               "AWS_SECRET_ACCESS_KEY": secret or self.SECRET,
               "AWS_DEFAULT_REGION": self.REGION,
               "AWS_CONFIG_FILE": "/dev/null",
               "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
               "AWS_EC2_METADATA_DISABLED": "true",
               "AWS_PAGER": ""}
        return env

    def aws(self, *args, timeout=60):
        if AWS is None:
            raise RuntimeError("awscli (Debian awscli) is not installed")
        r = subprocess.run([AWS, "--endpoint-url", self.url] + list(args),
                           env=self.client_env(), capture_output=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise AssertionError("aws %s failed: %s" % (
                " ".join(args), r.stderr.decode(errors="replace")))
        return r.stdout

    def sigv4_curl_args(self):
        return ["--aws-sigv4", "aws:amz:%s:s3" % self.REGION,
                "--user", "%s:%s" % (self.AKID, self.SECRET),
                "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]

    def create_bucket(self, bucket):
        r = subprocess.run(["curl", "-sS", "--fail-with-body", "--http1.1",
                            "-o", "/dev/null", "-X", "PUT"]
                           + self.sigv4_curl_args()
                           + ["%s/%s" % (self.url, bucket)],
                           capture_output=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("creating bucket %s failed: %s" % (
                bucket, r.stderr.decode(errors="replace")))

    def put(self, key, data, bucket=None, content_type=None, metadata=None,
            cache_control=None, client="curl"):
        """Upload through the gate with a real S3 client. curl's SigV4
        (7.88) is fast but only for keys without characters it would have
        to encode; awscli takes any key."""
        bucket = bucket or self.BUCKET
        src = self.workdir / "upload.tmp"
        src.write_bytes(data)
        if client == "aws":
            args = ["s3api", "put-object", "--bucket", bucket, "--key", key,
                    "--body", str(src)]
            if content_type:
                args += ["--content-type", content_type]
            if cache_control:
                args += ["--cache-control", cache_control]
            if metadata:
                args += ["--metadata", ",".join("%s=%s" % kv
                                                for kv in metadata.items())]
            self.aws(*args)
        else:
            assert re.fullmatch(r"[A-Za-z0-9._/-]+", key), \
                "key %r needs client='aws'" % key
            argv = ["curl", "-sS", "--fail-with-body", "--http1.1",
                    "-o", "/dev/null", "-T", str(src)]
            argv += self.sigv4_curl_args()
            argv += ["-H", "Content-Type: %s"
                    % (content_type or "binary/octet-stream")]
            if cache_control:
                argv += ["-H", "Cache-Control: " + cache_control]
            for k, v in (metadata or {}).items():
                argv += ["-H", "x-amz-meta-%s: %s" % (k, v)]
            argv.append(self.url + s3path(bucket, key))
            r = subprocess.run(argv, capture_output=True, timeout=60)
            if r.returncode != 0:
                raise AssertionError("upload of %r failed: %s %s" % (
                    key, r.stderr.decode(errors="replace"),
                    r.stdout.decode(errors="replace")))
        src.unlink()
        return '"%s"' % hashlib.md5(data).hexdigest()

    def stats(self):
        return control(self.port, "GET", "/__gate/stats")

    def reset(self):
        control(self.port, "POST", "/__gate/reset")

    def count(self, method, path):
        """How many times the gate forwarded METHOD path to s3rver."""
        return self.stats()["counts"].get("%s %s" % (method, path), 0)

    def gets(self, key, bucket=None):
        return self.count("GET", s3path(bucket or self.BUCKET, key))


# ---------------------------------------------------------- fault origin

class FaultOrigin:
    BUCKET = "fault"

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc, self.port = start_announcing("faultorigin",
                                                "faultorigin.py", [],
                                                self.workdir)
        self.url = "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.proc.stop()

    def check_alive(self):
        if not self.proc.alive():
            raise AssertionError("fault origin died: " + self.proc.describe())

    def origin_url(self, bucket=None):
        return "%s/%s" % (self.url, bucket or self.BUCKET)

    def put(self, key, size=None, seed=0, data=None, file=None, bucket=None,
            **kw):
        o = {"bucket": bucket or self.BUCKET, "key": key}
        if data is not None:
            import base64
            o["data_b64"] = base64.b64encode(data).decode()
        elif file is not None:
            o["file"] = str(file)
        else:
            o["size"] = size
            o["seed"] = seed
        o.update(kw)
        return control(self.port, "POST", "/__fault/object", o)

    def delete(self, key, bucket=None):
        control(self.port, "POST", "/__fault/delete",
                {"bucket": bucket or self.BUCKET, "key": key})

    def fault(self, key=None, bucket=None, **spec):
        """Set a fault for one key, or for every request (key=None)."""
        f = dict(spec)
        if key is not None:
            f["bucket"] = bucket or self.BUCKET
            f["key"] = key
        control(self.port, "POST", "/__fault/fault", f)

    def reset(self):
        control(self.port, "POST", "/__fault/reset")

    def release(self, name):
        """Open the gate of a `hold` fault."""
        control(self.port, "POST", "/__fault/release", {"name": name})

    def stats(self):
        return control(self.port, "GET", "/__fault/stats")

    def key_stats(self, key, bucket=None):
        k = (bucket or self.BUCKET) + "/" + key
        return self.stats()["keys"].get(k, {"requests": 0, "GET": 0,
                                            "HEAD": 0, "bytes": 0,
                                            "ranges": []})

    def requests_for(self, key, bucket=None):
        k = (bucket or self.BUCKET) + "/" + key
        return [r for r in self.stats()["requests"] if r["key"] == k]


class PlainOrigin:
    """plainorigin.py: a plain HTTP origin that records requests."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc, self.port = start_announcing("plainorigin",
                                                "plainorigin.py", [],
                                                self.workdir)
        self.url = "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.proc.stop()

    def check_alive(self):
        if not self.proc.alive():
            raise AssertionError("plain origin died: " + self.proc.describe())

    def put(self, path, data, cache_control="max-age=300", status=None,
            location=None):
        import base64
        o = {"path": path, "cache_control": cache_control,
             "data_b64": base64.b64encode(data).decode()}
        if status is not None:
            o["status"] = status
            o["location"] = location
        return control(self.port, "POST", "/__plain/object", o)

    def fault(self, **spec):
        control(self.port, "POST", "/__plain/fault", spec)

    def reset(self):
        control(self.port, "POST", "/__plain/reset")

    def requests(self, path=None, method=None):
        rs = control(self.port, "GET", "/__plain/stats")["requests"]
        return [r for r in rs if (path is None or r["path"] == path)
                and (method is None or r["method"] == method)]


# ------------------------------------------------------------------ edge

def yaml_dump(obj, indent=0):
    """Enough YAML for our configs: dicts, lists, scalars (strings quoted)."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:" % (pad, k))
                out.append(yaml_dump(v, indent + 1))
            else:
                out.append("%s%s: %s" % (pad, k, _yaml_scalar(v)))
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict) and v:
                inner = yaml_dump(v, indent + 1).split("\n")
                out.append("%s- %s" % (pad, inner[0].lstrip()))
                out.extend(inner[1:])
            else:
                out.append("%s- %s" % (pad, _yaml_scalar(v)))
    return "\n".join(out)


def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, dict):
        return "{}"
    if isinstance(v, list):
        return "[]"
    return json.dumps(str(v))


class Edge:
    """One s3edge process. `args` are extra command-line arguments; with
    `config` (YAML text or a dict) the daemon is started with -c FILE and
    the text may use $listen and $access_log, filled in here."""

    def __init__(self, workdir, args=(), config=None, env=None,
                 access_log=True, log_level="info"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.bin = s3edge_bin()
        self.access_log = self.workdir / "access.log"
        self.stderr_path = self.workdir / "s3edge.stderr"
        self.proc = None
        self.stopped = False
        env_all = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                   "HOME": str(self.workdir), "LC_ALL": "C.UTF-8"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
                  "TSAN_OPTIONS"):
            if k in os.environ:
                env_all[k] = os.environ[k]
        env_all.update(env or {})
        last = None
        for _ in range(3):
            self.port = free_port()
            _edge_ports.add(self.port)
            # an earlier edge may have had this cleartext port with a TLS
            # listener beside it: curl() must not follow that old mapping
            _edge_tls_ports.pop(self.port, None)
            self.listen = "127.0.0.1:%d" % self.port
            if config is not None:
                text = yaml_dump(config) if isinstance(config, dict) else config
                text = string.Template(text).substitute(
                    listen=self.listen, access_log=self.access_log)
                self.config_path = self.workdir / "s3edge.yaml"
                self.config_path.write_text(text + "\n")
                argv = [self.bin, "-c", self.config_path] + list(args)
            else:
                argv = [self.bin, "--listen", self.listen,
                        "--error-log", "stderr", "-l", log_level]
                argv += ["--access-log",
                         str(self.access_log) if access_log else "off"]
                if E2E_PROTO == "h2":
                    # the same daemon also listens with TLS; curl() goes
                    # there with h2 (ALPN)
                    _, crt, key = tls_pki()
                    self.tls_port = free_port()
                    _edge_tls_ports[self.port] = self.tls_port
                    argv += ["--tls-listen", "127.0.0.1:%d" % self.tls_port,
                             "--tls-cert", crt, "--tls-key", key]
                argv += list(args)
            self.argv = [str(a) for a in argv]
            with open(self.stderr_path, "ab") as e:
                self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                             stdout=e, stderr=e, env=env_all,
                                             cwd=self.workdir,
                                             start_new_session=True)
            # the TLS listener (E2E_PROTO=h2) opens after the cleartext
            # one, once its certificates are loaded: wait for both
            tls = _edge_tls_ports.get(self.port) if config is None else None
            try:
                wait_for(lambda: self.proc.poll() is not None
                         or (port_open(self.port)
                             and (tls is None or port_open(tls))),
                         START_TIMEOUT, "s3edge to listen on %s" % self.listen)
            except AssertionError:
                self.kill()
                raise AssertionError("s3edge did not listen within %.0fs: %s"
                                     % (START_TIMEOUT, self.describe()))
            if self.proc.poll() is None:
                return
            last = self.describe()
            if "in use" not in tail(self.stderr_path).lower():
                break
        self.stopped = True
        raise AssertionError("s3edge exited at start: %s" % last)

    def client_authority(self):
        """The Host that curl() sends to this edge (its TLS listener's
        under E2E_PROTO=h2)."""
        tp = _edge_tls_ports.get(self.port)
        return "127.0.0.1:%d" % tp if E2E_PROTO == "h2" and tp else self.listen

    def url(self, path="/"):
        return "http://%s%s" % (self.listen, path)

    def describe(self):
        rc = self.proc.returncode if self.proc else None
        return "%s exited %s\nstderr:\n%s" % (" ".join(self.argv), rc,
                                              tail(self.stderr_path))

    def forget_ports(self):
        """Once stopped, this edge's ports may be handed to another server:
        curl() must no longer treat them as an edge's."""
        _edge_ports.discard(self.port)
        _edge_tls_ports.pop(self.port, None)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)
        self.forget_ports()

    def check_alive(self):
        if self.proc.poll() is not None:
            raise AssertionError("s3edge died during the test: "
                                 + self.describe())

    def sanitizer_report(self):
        text = tail(self.stderr_path, 1 << 20)
        for pat in SANITIZER_PATTERNS:
            if pat in text:
                i = text.index(pat)
                return text[max(0, i - 500):i + 3000]
        return None

    def stop(self):
        """SIGTERM, then SIGKILL after a deadline. Returns a list of
        problems (crash, unclean exit, sanitizer report), empty if none."""
        if self.stopped:
            return []
        self.stopped = True
        problems = []
        self.forget_ports()
        rc = self.proc.poll()
        if rc is not None:
            problems.append("s3edge exited before the end of the test "
                            "(status %s)" % rc)
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
                problems.append("s3edge did not exit within %.0fs of SIGTERM"
                                % STOP_TIMEOUT)
                rc = None
            if rc is not None and rc not in (0, -signal.SIGTERM):
                if rc < 0:
                    problems.append("s3edge died of signal %s on SIGTERM"
                                    % signal.Signals(-rc).name)
                else:
                    problems.append("s3edge exited with status %d on SIGTERM"
                                    % rc)
        if rc is not None and rc < 0 and rc != -signal.SIGTERM \
                and not problems:
            problems.append("s3edge died of signal %s"
                            % signal.Signals(-rc).name)
        rep = self.sanitizer_report()
        if rep:
            problems.append("sanitizer/assertion report on stderr:\n" + rep)
        if problems:
            problems.append("stderr tail:\n" + tail(self.stderr_path))
        return problems

    # access log ---------------------------------------------------------

    def access_lines(self):
        try:
            text = self.access_log.read_text(errors="replace")
        except OSError:
            return []
        return [parse_logfmt(l) for l in text.splitlines() if l.strip()]

    def wait_access(self, n, timeout=5.0):
        """Wait for at least n access-log lines; return them all."""
        return wait_for(lambda: (lambda ls: ls if len(ls) >= n else None)(
            self.access_lines()), timeout, "%d access-log lines in %s"
            % (n, self.access_log))

    def stderr_text(self):
        return tail(self.stderr_path, 1 << 20)


# ------------------------------------------------------------------ clients

class CurlResult:
    def __init__(self, rc, status, headers, body, info, stderr, body_path):
        self.rc = rc
        self.status = status
        self.headers = headers
        self.body = body
        self.info = info
        self.stderr = stderr
        self.body_path = body_path

    def header(self, name, default=None):
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return default

    def header_all(self, name):
        lname = name.lower()
        return [v for k, v in self.headers if k.lower() == lname]

    def has(self, name):
        return self.header(name) is not None

    def xcache(self):
        """First word of X-Cache, lower case: hit, miss, pass (or None)."""
        v = self.header("x-cache")
        return v.split()[0].lower() if v else None

    def __repr__(self):
        return "<curl rc=%s status=%s headers=%r body=%r stderr=%r>" % (
            self.rc, self.status, self.headers,
            self.body[:200] if self.body is not None else None,
            self.stderr[-500:])


def parse_header_block(text):
    """The last response head in a curl -D dump: (status, headers)."""
    blocks = [b for b in re.split(r"\r?\n\r?\n", text) if b.strip()]
    if not blocks:
        return None, []
    lines = blocks[-1].splitlines()
    m = re.match(r"HTTP/\S+ (\d{3})", lines[0])
    status = int(m.group(1)) if m else None
    headers = []
    for l in lines[1:]:
        name, _, value = l.partition(":")
        headers.append((name.strip(), value.strip()))
    return status, headers


_curl_seq = [0]


_edge_ports = set()
_edge_tls_ports = {}  # cleartext port -> TLS port (E2E_PROTO=h2)
_tls_pki = []         # [(ca, cert, key)] made once per run


def tls_pki():
    """A CA and a certificate for 127.0.0.1, made once with the openssl CLI
    (E2E_PROTO=h2 runs the suite over TLS)."""
    if not _tls_pki:
        import tempfile
        d = Path(tempfile.mkdtemp(prefix="s3edge-e2e-pki-"))
        def ossl(*a):
            subprocess.run(["openssl"] + list(a), cwd=d, check=True,
                           capture_output=True, timeout=60)
        ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=s3edge e2e CA", "-keyout", "ca.key", "-out", "ca.pem")
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "leaf.key", "-out", "leaf.csr")
        (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
        ossl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "leaf.pem")
        _tls_pki.append((d / "ca.pem", d / "leaf.pem", d / "leaf.key"))
    return _tls_pki[0]


def _is_edge_url(url):
    """Whether url points at an s3edge started here (not at an origin)."""
    m = re.match(r"http://(?:127\.0\.0\.1|localhost|\[::1\]):(\d+)/", url)
    return bool(m) and int(m.group(1)) in _edge_ports


def _proto_args(url):
    """curl arguments and URL for the protocol under test (E2E_PROTO)."""
    if E2E_PROTO == "h2c" and _is_edge_url(url):
        return ["--http2-prior-knowledge"], url
    m = re.match(r"http://127\.0\.0\.1:(\d+)(/.*)$", url)
    if E2E_PROTO == "h2" and m and int(m.group(1)) in _edge_tls_ports:
        ca = tls_pki()[0]
        return (["--http2", "--cacert", str(ca)],
                "https://127.0.0.1:%d%s" % (_edge_tls_ports[int(m.group(1))], m.group(2)))
    return ["--http1.1"], url


def curl_proto_args(url):
    """(curl arguments, URL) that curl() would use for url under
    E2E_PROTO, for tests that run curl themselves (streaming bodies)."""
    return _proto_args(url)


def curl(url, *args, workdir, timeout=30, keep_body_file=False):
    """curl -sS --http1.1 -D HEADERS -o BODY URL, with timing from -w.
    Returns a CurlResult; the body is read into memory unless
    keep_body_file (then body is None and body_path the file)."""
    _curl_seq[0] += 1
    base = Path(workdir) / ("curl%d" % _curl_seq[0])
    hfile, bfile = str(base) + ".h", str(base) + ".b"
    # E2E_PROTO=h2c runs every curl-driven test over HTTP/2 with prior
    # knowledge on the same port, E2E_PROTO=h2 over TLS with ALPN h2 (on a
    # TLS listener the edge gets too), so the HTTP/1.1 suite doubles as an
    # HTTP/2 suite (tests that speak HTTP/1.1 on raw sockets are unaffected)
    proto, url = _proto_args(url)
    argv = ["curl", "-sS"] + proto + ["-D", hfile, "-o", bfile,
            "--max-time", str(timeout), "-w", "%{json}"] + list(args) + [url]
    r = subprocess.run(argv, capture_output=True, timeout=timeout + 10)
    try:
        info = json.loads(r.stdout.decode("utf-8", "replace") or "{}")
    except ValueError:
        info = {}
    try:
        htext = Path(hfile).read_text("latin-1")
    except OSError:
        htext = ""
    status, headers = parse_header_block(htext)
    body = None
    if not keep_body_file:
        try:
            body = Path(bfile).read_bytes()
            os.unlink(bfile)
        except OSError:
            body = b""
    try:
        os.unlink(hfile)
    except OSError:
        pass
    return CurlResult(r.returncode, status, headers, body, info,
                      r.stderr.decode("utf-8", "replace"), bfile)


class RawResult:
    def __init__(self, data, eof, reset, elapsed):
        self.data = data
        self.eof = eof          # the server closed (FIN) within the deadline
        self.reset = reset      # the connection was reset (RST)
        self.elapsed = elapsed

    def __repr__(self):
        return "<raw eof=%s reset=%s %r>" % (self.eof, self.reset,
                                            self.data[:300])


def raw_exchange(port, data, timeout=5.0, shut_wr=False):
    """Send bytes on a fresh connection and read until EOF or the
    deadline."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    chunks = []
    eof = reset = False
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            if shut_wr:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            reset = True
        for _ in range(1 << 20):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                reset = True
                break
            if not b:
                eof = True
                break
            chunks.append(b)
    return RawResult(b"".join(chunks), eof, reset, time.monotonic() - t0)


class RawResponse:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name, default=None):
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return default

    def __repr__(self):
        return "<%d %r %r>" % (self.status, self.headers, self.body[:100])


def parse_responses(data, methods=None):
    """Split a byte stream into HTTP/1.1 responses. methods[i] is the
    method of the i-th request (HEAD responses have no body). Returns
    (responses, leftover bytes)."""
    out = []
    pos = 0
    for i in range(1000):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        lines = data[pos:end].split(b"\r\n")
        m = re.match(rb"HTTP/1\.[01] (\d{3}) ?(.*)", lines[0])
        if not m:
            raise AssertionError("not a status line: %r" % lines[0])
        status = int(m.group(1))
        headers = []
        for l in lines[1:]:
            name, _, value = l.partition(b":")
            headers.append((name.decode("latin-1").strip(),
                            value.decode("latin-1").strip()))
        resp = RawResponse(status, m.group(2).decode("latin-1"), headers, b"")
        body_start = end + 4
        method = methods[len(out)] if methods and len(out) < len(methods) \
            else "GET"
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pos = body_start
        elif (resp.header("transfer-encoding") or "").lower() == "chunked":
            body = b""
            p = body_start
            for _ in range(1 << 20):
                le = data.find(b"\r\n", p)
                if le < 0:
                    return out, data[pos:]
                n = int(data[p:le].split(b";")[0], 16)
                if n == 0:
                    te = data.find(b"\r\n\r\n", le)
                    if te < 0:
                        return out, data[pos:]
                    p = te + 4
                    break
                body += data[le + 2:le + 2 + n]
                p = le + 2 + n + 2
            resp.body = body
            pos = p
        elif resp.header("content-length") is not None:
            n = int(resp.header("content-length"))
            if len(data) < body_start + n:
                return out, data[pos:]
            resp.body = data[body_start:body_start + n]
            pos = body_start + n
        else:
            resp.body = data[body_start:]
            pos = len(data)
        if not (100 <= status < 200):
            out.append(resp)
    return out, data[pos:]


_LOGFMT = re.compile(r'([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_logfmt(line):
    d = {}
    for k, v in _LOGFMT.findall(line):
        if v.startswith('"'):
            v = re.sub(r'\\(.)', r'\1', v[1:-1])
        d[k] = v
    return d
