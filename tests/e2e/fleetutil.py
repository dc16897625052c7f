"""Helpers of the fleet invalidation tests (test_p*): a real redis-server,
the admin API client, s3edgectl, and a fleet of s3edge nodes in front of
the fault origin.

The `redis` and `fleet` fixtures are defined here; a test module imports
them (`from fleetutil import redis, fleet  # noqa: F401`)."""

import http.client
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import harness

TOKEN = "e2e-fleet-token-0123456789"
REDIS_BIN = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def s3edgectl_bin():
    b = os.environ.get("S3EDGECTL_BIN")
    if b:
        return b
    return str(Path(harness.s3edge_bin()).parent / "s3edgectl")


class Redis:
    """redis-server on a free loopback port with its own directory; the
    append-only file makes a restart keep the stream (as a production
    Redis with persistence would)."""

    def __init__(self, workdir, extra=()):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = harness.free_port()
        self.proc = None
        self.extra = [str(a) for a in extra]
        self.start()

    def start(self):
        assert self.proc is None or self.proc.poll() is not None
        log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.dir), "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--protected-mode", "no"] + self.extra,
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True)
        log.close()
        harness.wait_for(lambda: self.proc.poll() is not None
                         or self.ping(), 10, "redis-server to answer")
        assert self.proc.poll() is None, (self.dir / "redis.log").read_text()

    def ping(self):
        try:
            return self.cli("PING") == "PONG"
        except Exception:
            return False

    def cli(self, *args):
        r = subprocess.run([REDIS_CLI, "-p", str(self.port), "--no-raw"]
                           + [str(a) for a in args],
                           capture_output=True, text=True, timeout=10)
        out = r.stdout.strip()
        if out.startswith('"') and out.endswith('"'):
            out = out[1:-1]
        return out

    def cli_raw(self, *args):
        r = subprocess.run([REDIS_CLI, "-p", str(self.port), "--raw"]
                           + [str(a) for a in args],
                           capture_output=True, text=True, timeout=10)
        return r.stdout

    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def kill(self):
        self.stop(signal.SIGKILL)


@pytest.fixture
def redis(tmp_path):
    r = Redis(tmp_path / "redis")
    yield r
    r.kill()


class Admin:
    """The admin API of one node."""

    def __init__(self, port, token=TOKEN):
        self.port = port
        self.token = token

    def request(self, method, path, body=None, token="default", headers=None,
                raw=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = dict(headers or {})
        tok = self.token if token == "default" else token
        if tok is not None:
            h["Authorization"] = "Bearer " + tok
        data = raw if raw is not None else (
            json.dumps(body).encode() if body is not None else None)
        if data is not None:
            h["Content-Type"] = "application/json"
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            text = r.read()
            try:
                doc = json.loads(text) if text else None
            except ValueError:
                doc = None
            return r.status, doc, text
        finally:
            c.close()

    def purge(self, paths=(), tags=(), soft=None):
        body = {}
        if paths:
            body["paths"] = list(paths)
        if tags:
            body["tags"] = list(tags)
        if soft is not None:
            body["soft"] = soft
        st, doc, text = self.request("POST", "/v1/invalidations", body)
        assert st == 202, (st, text)
        assert doc["status"] in ("InProgress", "Completed"), doc
        return doc["id"]

    def inv(self, inv_id):
        st, doc, _ = self.request("GET", "/v1/invalidations/" + inv_id)
        return doc if st == 200 else None

    def wait_completed(self, inv_id, timeout=10):
        return harness.wait_for(
            lambda: (lambda d: d if d and d["status"] == "Completed" else None)(
                self.inv(inv_id)), timeout, "invalidation %s Completed" % inv_id)

    def stats(self):
        st, doc, text = self.request("GET", "/v1/stats")
        assert st == 200, text
        return doc

    def nodes(self):
        st, doc, text = self.request("GET", "/v1/nodes")
        assert st == 200, text
        return doc

    def healthy(self):
        try:
            return self.request("GET", "/healthz", token=None)[0] == 200
        except OSError:
            return False

    def ready(self):
        try:
            st, _, _ = self.request("GET", "/readyz", token=None)
        except OSError:
            return False
        return st == 200


class Node:
    def __init__(self, edge, admin, name, state_dir):
        self.edge = edge
        self.admin = admin
        self.name = name
        self.state_dir = state_dir

    def url(self, path):
        return self.edge.url(path)


class Fleet:
    """Nodes in front of the fault origin sharing one Redis."""

    def __init__(self, edge_factory, fault, tmp_path, redis_url):
        self.make_edge = edge_factory
        self.fault = fault
        self.tmp = Path(tmp_path)
        self.redis_url = redis_url
        self.tokfile = self.tmp / "tokens"
        self.tokfile.write_text("# admin tokens\n%s\n" % TOKEN)

    def start(self, name, wait_ready=True, extra=()):
        state = self.tmp / ("state-" + name)
        state.mkdir(exist_ok=True)
        aport = harness.free_port()
        args = ["--origin", self.fault.origin_url(), "--anonymous",
                "--admin-listen", "127.0.0.1:%d" % aport,
                "--admin-token-file", str(self.tokfile),
                "--node-id", name, "--pop", "test-pop",
                "--state-dir", str(state)]
        if self.redis_url:
            args += ["--redis", self.redis_url]
        e = self.make_edge(args + list(extra), env={})
        a = Admin(aport)
        harness.wait_for(a.healthy, 10, "admin API of %s" % name)
        if wait_ready:
            harness.wait_for(a.ready, 10, "%s ready" % name)
        return Node(e, a, name, state)

    def wait_nodes(self, node, names, timeout=10):
        """Until node's fleet view lists exactly these live nodes."""
        want = sorted(names)
        return harness.wait_for(
            lambda: sorted(n["node"] for n in node.admin.nodes()["nodes"])
            == want, timeout, "fleet view %s" % want)


@pytest.fixture
def fleet(edge, fault, tmp_path, redis):
    return Fleet(edge, fault, tmp_path, redis.url())


def ctl(*args, env=None, timeout=60):
    """Run s3edgectl; returns (exit code, stdout, stderr)."""
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            e[k] = os.environ[k]
    e.update(env or {})
    r = subprocess.run([s3edgectl_bin()] + [str(a) for a in args],
                       capture_output=True, text=True, env=e, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def origin_gets(fault, key):
    return fault.key_stats(key)["GET"]


def percentile(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def now():
    return time.monotonic()


# The head of a YAML config for a node in front of the fault origin (the
# fleet tests add node/admin/redis keys): $listen and $access_log are
# filled by harness.Edge, %(origin)s by the test.
FAULT_CONF_HEAD = """\
listen:
  - $listen
log:
  level: info
  error_log: stderr
  access_log: $access_log
origins:
  - name: f
    endpoint: %(origin)s
    bucket: fault
    credentials:
      source: anonymous
distributions:
  - name: main
    origin: f
"""
