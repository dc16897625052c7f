#!/usr/bin/python3
"""Side-by-side benchmark: s3edge against nginx proxy_cache and Varnish.

Run it through tests/bench/run.sh, which installs the load tools and the
anchors, builds the origin and the burst client, raises the descriptor
limit and then runs this driver.  Everything listens on 127.0.0.1 on ports
picked at run time; every server is started here and stopped at the end;
every load run is bounded in time.  See tests/bench/README.md.
"""

import argparse
import hashlib
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
CLK_TCK = os.sysconf("SC_CLK_TCK")

ORIGIN_DELAY_MS = 50
ORIGIN_RATE = 100 * MiB             # per connection, as S3 streams
ALL_CAPS = {"h1", "h2c", "tls", "range-cache", "coalesce"}
ANCHOR_CAPS = {
    "nginx": ALL_CAPS,
    "nginx-slice": ALL_CAPS - {"h2c", "tls"},
    # Varnish has no TLS of its own (it needs a terminator such as hitch).
    "varnish": ALL_CAPS - {"tls"},
}
PROXIES = ["s3edge", "nginx", "nginx-slice", "varnish", "s3edge-disk",
           "nginx-disk", "varnish-file"]
# The disk-hit rows: the server that stands in each column of the table.
DISK_SYSTEMS = {"s3edge": "s3edge-disk", "nginx": "nginx-disk",
                "varnish": "varnish-file"}
# Memory- and disk-hit key sets: (label, size segment, keys, connections).
# Each request picks one key of the set at random, so that s3edge's small
# memory cache in front of its disk cache cannot keep the set.
HIT_SETS = [("1 KiB", "1K", 10000, 64), ("1 MiB", "1M", 64, 32),
            ("100 MiB", "100M", 6, 8)]
# s3edge-disk: a memory cache far smaller than any set (the disk rows), and
# the larger one it fills its disk with (an object is written to disk only
# when the memory cache could take it whole).
S3EDGE_DISK_MEMORY = "1MiB"
S3EDGE_DISK_FILL_MEMORY = "1GiB"
# Block-store keys for the main s3edge (cold and range scenarios), used
# when the binary knows them (`s3edge -t` on a configuration with them).
S3EDGE_BLOCK_KEYS = [("block_size", "1MiB"), ("readahead_blocks", "8")]

# Measurement durations in seconds: (default, --quick).
DURATIONS = {
    "hot": (5, 2),
    "downloaders": (6, 3),
    "range": (5, 2),
    "ceiling": (4, 2),
    "profile": (5, 2),
}

# Every proxy serves the bucket at its root (s3edge --origin .../bucket, nginx
# proxy_pass .../bucket/, Varnish prepends /bucket), so clients use the same
# URL everywhere; the bench origin itself is asked for /bucket + path.
PATH_1K = "/hot/1K"
PATH_1M = "/hot/1M"
PATH_100M = "/hot/100M"
RANGE_900M = "bytes=%d-%d" % (900 * MiB, 901 * MiB - 1)


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline_s, proc=None):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def run(cmd, timeout, env=None):
    """Runs a bounded command; returns (rc, stdout, stderr)."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout, env=env)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        return -999, (e.stdout or b"").decode(errors="replace") \
            if isinstance(e.stdout, bytes) else (e.stdout or ""), "timeout"
    except OSError as e:
        return -998, "", str(e)


def first_line(cmd):
    rc, out, err = run(cmd, 10)
    text = (out or "") + (err or "")
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "?"


def pct(values, p):
    """Nearest-rank percentile of a non-empty list."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def proc_tree(root):
    """The pid and all its descendants, from /proc."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def hit_path(seg, i):
    """Key i of a memory/disk-hit set: /set/1K/k00042/1K is 1 KiB."""
    return "/set/%s/k%05d/%s" % (seg, i, seg)


def parse_seg(seg):
    """Bytes of a size segment: 1K, 100M."""
    return int(seg[:-1]) * {"K": KiB, "M": MiB, "G": GiB}[seg[-1]]


def fs_type(path):
    """The filesystem type a path is on, from /proc/mounts."""
    best, kind = "", "?"
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt, typ = line.split()[:3]
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) \
                        and len(mnt) > len(best):
                    best, kind = mnt, typ
    except OSError:
        pass
    return kind


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                st = f.read()
            fields = st[st.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def all_cpu():
    """{pid: (command, cpu ticks)} for every process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        out[int(d)] = (st[st.index("(") + 1:st.rindex(")")],
                       int(fields[11]) + int(fields[12]))
    return out


def socket_fds(pids):
    """Open sockets held by these processes: the connections they accepted."""
    n = 0
    for p in pids:
        try:
            for fd in os.listdir("/proc/%d/fd" % p):
                try:
                    if os.readlink("/proc/%d/fd/%s" % (p, fd)).startswith(
                            "socket:"):
                        n += 1
                except OSError:
                    pass
        except OSError:
            pass
    return n


def machine_busy_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal: user, nice, system
    # and steal (the hypervisor running others).  Interrupt time is left
    # out: loopback traffic is processed there and is the bench's own.
    return v[0] + v[1] + v[2] + v[7]


def own_ticks():
    t = os.times()
    return int(round((t.user + t.system + t.children_user +
                      t.children_system) * CLK_TCK))


def established(port):
    rc, out, _ = run(["ss", "-Htn", "state", "established",
                      "( sport = :%d )" % port], 20)
    return len(out.splitlines()) if rc == 0 else -1


def http_get(port, path, headers=None, timeout=120, tls=False):
    """GET through http.client; returns (status, headers, sha256, length)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        h = hashlib.sha256()
        n = 0
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        return r.status, dict(r.getheaders()), h.hexdigest(), n
    finally:
        conn.close()


class Server:
    """A server process started by the bench, in its own process group."""

    def __init__(self, bench, name, cmd, ports, stderr_path, env=None):
        self.bench = bench
        self.name = name
        self.cmd = cmd
        self.ports = ports
        self.stderr_path = stderr_path
        self.env = env
        self.proc = None
        self.restarts = 0
        self.killed_for = None

    def start(self, wait_s=20):
        self.killed_for = None
        err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=err, stderr=err,
                                     start_new_session=True, env=self.env)
        err.close()
        self.bench.note_pid(self.proc.pid)
        for port in self.ports.values():
            if not wait_port(port, wait_s, self.proc):
                return False
        return True

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        return proc_tree(self.proc.pid) if self.alive() else []

    def stderr_tail(self, n=15):
        try:
            with open(self.stderr_path, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
            return lines[-n:]
        except OSError:
            return []

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait(timeout=10)


class MemoryRunaway(Exception):
    """A server's RSS passed the bench's safety limit and it was killed."""


class Variant:
    def __init__(self, name, need, metrics, fn, systems=None, check=None):
        self.name = name
        self.need = need            # capability needed, or None
        self.metrics = metrics      # [(key, label, "up"|"down"|"info")]
        self.fn = fn                # fn(system, round) -> (status, metrics)
        self.systems = systems      # overrides the scenario's system list
        self.check = check          # fn() -> None or reason to skip


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.rounds = 1 if args.quick and args.rounds is None \
            else (args.rounds or 3)
        self.budget_mib = args.budget_mib
        self.work = os.environ.get("BENCH_WORK") or os.path.join(
            "/tmp", "s3edge-bench-%d" % os.getpid())
        self.build = os.environ.get("BENCH_BUILD") or self.work
        self.shm = os.environ.get("BENCH_SHM") or os.path.join(
            self.work, "shm")
        self.run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self.results = []
        self.notes = []
        self.servers = {}
        self.broken = {}            # (scenario, system) -> reason
        self.profiles = {}
        self.started = time.monotonic()
        self.s3edge_bin = self.find_s3edge()
        self.caps = self.read_caps()
        self.nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.digests = {}
        self.peak_rss = {}
        # A server that outgrows its budget this much is killed before it
        # can take the machine down; the report says so.
        self.rss_limit_kib = 3 * self.budget_mib * 1024
        self.cpu_at_start = all_cpu()
        self.busy_at_start = machine_busy_ticks()
        self.own_at_start = own_ticks()

    # ---------------------------------------------------------------- setup

    def dur(self, kind):
        return DURATIONS[kind][1 if self.quick else 0]

    def note_pid(self, pid):
        with open(os.path.join(self.work, "pids"), "a") as f:
            f.write("%d\n" % pid)

    def find_s3edge(self):
        cand = os.environ.get("S3EDGE_BIN") or os.path.join(
            REPO, "build", "edge", "s3edge")
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            # A private copy: a rebuild in the tree during the run must not
            # change the binary between rounds (or hide its symbols from
            # the profiler).
            os.makedirs(self.work, exist_ok=True)
            copy = os.path.join(self.work, "s3edge")
            shutil.copy2(cand, copy)
            self.s3edge_origin_path = cand
            return copy
        self.missing_s3edge = cand
        return None

    def read_caps(self):
        """s3edge's capability list: {cap: [extra args]}."""
        caps = {}
        env = os.environ.get("S3EDGE_CAPS")
        if env is not None:
            for c in env.split():
                caps[c] = []
        else:
            with open(os.path.join(HERE, "conf", "s3edge-caps")) as f:
                for line in f:
                    line = line.split("#", 1)[0].split()
                    if line:
                        caps[line[0]] = line[1:]
        return caps

    def has(self, system, cap):
        if cap is None:
            return True
        if system.startswith("s3edge"):
            return cap in self.caps
        return cap in ANCHOR_CAPS.get(system, ALL_CAPS)

    def setup(self):
        os.makedirs(self.work, exist_ok=True)
        os.chmod(self.work, 0o755)
        os.makedirs(self.shm, exist_ok=True)
        os.chmod(self.shm, 0o755)
        for d in ("nginx", "tls", "static/hot"):
            os.makedirs(os.path.join(self.work, d), exist_ok=True)
        rc, _, err = run(["openssl", "req", "-x509", "-newkey", "ec",
                          "-pkeyopt", "ec_paramgen_curve:prime256v1",
                          "-nodes", "-days", "2", "-subj", "/CN=localhost",
                          "-keyout", os.path.join(self.work, "tls/key.pem"),
                          "-out", os.path.join(self.work, "tls/cert.pem")],
                         30)
        if rc != 0:
            raise RuntimeError("openssl: " + err)
        self.start_origin()
        self.start_nginx()
        self.start_varnish()
        self.start_s3edge()
        # The static ceiling serves the very bytes of the 1 KiB object.
        c = http.client.HTTPConnection("127.0.0.1", self.oport["direct"])
        c.request("GET", "/bucket" + PATH_1K)
        body = c.getresponse().read()
        c.close()
        with open(os.path.join(self.work, "static" + PATH_1K), "wb") as f:
            f.write(body)

    def start_origin(self):
        portfile = os.path.join(self.work, "origin.ports")
        labels = ["%s:%d:%d" % (s, ORIGIN_DELAY_MS, ORIGIN_RATE)
                  for s in PROXIES] + ["direct:0:0"]
        cmd = [os.path.join(self.build, "origin"), "-w", "2",
               "-o", os.path.join(self.work, "origin.log"),
               "-p", portfile, "-T", "3600"]
        for lab in labels:
            cmd += ["-l", lab]
        srv = Server(self, "origin", cmd, {},
                     os.path.join(self.work, "origin.err"))
        srv.start()
        end = time.monotonic() + 10
        while not os.path.exists(portfile) and time.monotonic() < end:
            time.sleep(0.05)
        if not os.path.exists(portfile):
            raise RuntimeError("origin did not start: %s" %
                               srv.stderr_tail())
        self.oport = {}
        with open(portfile) as f:
            for line in f:
                lab, port = line.split()
                self.oport[lab] = int(port)
        srv.ports = {"main": self.oport["direct"]}
        self.servers["origin"] = srv

    def template(self, name, subst, dest):
        with open(os.path.join(HERE, "conf", name)) as f:
            text = f.read()
        for k, v in subst.items():
            text = text.replace("@%s@" % k, str(v))
        left = re.findall(r"@[A-Z_]+@", text)
        if left:
            raise RuntimeError("unfilled %s in %s" % (left, name))
        with open(dest, "w") as f:
            f.write(text)

    def start_nginx(self):
        ports = {"h1": free_port(), "h2c": free_port(), "tls": free_port(),
                 "slice": free_port(), "static": free_port(),
                 "disk": free_port()}
        conf = os.path.join(self.work, "nginx", "nginx.conf")
        self.template("nginx.conf.in", {
            "WORK": self.work, "CACHE": os.path.join(self.shm, "nginx"),
            "WORKERS": os.cpu_count() or 2, "NOFILE": self.nofile,
            "WORKER_CONNECTIONS": max(1024, self.nofile - 100),
            "BUDGET_MIB": self.budget_mib,
            "ORIGIN_PLAIN": self.oport["nginx"],
            "ORIGIN_SLICE": self.oport["nginx-slice"],
            "ORIGIN_DISK": self.oport["nginx-disk"],
            "DISK_CACHE": os.path.join(self.work, "nginx-disk"),
            "PORT_DISK": ports["disk"],
            "PORT_H1": ports["h1"], "PORT_H2C": ports["h2c"],
            "PORT_TLS": ports["tls"], "PORT_SLICE": ports["slice"],
            "PORT_STATIC": ports["static"]}, conf)
        os.makedirs(os.path.join(self.shm, "nginx"), exist_ok=True)
        cmd = ["nginx", "-p", os.path.join(self.work, "nginx") + "/",
               "-e", os.path.join(self.work, "nginx", "error.log"),
               "-c", conf, "-g", "daemon off;"]
        srv = Server(self, "nginx", cmd, ports,
                     os.path.join(self.work, "nginx", "stderr"))
        if not srv.start():
            raise RuntimeError("nginx did not start: %s" %
                               srv.stderr_tail())
        self.servers["nginx"] = srv

    def start_varnish(self, name="varnish", storage=None):
        """Varnish with malloc storage, or the storage given (-s)."""
        port = free_port()
        vcl = os.path.join(self.work, name + ".vcl")
        self.template("varnish.vcl.in",
                      {"ORIGIN_VARNISH": self.oport[name]}, vcl)
        os.chmod(vcl, 0o644)
        # Thread-per-delivery: allow enough threads for the downloaders.
        cmd = ["varnishd", "-F", "-n", os.path.join(self.work, name),
               "-a", "127.0.0.1:%d" % port, "-f", vcl,
               "-s", storage or "malloc,%dM" % self.budget_mib, "-t", "3600",
               "-p", "feature=+http2", "-p", "thread_pools=2",
               "-p", "thread_pool_min=100", "-p", "thread_pool_max=6000",
               "-p", "thread_queue_limit=2000", "-p", "listen_depth=4096",
               "-p", "timeout_idle=65"]
        srv = Server(self, name, cmd, {"h1": port, "h2c": port},
                     os.path.join(self.work, name + ".stderr"))
        if not srv.start(wait_s=60):
            raise RuntimeError("varnishd did not start: %s" %
                               srv.stderr_tail())
        self.servers[name] = srv

    def s3edge_yaml(self, name, label, ports, cache, level="warn"):
        """Writes the configuration of one s3edge; returns its path.

        A file rather than the command line: the cache keys of the block
        store (block_size, readahead_blocks) have no flags.
        """
        lines = ["# Written by tests/bench/bench.py for one run.",
                 "listen:", "  - 127.0.0.1:%d" % ports["h1"]]
        if "tls" in ports:
            lines += ["  - address: 127.0.0.1:%d" % ports["tls"],
                      "    tls:", "      certificates:",
                      "        - cert: %s" % os.path.join(self.work,
                                                          "tls/cert.pem"),
                      "          key: %s" % os.path.join(self.work,
                                                         "tls/key.pem")]
        lines += ["log:", "  level: %s" % level,
                  "  error_log: %s" % os.path.join(self.work, name + ".log"),
                  "  access_log: off", "cache:"]
        lines += ["  %s: %s" % kv for kv in cache]
        lines += ["origins:", "  - name: bench",
                  "    endpoint: http://127.0.0.1:%d" % self.oport[label],
                  "    bucket: bucket", "    addressing: path",
                  "    credentials:", "      source: anonymous",
                  "distributions:", "  - name: bench", '    hosts: ["*"]',
                  "    origin: bench", "    default_ttl: 1h", ""]
        path = os.path.join(self.work, name + ".yaml")
        with open(path, "w") as f:
            f.write("\n".join(lines))
        return path

    def s3edge_block_keys(self):
        """The block-store keys when this s3edge knows them, else []."""
        probe = self.s3edge_yaml("s3edge-probe", "s3edge",
                                 {"h1": free_port()},
                                 [("memory_size", "64MiB")] +
                                 S3EDGE_BLOCK_KEYS)
        rc, out, err = run([self.s3edge_bin, "-t", "-c", probe], 20)
        os.unlink(probe)
        keys = ", ".join("cache.%s: %s" % kv for kv in S3EDGE_BLOCK_KEYS)
        if rc == 0:
            self.notes.append("s3edge runs with %s" % keys)
            return list(S3EDGE_BLOCK_KEYS)
        why = (out + err).strip().replace(probe, "its configuration")
        self.notes.append("s3edge does not take %s yet (`s3edge -t`: %s): "
                          "left out" % (keys, why[-160:]))
        return []

    def start_s3edge(self):
        if self.s3edge_bin is None:
            where = os.path.relpath(self.missing_s3edge, REPO)
            msg = "s3edge binary absent (%s; set S3EDGE_BIN): s3edge " \
                  "columns say \"absent\"" % (
                      "$S3EDGE_BIN" if where.startswith("..") else where)
            log(msg)
            self.notes.append(msg)
            return
        ports = {"h1": free_port()}
        if "h2c" in self.caps:
            ports["h2c"] = ports["h1"]
        rc, out, err = run([self.s3edge_bin, "-h"], 10)
        helptext = out + err
        for cap, extra in list(self.caps.items()):
            flags = [a for a in extra if a.startswith("--")]
            lacking = [f for f in flags if f not in helptext]
            if cap != "tls" and lacking:
                del self.caps[cap]
                self.notes.append("s3edge-caps lists %s but `s3edge -h` "
                                  "has no %s: reported as not yet" % (
                                      cap, ", ".join(lacking)))
        if "tls" in self.caps:
            # The TLS listener is in the configuration file.
            ports["tls"] = free_port()
        self.s3edge_cache = [
            ("memory_size", "%dMiB" % self.budget_mib),
            ("max_object_size", "%dMiB" % self.budget_mib)] + \
            self.s3edge_block_keys()
        conf = self.s3edge_yaml("s3edge", "s3edge", ports, self.s3edge_cache)
        cmd = [self.s3edge_bin, "-c", conf]
        for cap, extra in self.caps.items():
            if cap != "tls":
                cmd += extra
        srv = Server(self, "s3edge", cmd, ports,
                     os.path.join(self.work, "s3edge.stderr"))
        self.servers["s3edge"] = srv
        if not srv.start():
            msg = "s3edge did not start (exit %s): %s" % (
                srv.proc.poll(), " | ".join(srv.stderr_tail(5)))
            log(msg)
            self.notes.append(msg)
            return
        for cap, url in (("h2c", "http://127.0.0.1:%d/" % ports["h1"]),
                         ("tls", "https://127.0.0.1:%d/" % ports.get("tls",
                                                                  0))):
            if cap not in self.caps:
                continue
            rc, out, err = run(["h2load", "-n", "1", "-c", "1", url], 20)
            if not re.search(r"1 done", out) or \
                    "Application protocol: h2" not in out:
                del self.caps[cap]
                self.notes.append("s3edge-caps lists %s but h2load could "
                                  "not speak HTTP/2 to s3edge there: "
                                  "reported as not yet" % cap)

    def server_ticks(self):
        """{pid: cpu ticks} of every process of every server."""
        out = {}
        for srv in self.servers.values():
            for p in srv.pids():
                out[p] = cpu_ticks([p])
        return out

    def other_load(self, elapsed):
        """Cores used during the run by processes the bench did not start.

        All busy CPU time of the machine (/proc/stat) minus this driver
        and its waited-for children (the load tools) minus the servers.
        Another job on the machine shows up here and nowhere else.
        """
        busy = machine_busy_ticks() - self.busy_at_start
        ours = own_ticks() - self.own_at_start
        for srv in self.servers.values():
            ours += cpu_ticks(srv.pids())
        other = max(0.0, (busy - ours) / CLK_TCK / elapsed)
        top = []
        end = all_cpu()
        for pid, (comm, ticks) in end.items():
            start = self.cpu_at_start.get(pid)
            if pid != os.getpid() and start is not None and \
                    start[0] == comm and ticks > start[1]:
                top.append((comm, (ticks - start[1]) / CLK_TCK / elapsed))
        top = sorted(top, key=lambda kv: -kv[1])[:3]
        return other, top

    def stop_all(self):
        for name in ("s3edge", "s3edge-disk", "varnish", "varnish-file",
                     "nginx", "origin"):
            srv = self.servers.get(name)
            if srv is not None:
                srv.stop()

    # --------------------------------------------------------------- origin

    def origin_stats(self):
        c = http.client.HTTPConnection("127.0.0.1", self.oport["direct"],
                                       timeout=10)
        try:
            c.request("GET", "/_bench/stats")
            return json.loads(c.getresponse().read())
        finally:
            c.close()

    def origin_object(self, label, path):
        """The origin's counts for one object as one proxy fetched it:
        requests, body bytes and fetches per 1 MiB block."""
        c = http.client.HTTPConnection("127.0.0.1", self.oport["direct"],
                                       timeout=10)
        try:
            c.request("GET", "/_bench/object/%s/bucket%s" % (label, path))
            return json.loads(c.getresponse().read())
        finally:
            c.close()

    def origin_fast(self, on):
        c = http.client.HTTPConnection("127.0.0.1", self.oport["direct"],
                                       timeout=10)
        try:
            c.request("GET", "/_bench/fast/%d" % (1 if on else 0))
            c.getresponse().read()
        finally:
            c.close()

    def guard(self, system):
        """Tracks the server's peak RSS; raises if the watchdog killed it."""
        srv = self.server_of(system)
        if srv is not None and srv.alive():
            r = rss_kib(srv.pids())
            self.peak_rss[system] = max(self.peak_rss.get(system, 0), r)
        if srv is not None and srv.killed_for is not None:
            raise MemoryRunaway(srv.killed_for)

    def watchdog(self, stop):
        """Kills any server whose RSS passes the limit, all run long.

        A server that keeps fetching after its clients left can grow
        between measurements too; this keeps the machine alive whatever
        happens, and the kill is reported.
        """
        while not stop.wait(0.5):
            for name, srv in list(self.servers.items()):
                if srv.proc is None or not srv.alive():
                    continue
                r = rss_kib(srv.pids())
                if r <= self.rss_limit_kib:
                    continue
                srv.killed_for = (
                    "RSS reached %.1f GiB, past the bench's limit of %.1f "
                    "GiB (3 x the %d MiB cache budget): killed" % (
                        r / 1048576.0, self.rss_limit_kib / 1048576.0,
                        self.budget_mib))
                try:
                    os.killpg(srv.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.notes.append("%s: %s" % (name, srv.killed_for))
                log("%s: %s" % (name, srv.killed_for))

    def settle(self, label, max_s, quiet_s=0.5):
        """Waits until the origin has nothing in flight for this system."""
        end = time.monotonic() + max_s
        last, since = None, time.monotonic()
        while time.monotonic() < end:
            self.guard(label)
            st = self.origin_stats()[label]
            if st["active"] == 0 and st["bytes"] == last and \
                    time.monotonic() - since >= quiet_s:
                return st
            if st["bytes"] != last:
                last, since = st["bytes"], time.monotonic()
            time.sleep(0.1)
        return self.origin_stats()[label]

    def after_cold(self, system, st, waited_s):
        """Restarts a system still pulling from the origin after a run.

        Its leftover transfers would load the machine during the next
        system's measurement; the report names it.
        """
        if st["active"] == 0:
            return
        msg = "%s still had %d origin transfers in flight %d s after its " \
              "clients finished (origin total so far %.0f MiB); restarted " \
              "so that they do not load the next measurement" % (
                  system, st["active"], waited_s, st["bytes"] / MiB)
        self.notes.append(msg)
        log(msg)
        srv = self.server_of(system)
        srv.stop()
        srv.start(wait_s=60)

    def quiet_origin(self, label, max_s=30):
        """Origin counters once nothing of this system is in flight there.

        A system that keeps pulling from the origin after its clients left
        would otherwise bill those bytes to the next measurement.
        """
        st = self.settle(label, max_s)
        if st["active"] != 0:
            self.notes.append(
                "%s still had %d origin transfers in flight %d s after the "
                "previous measurement (its origin bytes keep growing)" % (
                    label, st["active"], max_s))
        return st

    def origin_digest(self, path):
        if path not in self.digests:
            st, _, dig, n = http_get(self.oport["direct"], "/bucket" + path)
            self.digests[path] = (st, dig, n)
        return self.digests[path]

    # ------------------------------------------------------------- systems

    def port(self, system, kind="h1"):
        if system == "nginx-slice":
            return self.servers["nginx"].ports["slice"]
        if system == "nginx-disk":
            return self.servers["nginx"].ports["disk"]
        if system == "nginx-static":
            return self.servers["nginx"].ports["static"]
        if system == "origin-direct":
            return self.oport["direct"]
        return self.servers[system].ports[kind]

    def server_of(self, system):
        if system in ("nginx-slice", "nginx-static", "nginx-disk"):
            return self.servers["nginx"]
        if system == "origin-direct":
            return self.servers["origin"]
        return self.servers.get(system)

    def warm(self, scenario, system, paths):
        """Fills the cache (origin in fast mode) and checks the bytes."""
        if not self.has(system, "h1"):
            return
        srv = self.server_of(system)
        if srv is None or not srv.alive():
            return
        self.origin_fast(True)
        try:
            for path in paths:
                want = self.origin_digest(path)
                for i in range(2):
                    st, hdr, dig, n = http_get(self.port(system), path)
                    if (st, dig, n) != want:
                        self.broken[(scenario, system)] = \
                            "wrong answer while warming %s: status %d, " \
                            "%d bytes (want %d), digest %s" % (
                                path, st, n, want[2],
                                "ok" if dig == want[1] else "differs")
                        return
        except (OSError, http.client.HTTPException) as e:
            self.broken[(scenario, system)] = "warm-up of %s failed: %s" % (
                paths, e)
        finally:
            self.origin_fast(False)

    # ---------------------------------------------------------- load tools

    def wrk(self, system, path, conns, dur, env_extra=None, hot=True,
            kind="h1", timeout_s=10):
        port = self.port(system, kind)
        srv = self.server_of(system)
        label = system if system in PROXIES else None
        env = dict(os.environ)
        env.update(env_extra or {})
        if system == "origin-direct":
            path = "/bucket" + path
        cmd = ["wrk", "-t", str(min(2, conns)), "-c", str(conns),
               "-d", "%ds" % dur, "--timeout", "%ds" % timeout_s,
               "-s", os.path.join(HERE, "wrk.lua"),
               "http://127.0.0.1:%d%s" % (port, path)]
        before = self.origin_stats()
        pids = srv.pids() if srv else []
        cpu0, t0 = cpu_ticks(pids), time.monotonic()
        rc, out, err = run(cmd, dur + 60, env)
        elapsed = time.monotonic() - t0
        cpu1 = cpu_ticks(pids)
        after = self.origin_stats()
        m = self.parse_wrk(out)
        if m is None:
            return "failed", {"error": "wrk rc=%d: %s" % (
                rc, (err or out)[-300:])}
        m["cpu_cores"] = (cpu1 - cpu0) / CLK_TCK / elapsed
        status = "ok"
        if label:
            m["origin_requests"] = after[label]["requests"] - \
                before[label]["requests"]
            if hot and m["origin_requests"] > 0:
                status = "not cached"
                m["error"] = "%d origin requests during the timed run" % (
                    m["origin_requests"])
        if m["requests"] == 0 or m["err_status"] > 0.01 * m["requests"]:
            status = "errors"
            m["error"] = "%d responses, %d not 2xx/3xx, socket errors " \
                "connect %d read %d write %d timeout %d" % (
                    m["requests"], m["err_status"], m["err_connect"],
                    m["err_read"], m["err_write"], m["err_timeout"])
        return status, m

    @staticmethod
    def parse_wrk(out):
        for line in out.splitlines():
            if line.startswith("BENCHJSON "):
                r = json.loads(line[len("BENCHJSON "):])
                secs = r["duration_us"] / 1e6
                r["rps"] = r["requests"] / secs
                r["gbps"] = r["bytes"] / secs / 1e9
                for k in ("p50", "p90", "p99", "max"):
                    r[k + "_ms"] = r.pop(k + "_us") / 1000.0
                return r
        return None

    def h2load(self, system, path, conns, streams, dur, tls):
        kind = "tls" if tls else "h2c"
        port = self.port(system, kind)
        srv = self.server_of(system)
        logf = os.path.join(self.work, "h2load.log")
        url = "%s://127.0.0.1:%d%s" % ("https" if tls else "http", port, path)
        cmd = ["h2load", "-c", str(conns), "-m", str(streams), "-t", "2",
               "-D", str(dur), "--log-file=" + logf, url]
        before = self.origin_stats()
        pids = srv.pids()
        cpu0, t0 = cpu_ticks(pids), time.monotonic()
        rc, out, err = run(cmd, dur + 60)
        elapsed = time.monotonic() - t0
        cpu1 = cpu_ticks(pids)
        after = self.origin_stats()
        m = {}
        g = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
        r = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, "
                      r"(\d+) succeeded, (\d+) failed, (\d+) errored", out)
        s = re.search(r"status codes: (\d+) 2xx", out)
        if not g or not r:
            return "failed", {"error": "h2load rc=%d: %s" % (
                rc, (out + err)[-300:])}
        m["rps"] = float(g.group(3))
        m["requests"] = int(r.group(4))
        m["failed"] = int(r.group(5)) + int(r.group(6))
        m["ok_2xx"] = int(s.group(1)) if s else 0
        lat = []
        try:
            with open(logf) as f:
                for line in f:
                    parts = line.split("\t")
                    if len(parts) >= 3:
                        lat.append(int(parts[2]))
            os.unlink(logf)
        except OSError:
            pass
        if lat:
            m["p50_ms"] = pct(lat, 50) / 1000.0
            m["p99_ms"] = pct(lat, 99) / 1000.0
        m["cpu_cores"] = (cpu1 - cpu0) / CLK_TCK / elapsed
        m["origin_requests"] = after[system]["requests"] - \
            before[system]["requests"]
        status = "ok"
        if m["origin_requests"] > 0:
            status = "not cached"
        if m["requests"] == 0 or m["ok_2xx"] < 0.99 * m["requests"]:
            status = "errors"
        return status, m

    def burst(self, system, path, n, timeout, headers=()):
        cmd = [os.path.join(self.build, "burst"), "-p",
               str(self.port(system)), "-u", path, "-c", str(n), "-t",
               str(timeout)]
        for h in headers:
            cmd += ["-H", h]
        out_path = os.path.join(self.work, "burst.out")
        with open(out_path, "w") as out:
            p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE,
                                 start_new_session=True)
            self.note_pid(p.pid)
            end = time.monotonic() + timeout + 30
            try:
                while p.poll() is None and time.monotonic() < end:
                    self.guard(system)
                    time.sleep(0.25)
            finally:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                err = p.communicate()[1].decode(errors="replace")
        if p.returncode != 0:
            raise RuntimeError("burst rc=%d: %s" % (p.returncode, err[-300:]))
        with open(out_path) as f:
            return json.loads(f.read())

    # ----------------------------------------------------------- scenarios

    def restart(self, system, warm):
        """A fresh server process with a warm cache.

        Memory that earlier runs left in a process (grown thread pools,
        allocator caches) would otherwise sit in the baseline and hide the
        memory each new connection costs.
        """
        srv = self.server_of(system)
        srv.stop()
        if not srv.start(wait_s=60):
            raise RuntimeError("%s did not restart: %s" % (
                system, " | ".join(srv.stderr_tail(5))))
        self.warm("downloaders", system, warm)
        if ("downloaders", system) in self.broken:
            raise RuntimeError(self.broken.pop(("downloaders", system)))
        time.sleep(1)

    def sc_downloaders(self, system, conns, dur):
        srv = self.server_of(system)
        port = self.port(system)
        self.restart(system, [PATH_100M])
        pids = srv.pids()
        base = rss_kib(pids)
        base_socks = socket_fds(pids)
        cmd = ["wrk", "-t", "2", "-c", str(conns), "-d", "%ds" % dur,
               "--timeout", "60s", "-s", os.path.join(HERE, "wrk.lua"),
               "http://127.0.0.1:%d%s" % (port, PATH_100M)]
        before = self.origin_stats()
        cpu0, t0 = cpu_ticks(pids), time.monotonic()
        out_path = os.path.join(self.work, "wrk-dl.out")
        with open(out_path, "w") as out:
            p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
            self.note_pid(p.pid)
            peak_rss, peak_est, peak_socks, samples = 0, 0, 0, []
            end = t0 + dur + 60
            while p.poll() is None and time.monotonic() < end:
                time.sleep(0.5)
                t = time.monotonic() - t0
                if t < 0.3 * dur or t > dur:
                    continue
                pids = srv.pids() or pids
                self.guard(system)
                r, e = rss_kib(pids), established(port)
                k = socket_fds(pids) - base_socks
                samples.append((round(t, 1), r, e, k))
                peak_rss, peak_est = max(peak_rss, r), max(peak_est, e)
                peak_socks = max(peak_socks, k)
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        elapsed = time.monotonic() - t0
        cpu1 = cpu_ticks(srv.pids() or pids)
        after = self.origin_stats()
        with open(out_path) as f:
            m = self.parse_wrk(f.read())
        if m is None:
            return "failed", {"error": "wrk produced no result"}
        m["rss_base_kib"] = base
        m["rss_peak_kib"] = peak_rss
        # Established counts the kernel's accept queue too; the server's
        # own socket descriptors count what it really holds.
        m["conns_established"] = peak_est
        m["conns_accepted"] = peak_socks
        m["rss_kib_per_conn"] = (peak_rss - base) / peak_socks \
            if peak_socks > 0 else None
        m["samples"] = samples
        m["cpu_cores"] = (cpu1 - cpu0) / CLK_TCK / elapsed
        m["origin_requests"] = after[system]["requests"] - \
            before[system]["requests"]
        status = "ok"
        if m["origin_requests"] > 0:
            status = "not cached"
        if m["bytes"] == 0 or m["err_status"] > 0:
            status = "errors"
        return status, m

    def sc_cold_coalesce(self, system, rnd, clients=200):
        path = "/cold/%s-r%d-%s-c%d/100M" % (self.run_id, rnd, system,
                                             clients)
        before = self.quiet_origin(system)
        self.peak_rss[system] = 0
        res = self.burst(system, path, clients, 60)
        after = self.settle(system, 20)
        self.after_cold(system, after, 20)
        reqs = res["requests"]
        ok = [r for r in reqs if r["complete"] and r["status"] == 200 and
              r["bytes"] == 100 * MiB]
        obj = self.origin_object(system, path)
        m = {"clients": len(reqs), "ok_clients": len(ok),
             "origin_requests": after["requests"] - before["requests"],
             "origin_mib": (after["bytes"] - before["bytes"]) / MiB,
             "max_block_fetches": obj["max_fetches_per_block"],
             "blocks_fetched_twice": obj["blocks_fetched_twice"],
             "peak_rss_mib": self.peak_rss.get(system, 0) / 1024.0}
        if ok:
            ttfb = [r["ttfb_ms"] for r in ok]
            ttlb = [r["ttlb_ms"] for r in ok]
            m.update(ttfb_p50_ms=pct(ttfb, 50), ttfb_p99_ms=pct(ttfb, 99),
                     ttlb_p50_ms=pct(ttlb, 50), ttlb_max_ms=max(ttlb))
        bad = [r for r in reqs if r not in ok]
        if bad:
            m["failures"] = bad[:5]
            sizes = sorted({r["bytes"] for r in bad})
            m["error"] = "%d of %d clients complete after %s s; the others " \
                "got status %s and %s bytes" % (
                    len(ok), len(reqs), 60 if res["timeout"] else "<60",
                    sorted({r["status"] for r in bad}),
                    sizes if len(sizes) <= 3 else "%d..%d" % (sizes[0],
                                                             sizes[-1]))
        return ("ok" if len(ok) == len(reqs) else "errors"), m

    def sc_cold_range(self, system, rnd):
        path = "/range-cold/%s-r%d-%s/1G" % (self.run_id, rnd, system)
        before = self.quiet_origin(system)
        self.peak_rss[system] = 0
        res = self.burst(system, path, 1, 40, ["Range: " + RANGE_900M])
        after = self.settle(system, 20, quiet_s=1.0)
        self.after_cold(system, after, 20)
        r = res["requests"][0]
        obj = self.origin_object(system, path)
        m = {"status": r["status"], "bytes": r["bytes"],
             "ttfb_ms": r["ttfb_ms"], "latency_ms": r["ttlb_ms"],
             "origin_requests": after["requests"] - before["requests"],
             "origin_mib": (after["bytes"] - before["bytes"]) / MiB,
             "origin_blocks": obj["blocks_fetched"],
             "peak_rss_mib": self.peak_rss.get(system, 0) / 1024.0}
        good = r["complete"] and r["status"] == 206 and r["bytes"] == MiB
        if not good:
            m["error"] = "status %d, %d bytes, complete=%s" % (
                r["status"], r["bytes"], r["complete"])
        return ("ok" if good else "errors"), m

    # ------------------------------------------------ memory and disk hits

    def hit_paths(self):
        return [hit_path(seg, i) for _, seg, n, _ in HIT_SETS
                for i in range(n)]

    def start_s3edge_disk(self, memory):
        """s3edge with a memory cache of this size in front of its disk.

        The disk directory survives a restart: the disk rows restart it
        with a small memory cache after it filled its disk.
        """
        srv = self.servers.get("s3edge-disk")
        if srv is not None:
            srv.stop()
        ports = {"h1": free_port()}
        cache = [("memory_size", memory), ("max_object_size", "1GiB"),
                 ("disk_path", os.path.join(self.work, "s3edge-disk")),
                 ("disk_size", "4GiB")]
        # info: the SIGUSR1 counters line is logged at that level.
        conf = self.s3edge_yaml("s3edge-disk", "s3edge-disk", ports, cache,
                                level="info")
        srv = Server(self, "s3edge-disk", [self.s3edge_bin, "-c", conf],
                     ports, os.path.join(self.work, "s3edge-disk.stderr"))
        self.servers["s3edge-disk"] = srv
        if not srv.start(wait_s=60):
            raise RuntimeError("s3edge-disk did not start: %s" % " | ".join(
                srv.stderr_tail(5)))
        return srv

    def s3edge_counters(self, name):
        """s3edge's counters: SIGUSR1, then its logfmt line in the log."""
        srv = self.servers[name]
        path = os.path.join(self.work, name + ".log")
        start = os.path.getsize(path) if os.path.exists(path) else 0
        os.kill(srv.proc.pid, signal.SIGUSR1)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with open(path, "rb") as f:
                f.seek(start)
                text = f.read().decode(errors="replace")
            for line in text.splitlines():
                mm = re.search(r"stats (requests=\S+.*)$", line)
                if mm:
                    return {k: int(v) for k, v in re.findall(
                        r"(\w+)=(\d+)", mm.group(1))}
            time.sleep(0.1)
        raise RuntimeError("%s wrote no counters line after SIGUSR1" % name)

    def warm_keys(self, scenario, system, paths, threads):
        """Fills a cache with many keys over keep-alive connections.

        The origin is in fast mode; the bytes of every 500th key and of
        every key of 1 MiB or more are checked against the origin's.
        """
        port = self.port(system)
        errors = []
        todo = list(enumerate(paths))

        def check(i, path):
            return i % 500 == 0 or not path.endswith("K")

        for i, path in todo:
            if check(i, path):
                self.origin_digest(path)

        def worker(part):
            conn = None
            for i, path in part:
                if errors:
                    return
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", port,
                                                          timeout=120)
                    conn.request("GET", path)
                    r = conn.getresponse()
                    h = hashlib.sha256() if check(i, path) else None
                    n = 0
                    while True:
                        chunk = r.read(1 << 20)
                        if not chunk:
                            break
                        n += len(chunk)
                        if h:
                            h.update(chunk)
                    if r.status != 200 or (
                            h and (200, h.hexdigest(), n) !=
                            self.digests[path]):
                        errors.append("%s: status %d, %d bytes%s" % (
                            path, r.status, n, ", wrong bytes" if h else ""))
                    if r.will_close:
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException) as e:
                    errors.append("%s: %s" % (path, e))
            if conn is not None:
                conn.close()

        self.origin_fast(True)
        try:
            ts = [threading.Thread(target=worker, args=(todo[k::threads],))
                  for k in range(threads)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        finally:
            self.origin_fast(False)
        if errors:
            self.broken[(scenario, system)] = "warming %d keys: %s" % (
                len(paths), "; ".join(errors[:3]))
        return not errors

    def check_cached(self, scenario, system, path, want):
        """The proxy says X-Cache: HIT for a warmed key (nginx, Varnish)."""
        st, hdr, dig, n = http_get(self.port(system), path)
        got = hdr.get("X-Cache") or hdr.get("x-cache")
        if st != 200 or got != want:
            self.broken[(scenario, system)] = \
                "after warming, %s answered %d with X-Cache: %s" % (
                    path, st, got)

    def prepare_mem_hit(self, scenario, system):
        self.warm_keys(scenario, system, self.hit_paths(), 4)

    def prepare_disk_hit(self, scenario, system):
        """Starts the disk systems and fills them with every hit set."""
        paths = self.hit_paths()
        t0 = time.monotonic()
        if system == "nginx-disk":
            if self.warm_keys(scenario, system, paths, 4):
                self.check_cached(scenario, system, paths[0], "HIT")
                files = sum(len(f) for _, _, f in os.walk(
                    os.path.join(self.work, "nginx-disk")))
                self.notes.append(
                    "disk-hit: nginx-disk holds %d cache files in a "
                    "directory on %s for the %d keys" % (
                        files, fs_type(self.work), len(paths)))
        elif system == "varnish-file":
            if "varnish-file" not in self.servers:
                self.start_varnish("varnish-file", "file,%s,%dM" % (
                    os.path.join(self.work, "varnish-file.bin"),
                    self.budget_mib))
            if self.warm_keys(scenario, system, paths, 4):
                self.check_cached(scenario, system, paths[0], "HIT")
        elif system == "s3edge-disk":
            self.prepare_s3edge_disk(scenario, paths)
        log("%s: %s ready in %.0f s" % (scenario, system,
                                        time.monotonic() - t0))

    def finish_disk_hit(self):
        """Stops the servers only the disk rows use (their files go with
        the temporary directory)."""
        for name in ("s3edge-disk", "varnish-file"):
            srv = self.servers.get(name)
            if srv is not None:
                srv.stop()

    def prepare_s3edge_disk(self, scenario, paths):
        """Fills s3edge's disk, then restarts it with a 1 MiB memory cache.

        An object reaches the disk only when the memory cache could take
        it whole, so the fill runs with a larger memory cache; the large
        objects one at a time, so that the bounded write queue never
        skips one.  After the restart the index is rebuilt from the
        files (misses until then): the rows start when it is done.
        """
        if self.s3edge_bin is None:
            return
        self.start_s3edge_disk(S3EDGE_DISK_FILL_MEMORY)
        # The write queue holds a quarter of the memory cache: the 1 MiB
        # set fits in it at once, a 100 MiB object goes alone.
        ok = True
        for part in [[p] for p in paths if p.endswith("00M")] + \
                [[p for p in paths if p.endswith("1M")],
                 [p for p in paths if p.endswith("K")]]:
            ok = ok and self.warm_keys(scenario, "s3edge-disk", part,
                                       4 if len(part) > 100 else 1)
            c = self.disk_writes_settle(60)
        if not ok:
            return
        if c.get("disk_writes_skipped") or c.get("disk_write_errors"):
            self.notes.append(
                "disk-hit: s3edge skipped %d disk writes and failed %d "
                "while filling" % (c.get("disk_writes_skipped", 0),
                                   c.get("disk_write_errors", 0)))
        self.start_s3edge_disk(S3EDGE_DISK_MEMORY)
        end = time.monotonic() + 120
        while time.monotonic() < end:
            c = self.s3edge_counters("s3edge-disk")
            if c.get("disk_scan_done"):
                break
            time.sleep(0.5)
        self.notes.append(
            "disk-hit: s3edge-disk restarted with cache.memory_size %s "
            "(the sets are %.0f MiB): %d files indexed on %s, scan %s" % (
                S3EDGE_DISK_MEMORY, sum(n * parse_seg(seg) for _, seg, n, _
                                        in HIT_SETS) / MiB,
                c.get("disk_objects", 0), fs_type(self.work),
                "done" if c.get("disk_scan_done") else "NOT done in 120 s"))

    def disk_writes_settle(self, max_s):
        """Waits until s3edge-disk's disk write counters stop moving."""
        end = time.monotonic() + max_s
        last, since = None, time.monotonic()
        c = {}
        while time.monotonic() < end:
            c = self.s3edge_counters("s3edge-disk")
            now = (c.get("disk_writes"), c.get("disk_writes_skipped"),
                   c.get("disk_write_errors"), c.get("mem_inserts"))
            if c.get("disk_writes", 0) + c.get("disk_writes_skipped", 0) + \
                    c.get("disk_write_errors", 0) >= c.get("mem_inserts", 0):
                break
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= 3.0:
                break
            time.sleep(0.2)
        return c

    def sc_hits(self, system, seg, keys, conns, dur):
        """Random keys of one set over wrk: hits of a warmed cache."""
        env = {"BENCH_KEYS": str(keys),
               "BENCH_KEY_FORMAT": "/set/%s/k%%05d/%s" % (seg, seg)}
        disk = system == "s3edge-disk"
        c0 = self.s3edge_counters(system) if disk else None
        status, m = self.wrk(system, hit_path(seg, 0), conns, dur, env,
                             timeout_s=30 if seg == "100M" else 10)
        if disk and status == "ok":
            c1 = self.s3edge_counters(system)
            req = c1["requests"] - c0["requests"]
            hd = c1["hits_disk"] - c0["hits_disk"]
            m["hits_disk"] = hd
            m["hits_memory"] = c1["hits_memory"] - c0["hits_memory"]
            m["disk_hit_pct"] = 100.0 * hd / req if req else 0.0
        return status, m

    def sc_raw(self, dur):
        rc, out, err = run([os.path.join(self.build, "burst"), "-R",
                            str(dur), "-c", "2"], dur + 30)
        if rc != 0:
            return "failed", {"error": err[-300:]}
        m = json.loads(out)
        m["gbps"] = m["gbytes_per_s"]
        return "ok", m

    def scenarios(self):
        hot, dl, rg, ce = (self.dur("hot"), self.dur("downloaders"),
                           self.dur("range"), self.dur("ceiling"))
        warm_1g = "/range-warm/%s/1G" % self.run_id
        lat = [("rps", "req/s", "up"), ("p50_ms", "p50 ms", "down"),
               ("p99_ms", "p99 ms", "down"),
               ("cpu_cores", "server CPU, cores", "info")]
        bw = [("gbps", "GB/s", "up"), ("p99_ms", "p99 ms", "down"),
              ("cpu_cores", "server CPU, cores", "info")]

        def nofile_check(conns):
            def check():
                need = conns + 200
                if self.nofile < need:
                    return "skipped: RLIMIT_NOFILE %d < %d" % (
                        self.nofile, need)
                return None
            return check

        three = ["s3edge", "nginx", "varnish"]
        four = ["s3edge", "nginx", "nginx-slice", "varnish"]
        return {
            "hot-small": dict(systems=three, warm=[PATH_1K], variants=[
                Variant("HTTP/1.1, 64 conns", "h1", lat,
                        lambda s, r: self.wrk(s, PATH_1K, 64, hot)),
                Variant("HTTP/1.1, 1000 conns", "h1", lat,
                        lambda s, r: self.wrk(s, PATH_1K, 1000, hot),
                        check=nofile_check(1000)),
                Variant("HTTP/2 h2c, 64 conns x 10 streams", "h2c", lat,
                        lambda s, r: self.h2load(s, PATH_1K, 64, 10, hot,
                                                 False)),
                Variant("HTTP/2 TLS, 64 conns x 10 streams", "tls", lat,
                        lambda s, r: self.h2load(s, PATH_1K, 64, 10, hot,
                                                 True)),
            ]),
            "hot-large": dict(systems=three, warm=[PATH_1M, PATH_100M],
                              variants=[
                Variant("1 MiB, 32 conns", "h1", bw,
                        lambda s, r: self.wrk(s, PATH_1M, 32, hot)),
                Variant("100 MiB, 8 conns", "h1",
                        [bw[0], bw[2]],
                        lambda s, r: self.wrk(s, PATH_100M, 8, hot,
                                              timeout_s=30)),
            ]),
            "mem-hit": self.hit_scenario(three, self.prepare_mem_hit),
            "disk-hit": dict(self.hit_scenario(
                [DISK_SYSTEMS[c] for c in three], self.prepare_disk_hit,
                columns=DISK_SYSTEMS), finish=self.finish_disk_hit),
            "downloaders": dict(systems=three, warm=[PATH_100M], variants=[
                Variant("2,000 conns on 100 MiB", "h1", [
                    ("gbps", "GB/s", "up"),
                    ("rss_kib_per_conn", "RSS KiB per conn", "down"),
                    ("conns_accepted", "conns held by the server", "info"),
                    ("cpu_cores", "server CPU, cores", "info")],
                    lambda s, r: self.sc_downloaders(s, 2000, dl),
                    check=nofile_check(2000)),
                Variant("10,000 conns on 100 MiB", "h1", [
                    ("gbps", "GB/s", "up"),
                    ("rss_kib_per_conn", "RSS KiB per conn", "down"),
                    ("conns_accepted", "conns held by the server", "info"),
                    ("cpu_cores", "server CPU, cores", "info")],
                    lambda s, r: self.sc_downloaders(s, 10000, dl),
                    check=nofile_check(10000)),
            ]),
            "cold-coalesce": dict(systems=three, warm=[], variants=[
                Variant("200 clients, one cold 100 MiB object", "coalesce", [
                    ("origin_requests", "origin requests", "info"),
                    ("origin_mib", "origin MiB", "down"),
                    ("max_block_fetches", "origin fetches of a block, max",
                     "down"),
                    ("ttfb_p50_ms", "TTFB p50 ms", "down"),
                    ("ttfb_p99_ms", "TTFB p99 ms", "down"),
                    ("ttlb_p50_ms", "last byte p50 ms", "down"),
                    ("ttlb_max_ms", "last byte, all done ms", "down"),
                    ("peak_rss_mib", "server peak RSS MiB", "info")],
                    self.sc_cold_coalesce),
                # One client alone: the time to last byte of one cold
                # download, which parallel block fills can bring below
                # what one origin connection allows (1 s for 100 MiB).
                Variant("1 client, one cold 100 MiB object", "h1", [
                    ("ttfb_p50_ms", "TTFB ms", "down"),
                    ("ttlb_p50_ms", "last byte ms", "down"),
                    ("origin_mib", "origin MiB", "down"),
                    ("origin_requests", "origin requests", "info")],
                    lambda s, r: self.sc_cold_coalesce(s, r, 1)),
            ]),
            "cold-range": dict(systems=four, warm=[], variants=[
                Variant("1 MiB at 900 MiB of a cold 1 GiB object",
                        "range-cache", [
                            ("latency_ms", "latency ms", "down"),
                            ("origin_mib", "origin MiB", "down"),
                            ("origin_blocks", "origin 1 MiB blocks touched",
                             "down"),
                            ("origin_requests", "origin requests", "info"),
                            ("peak_rss_mib", "server peak RSS MiB",
                             "info")],
                        self.sc_cold_range),
            ]),
            "warm-range": dict(systems=four, warm=[warm_1g], variants=[
                Variant("random 1 MiB ranges of a cached 1 GiB, 16 conns",
                        "range-cache", [
                            ("rps", "req/s", "up"), ("gbps", "GB/s", "up"),
                            ("p99_ms", "p99 ms", "down")],
                        lambda s, r: self.wrk(s, warm_1g, 16, rg, {
                            "BENCH_RANGE_SIZE": str(GiB),
                            "BENCH_RANGE_LEN": str(MiB)})),
            ]),
            "ceiling": dict(systems=["origin-direct", "nginx-static",
                                     "loopback"], warm=[], variants=[
                Variant("1 KiB, 64 conns", None, lat[:3],
                        lambda s, r: self.wrk(s, PATH_1K, 64, ce, hot=False),
                        systems=["origin-direct", "nginx-static"]),
                Variant("100 MiB, 8 conns", None, [("gbps", "GB/s", "up")],
                        lambda s, r: self.wrk(s, PATH_100M, 8, ce, hot=False,
                                              timeout_s=30),
                        systems=["origin-direct"]),
                Variant("raw TCP, 2 streams, no HTTP", None,
                        [("gbps", "GB/s", "up")],
                        lambda s, r: self.sc_raw(ce),
                        systems=["loopback"]),
            ]),
        }

    def hit_scenario(self, systems, prepare, columns=None):
        """mem-hit and disk-hit: one variant per key set of HIT_SETS."""
        hot = self.dur("hot")
        variants = []
        for label, seg, keys, conns in HIT_SETS:
            if seg.endswith("K"):
                metrics = [("rps", "req/s", "up"),
                           ("p50_ms", "p50 ms", "down"),
                           ("p99_ms", "p99 ms", "down")]
            else:
                metrics = [("gbps", "GB/s", "up"),
                           ("p99_ms", "p99 ms", "down")]
            metrics.append(("cpu_cores", "server CPU, cores", "info"))
            if columns:
                metrics.append(("disk_hit_pct", "s3edge hits from disk %",
                                "info"))
            variants.append(Variant(
                "%s, %s keys at random, %d conns" % (
                    label, "{:,}".format(keys), conns), "h1", metrics,
                (lambda seg_, keys_, conns_: lambda s, r: self.sc_hits(
                    s, seg_, keys_, conns_, hot))(seg, keys, conns)))
        return dict(systems=systems, warm=[], prepare=prepare,
                    columns=columns or {}, variants=variants)

    # ------------------------------------------------------------- running

    def ensure_up(self, scenario, system, warm):
        """Restarts a dead s3edge (reported) so later runs still measure."""
        srv = self.server_of(system)
        if system == "loopback" or (srv is not None and srv.alive()):
            return True
        if srv is None or system != "s3edge" or srv.restarts >= 3:
            return False
        srv.restarts += 1
        msg = "s3edge was down before %s (exit %s); restarted (#%d). " \
              "stderr tail: %s" % (scenario, srv.proc.poll(), srv.restarts,
                                   " | ".join(srv.stderr_tail(5)))
        log(msg)
        self.notes.append(msg)
        if not srv.start():
            return False
        self.warm(scenario, system, warm)
        return True

    def measure(self, scenario, spec, variant, system, rnd):
        rec = {"scenario": scenario, "variant": variant.name,
               "system": system, "round": rnd}
        srv = self.server_of(system)
        reason = variant.check() if variant.check else None
        if system.startswith("s3edge") and self.s3edge_bin is None:
            rec["status"] = "absent"
        elif not self.has(system, variant.need):
            rec["status"] = "not yet" if system.startswith("s3edge") \
                else "n/a"
        elif reason:
            rec["status"] = "skipped"
            rec["reason"] = reason
        elif (scenario, system) in self.broken:
            rec["status"] = "broken"
            rec["reason"] = self.broken[(scenario, system)]
        elif not self.ensure_up(scenario, system, spec["warm"]):
            rec["status"] = "down"
        else:
            t0 = time.monotonic()
            busy0, own0, sm0 = (machine_busy_ticks(), own_ticks(),
                                self.server_ticks())
            try:
                rec["status"], rec["metrics"] = variant.fn(system, rnd)
            except MemoryRunaway as e:
                rec["status"], rec["reason"] = "over memory", str(e)
                self.notes.append("%s / %s / %s round %d: %s" % (
                    scenario, variant.name, system, rnd, e))
            except (OSError, RuntimeError, ValueError, KeyError,
                    http.client.HTTPException) as e:
                rec["status"], rec["metrics"] = "failed", {"error": str(e)}
            rec["seconds"] = round(time.monotonic() - t0, 2)
            sm1 = self.server_ticks()
            servers = sum(v - sm0.get(p, 0) for p, v in sm1.items()
                          if v >= sm0.get(p, 0))
            other = machine_busy_ticks() - busy0 - (own_ticks() - own0) - \
                servers
            rec["other_cores"] = round(max(0, other) / CLK_TCK / max(
                0.001, time.monotonic() - t0), 3)
            if srv is not None and srv.killed_for is not None and \
                    rec["status"] != "over memory":
                rec["status"], rec["reason"] = "over memory", srv.killed_for
            elif srv is not None and not srv.alive() and \
                    rec["status"] != "over memory":
                rec["status"] = "crashed"
                rec["reason"] = "exit %s; stderr tail: %s" % (
                    srv.proc.poll(), " | ".join(srv.stderr_tail(8)))
                self.notes.append("%s died during %s / %s round %d: %s" % (
                    system, scenario, variant.name, rnd, rec["reason"]))
        self.results.append(rec)
        m = rec.get("metrics", {})
        brief = ", ".join("%s=%s" % (k, fmt_num(m[k])) for k, _, _ in
                          variant.metrics if m.get(k) is not None)
        log("%s / %s / %s r%d: %s %s" % (scenario, variant.name, system,
                                         rnd, rec["status"], brief))

    def run_scenarios(self, names):
        specs = self.scenarios()
        for name in names:
            spec = specs[name]
            log("scenario %s" % name)
            for system in spec["systems"]:
                if spec.get("prepare") and self.has(system, "h1"):
                    try:
                        spec["prepare"](name, system)
                    except (OSError, RuntimeError, ValueError, KeyError,
                            http.client.HTTPException) as e:
                        self.broken[(name, system)] = "preparing: %s" % e
                        log("%s: preparing %s failed: %s" % (name, system,
                                                              e))
                if spec["warm"] and system in PROXIES:
                    if self.has(system, "h1") and \
                            self.server_of(system) is not None:
                        self.warm(name, system, spec["warm"])
            for rnd in range(1, self.rounds + 1):
                for variant in spec["variants"]:
                    for system in variant.systems or spec["systems"]:
                        self.measure(name, spec, variant, system, rnd)
            if spec.get("finish"):
                spec["finish"]()

    # ------------------------------------------------------------ profiling

    def profile(self):
        srv = self.servers.get("s3edge")
        if srv is None or not srv.alive() or "h1" not in self.caps:
            self.profiles["_note"] = "no profile: s3edge absent or not " \
                "running"
            return
        dur = self.dur("profile")
        tool = self.pick_profiler()
        self.profiles["_tool"] = tool
        if tool not in ("perf", "perf cpu-clock", "callgrind"):
            self.profiles["_note"] = "no profile: neither perf nor " \
                "valgrind works here"
            return
        self.warm("profile", "s3edge", [PATH_1K, PATH_1M])
        for name, path, conns in (("hot-small, 1 KiB, 64 conns", PATH_1K, 64),
                                  ("hot-large, 1 MiB, 32 conns", PATH_1M,
                                   32)):
            if tool in ("perf", "perf cpu-clock"):
                self.profiles[name] = self.perf_profile(srv, path, conns, dur,
                                                        tool)
            elif tool == "callgrind":
                self.profiles[name] = self.callgrind_profile(path, conns)
            log("profile %s: %d functions" % (
                name, len((self.profiles.get(name) or {}).get("top", []))))

    @staticmethod
    def pick_profiler():
        forced = os.environ.get("BENCH_PROFILER")
        if forced:
            return forced
        rc, out, err = run(["perf", "stat", "-e", "instructions", "true"], 30)
        if rc == 0 and "not supported" not in err and \
                re.search(r"[\d,]+\s+instructions", err):
            return "perf"
        rc, _, _ = run(["perf", "record", "-e", "cpu-clock", "-o",
                        "/dev/null", "true"], 30)
        if rc == 0:
            return "perf cpu-clock"
        if shutil.which("valgrind"):
            return "callgrind"
        return "none"

    def perf_profile(self, srv, path, conns, dur, tool):
        data = os.path.join(self.work, "perf.data")
        url = "http://127.0.0.1:%d%s" % (srv.ports["h1"], path)
        load = subprocess.Popen(["wrk", "-t", "2", "-c", str(conns), "-d",
                                 "%ds" % (dur + 2), url],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL,
                                start_new_session=True)
        self.note_pid(load.pid)
        time.sleep(1)
        ev = [] if tool == "perf" else ["-e", "cpu-clock"]
        run(["perf", "record"] + ev + ["-F", "999", "-p", str(srv.proc.pid),
                                       "-o", data, "--", "sleep", str(dur)],
            dur + 60)
        try:
            load.wait(timeout=dur + 30)
        except subprocess.TimeoutExpired:
            os.killpg(load.pid, signal.SIGKILL)
            load.wait()
        rep = ["perf", "report", "-i", data, "--stdio", "--no-children"]
        _, out, _ = run(rep + ["--sort", "dso,sym"], 180)
        top = self.parse_perf(out, 15)
        _, out, _ = run(rep + ["--sort", "dso"], 180)
        by_dso = []
        for line in out.splitlines():
            mm = re.match(r"^\s*([\d.]+)%\s+(.+?)\s*$", line)
            if mm:
                by_dso.append((float(mm.group(1)), mm.group(2)))
        _, out, _ = run(rep + ["--percentage", "absolute", "--sort", "sym",
                               "--dsos", os.path.basename(self.s3edge_bin)],
                        180)
        own = []
        for line in out.splitlines():
            mm = re.match(r"^\s*([\d.]+)%\s+\[(.)\]\s+(.+?)\s*$", line)
            if mm and len(own) < 10:
                own.append((float(mm.group(1)), "s3edge", mm.group(3)))
        return {"top": top, "by_object": by_dso[:6], "s3edge_top": own}

    @staticmethod
    def parse_perf(out, n):
        top = []
        for line in out.splitlines():
            mm = re.match(r"^\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.+?)\s*$",
                          line)
            if mm:
                top.append((float(mm.group(1)), mm.group(2), mm.group(4)))
            if len(top) == n:
                break
        return top

    def callgrind_profile(self, path, conns):
        """Short bounded run of a second s3edge under callgrind."""
        port = free_port()
        out = os.path.join(self.work, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
               self.s3edge_bin, "--listen", "127.0.0.1:%d" % port,
               "--origin", "http://127.0.0.1:%d/bucket" % self.oport["s3edge"],
               "--anonymous", "--memory-cache", "%dMiB" % self.budget_mib,
               "--access-log", "off", "-l", "warn"]
        srv = Server(self, "s3edge-callgrind", cmd, {"h1": port},
                     os.path.join(self.work, "callgrind.stderr"))
        try:
            if not srv.start(wait_s=60):
                return []
            http_get(port, path)
            run(["wrk", "-t", "1", "-c", str(min(conns, 8)), "-d", "5s",
                 "http://127.0.0.1:%d%s" % (port, path)], 60)
        finally:
            srv.stop()
        rc, text, _ = run(["callgrind_annotate", out], 60)
        top = []
        total = None
        for line in text.splitlines():
            mm = re.match(r"^\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(.+?)\s*$",
                          line)
            if not mm:
                continue
            n = int(mm.group(1).replace(",", ""))
            if "PROGRAM TOTALS" in line:
                total = n
                continue
            if total and ":" in mm.group(2):
                fileobj, fn = mm.group(2).rsplit(":", 1)
                top.append((100.0 * n / total, os.path.basename(fileobj),
                            fn.split(" ")[0]))
            if len(top) == 15:
                break
        return {"top": top, "by_object": [], "s3edge_top": []}


# ------------------------------------------------------------------ report

def fmt_num(v):
    if v is None:
        return "?"
    if isinstance(v, int):
        return "{:,}".format(v)
    if isinstance(v, float):
        if abs(v) >= 100000:
            return "%.0fk" % (v / 1000)
        if abs(v) >= 10000:
            return "%.1fk" % (v / 1000)
        if abs(v) >= 100:
            return "%.0f" % v
        if abs(v) >= 10:
            return "%.1f" % v
        return "%.2f" % v
    return str(v)


def summarize(results, scenarios):
    """{(scenario, variant, system): (status, medians, statuses)}."""
    groups = {}
    for r in results:
        groups.setdefault((r["scenario"], r["variant"], r["system"]),
                          []).append(r)
    out = {}
    for key, recs in groups.items():
        statuses = [r["status"] for r in recs]
        bad = [s for s in statuses if s != "ok"]
        med = {}
        oks = [r["metrics"] for r in recs if r["status"] == "ok"]
        keys = set()
        for m in oks:
            keys |= {k for k, v in m.items() if isinstance(v, (int, float))
                     and not isinstance(v, bool)}
        for k in keys:
            vals = [m[k] for m in oks if isinstance(m.get(k), (int, float))]
            if vals:
                med[k] = statistics.median(vals)
        # What the failed rounds measured all the same (origin requests of
        # a stampede that timed out, req/s of hits that were not hits):
        # shown next to the status, never ranked.
        fails = [r.get("metrics") or {} for r in recs if r["status"] != "ok"]
        for k in {k for m in fails for k, v in m.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool)}:
            vals = [m[k] for m in fails if isinstance(m.get(k), (int, float))]
            med.setdefault("_failed", {})[k] = statistics.median(vals)
        if bad:
            worst = max(set(bad), key=bad.count)
            status = worst if len(bad) == len(statuses) else \
                "%s (%d/%d rounds)" % (worst, len(bad), len(statuses))
        else:
            status = "ok"
        out[key] = (status, med, statuses)
    return out


def render(bench, names, elapsed):
    specs = bench.scenarios()
    summ = summarize(bench.results, specs)
    lines = []
    a = bench.args
    lines.append("# s3edge benchmark: s3edge against nginx proxy_cache and "
                 "Varnish")
    lines.append("")
    lines.append("Produced by `tests/bench/run.sh%s` on %s UTC in %.0f s "
                 "(%d round%s, medians).  Read tests/bench/README.md for "
                 "what each row measures and the caveats." % (
                     " " + " ".join(a.argv) if a.argv else "",
                     time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                     elapsed, bench.rounds, "" if bench.rounds == 1 else "s"))
    lines.append("")
    lines.append("## Machine and tools")
    lines.append("")
    for k, v in machine_info(bench):
        lines.append("- %s: %s" % (k, v))
    lines.append("")
    lines.append("## Results")
    lines.append("")
    lines.append("Cells: median over rounds; for anchors, (×r) is the "
                 "ratio anchor ÷ s3edge.  \"s3edge vs best\" is >1 when "
                 "s3edge beats the best anchor (best ÷ s3edge for "
                 "lower-is-better metrics).  *not yet*: s3edge lacks the "
                 "feature (tests/bench/conf/s3edge-caps); *n/a*: the anchor "
                 "cannot do it; *absent*: no s3edge binary; *not cached*: "
                 "the origin saw requests during the timed part of a hot "
                 "run (in parentheses: what the failed rounds measured "
                 "all the same, median, never ranked); a blank cell: not "
                 "part of that scenario; –: not "
                 "measured for that system.  In the disk-hit rows the "
                 "columns are s3edge with a 1 MiB memory cache in front of "
                 "its disk cache, nginx proxy_cache in a directory on disk "
                 "and Varnish with file storage.")
    lines.append("")
    cols = ["s3edge", "nginx", "nginx-slice", "varnish"]
    lines.append("| scenario | variant | metric | | " + " | ".join(cols) +
                 " | s3edge vs best |")
    lines.append("| --- | --- | --- | --- |" + " --- |" * len(cols) +
                 " --- |")
    for name in names:
        if name == "ceiling":
            continue
        spec = specs[name]
        # a scenario may seat other servers in the columns (disk-hit)
        seat = spec.get("columns") or {}
        for v in spec["variants"]:
            systems = v.systems or spec["systems"]
            for key, label, better in v.metrics:
                row = [name, v.name, label,
                       {"up": "↑", "down": "↓", "info": ""}[better]]
                base = summ.get((name, v.name, seat.get("s3edge", "s3edge")))
                base_v = base[1].get(key) if base and base[0] == "ok" \
                    else None
                anchors = {}
                for c in cols:
                    if seat.get(c, c) not in systems:
                        row.append("")
                        continue
                    st = summ.get((name, v.name, seat.get(c, c)))
                    if st is None:
                        row.append("")
                        continue
                    if st[0] != "ok":
                        seen = st[1].get("_failed", {}).get(key)
                        row.append("*%s*%s" % (st[0], "" if seen is None
                                               else " (%s)" % fmt_num(seen)))
                        continue
                    val = st[1].get(key)
                    cell = fmt_num(val) if val is not None else "–"
                    if c != "s3edge" and val is not None:
                        anchors[c] = val
                        if base_v:
                            cell += " (×%.2f)" % (val / base_v)
                    row.append(cell)
                vs = ""
                if base_v and anchors and better != "info":
                    if better == "up":
                        best = max(anchors, key=anchors.get)
                        vs = "×%.2f (%s)" % (base_v / anchors[best], best)
                    else:
                        best = min(anchors, key=anchors.get)
                        if base_v > 0:
                            vs = "×%.2f (%s)" % (anchors[best] / base_v,
                                                 best)
                row.append(vs)
                lines.append("| " + " | ".join(row) + " |")
    if "ceiling" in names:
        lines.append("")
        lines.append("### Ceiling: no cache in the path")
        lines.append("")
        lines.append("| what | variant | metric | median |")
        lines.append("| --- | --- | --- | --- |")
        spec = specs["ceiling"]
        what = {"origin-direct": "bench origin, no delay or limit",
                "nginx-static": "nginx serving a file",
                "loopback": "kernel loopback, C sender and receiver"}
        for v in spec["variants"]:
            for s in v.systems:
                st = summ.get(("ceiling", v.name, s))
                for key, label, better in v.metrics:
                    if st is None:
                        cell = ""
                    elif st[0] != "ok":
                        cell = "*%s*" % st[0]
                    else:
                        cell = fmt_num(st[1].get(key))
                    lines.append("| %s | %s | %s | %s |" % (
                        what[s], v.name, label, cell))
    lines.append("")
    lines.append("## Profile of s3edge")
    lines.append("")
    prof = bench.profiles
    if "_note" in prof or not prof:
        lines.append(prof.get("_note", "not run (--no-profile)"))
    else:
        if prof.get("_tool") == "callgrind":
            lines.append("Tool: callgrind (a second s3edge under valgrind, "
                         "8 connections, 5 s); share of instructions, user "
                         "space only; the object column names the source "
                         "file.")
        else:
            lines.append("Tool: %s, sampling s3edge for %d s under the "
                         "load named; flat profile (self time) including "
                         "the kernel's work on s3edge's behalf." % (
                             prof.get("_tool"), bench.dur("profile")))
        for name, p in prof.items():
            if name.startswith("_"):
                continue
            lines.append("")
            lines.append("**%s**" % name)
            if p.get("by_object"):
                lines.append("")
                lines.append("By object: " + ", ".join(
                    "%s %.1f%%" % (d, v) for v, d in p["by_object"]) + ".")
            lines.append("")
            lines.append("| self % | object | function |")
            lines.append("| --- | --- | --- |")
            for pc, dso, fn in p.get("top") or []:
                lines.append("| %.2f | %s | `%s` |" % (pc, dso, fn))
            if not p.get("top"):
                lines.append("| | | (no samples) |")
            if p.get("s3edge_top"):
                lines.append("")
                lines.append("Inside the s3edge binary: " + ", ".join(
                    "`%s` %.2f%%" % (fn, pc) for pc, _, fn in
                    p["s3edge_top"]) + ".")
    lines.append("")
    lines.append("## Background load")
    lines.append("")
    lines.append("Cores used by processes the bench did not start, mean "
                 "over the measurements of each scenario (machine busy time "
                 "minus the servers, the load tools and the driver): the "
                 "higher, the lower every number of that scenario.")
    lines.append("")
    per = {}
    for r in bench.results:
        if "other_cores" in r:
            per.setdefault(r["scenario"], []).append(r["other_cores"])
    lines.append(", ".join("%s %.2f" % (n, sum(per[n]) / len(per[n]))
                           for n in names if per.get(n)) + ".")
    notes = list(bench.notes)
    for key, (status, med, statuses) in sorted(summ.items()):
        if status.startswith(("ok", "not yet", "n/a", "absent")):
            continue
        reasons = {r.get("reason") or (r.get("metrics") or {}).get("error")
                   for r in bench.results
                   if (r["scenario"], r["variant"], r["system"]) == key
                   and r["status"] != "ok"}
        reasons.discard(None)
        detail = "; ".join(sorted(reasons))[:400]
        notes.append("%s / %s / %s: %s%s" % (
            key[0], key[1], key[2], status, (": " + detail) if detail else
            ""))
    for r in bench.results:
        m = r.get("metrics") or {}
        if r["status"] == "ok" and m.get("err_connect"):
            notes.append("%s / %s / %s round %d: %d connect errors" % (
                r["scenario"], r["variant"], r["system"], r["round"],
                m["err_connect"]))
    if notes:
        lines.append("")
        lines.append("## Notes from this run")
        lines.append("")
        for n in notes:
            lines.append("- " + n.replace("|", "/"))
    lines.append("")
    return "\n".join(lines)


def machine_info(bench):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) / 1024 / 1024
    except OSError:
        mem = 0
    rc, commit, _ = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                        10)
    s3 = "absent"
    if bench.s3edge_bin:
        where = os.path.relpath(bench.s3edge_origin_path, REPO)
        if where.startswith(".."):
            where = "$S3EDGE_BIN"
        s3 = "%s (%s)" % (first_line([bench.s3edge_bin, "-v"]), where)
    info = [
        ("machine", "%d CPUs (nproc), %s, %.1f GiB memory, Linux %s" % (
            os.cpu_count(), cpu, mem, platform.release())),
        ("repository", commit.strip() if rc == 0 else "no commit yet"),
        ("other load", "load average %s at the start; processes not "
         "started by the bench used %.2f cores on average during the run "
         "(long-lived ones seen: %s)"
         % (getattr(bench, "load_at_start", "?"),
            getattr(bench, "other", (0, []))[0],
            ", ".join("%s %.2f" % kv for kv in
                      getattr(bench, "other", (0, []))[1]) or "none")),
        ("s3edge", s3),
        ("nginx", first_line(["nginx", "-v"])),
        ("varnish", first_line(["varnishd", "-V"])),
        ("wrk", first_line(["wrk", "-v"])),
        ("h2load", first_line(["h2load", "--version"])),
        ("gcc / libevent (origin, burst)", "%s / %s" % (
            first_line(["gcc", "--version"]),
            first_line(["pkg-config", "--modversion", "libevent"]))),
        ("profiler", bench.profiles.get("_tool", "none") + " / " +
         first_line(["perf", "--version"])),
        ("setup", "memory budget %d MiB for every cache (s3edge "
         "cache.memory_size, Varnish malloc, nginx proxy_cache on tmpfs "
         "max_size; the disk-hit rows: see the notes); origin %d ms to first byte and %d MiB/s per "
         "connection; RLIMIT_NOFILE %d; durations %s s" % (
             bench.budget_mib, ORIGIN_DELAY_MS, ORIGIN_RATE // MiB,
             bench.nofile, ", ".join("%s %d" % (k, bench.dur(k))
                                     for k in DURATIONS))),
    ]
    return info


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int)
    p.add_argument("--quick", action="store_true",
                   help="1 round, short durations: a smoke test")
    p.add_argument("--budget-mib", type=int, default=2048)
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--list", action="store_true")
    p.add_argument("scenario", nargs="*")
    args = p.parse_args()
    args.argv = sys.argv[1:]
    order = ["hot-small", "hot-large", "mem-hit", "disk-hit", "downloaders",
             "cold-coalesce", "cold-range", "warm-range", "ceiling"]
    if args.list:
        print("\n".join(order))
        return 0
    names = args.scenario or order
    for n in names:
        if n not in order:
            p.error("unknown scenario %r (one of: %s)" % (n, ", ".join(order)))
    names = [n for n in order if n in names]
    if args.rounds is not None and not 1 <= args.rounds <= 20:
        p.error("--rounds must be 1..20")

    bench = Bench(args)
    bench.load_at_start = open("/proc/loadavg").read().split()[0]
    stop = {"sig": None}

    def on_signal(signum, frame):
        stop["sig"] = signum
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    rc = 0
    stop_watch = threading.Event()
    watch = threading.Thread(target=bench.watchdog, args=(stop_watch,),
                             daemon=True)
    try:
        bench.setup()
        watch.start()
        bench.run_scenarios(names)
        if not args.no_profile:
            bench.profile()
        elapsed = time.monotonic() - bench.started
        bench.other = bench.other_load(elapsed)
        if bench.other[0] > 0.1:
            bench.notes.append(
                "other processes used %.2f cores on average during this "
                "run: every number above is lower than on a quiet machine"
                % bench.other[0])
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    finally:
        stop_watch.set()
        bench.stop_all()
    elapsed = time.monotonic() - bench.started
    if rc:
        return rc
    report = render(bench, names, elapsed)
    outdir = os.path.join(HERE, "results")
    rawdir = os.path.join(outdir, "raw")
    os.makedirs(rawdir, exist_ok=True)
    stamp = bench.run_id
    with open(os.path.join(rawdir, stamp + ".json"), "w") as f:
        json.dump({"run_id": stamp, "argv": args.argv,
                   "machine": dict(machine_info(bench)),
                   "rounds": bench.rounds, "quick": bench.quick,
                   "caps": bench.caps, "elapsed_s": round(elapsed, 1),
                   "notes": bench.notes, "profiles": bench.profiles,
                   "results": bench.results}, f, indent=1)
    with open(os.path.join(rawdir, stamp + ".md"), "w") as f:
        f.write(report)
    full = names == order and not args.quick
    if full or os.environ.get("BENCH_UPDATE_LATEST") == "1":
        with open(os.path.join(outdir, "latest.md"), "w") as f:
            f.write(report)
        log("wrote %s" % os.path.relpath(os.path.join(outdir, "latest.md"),
                                         os.getcwd()))
    else:
        log("partial or quick run: results/latest.md left as it was "
            "(BENCH_UPDATE_LATEST=1 overrides)")
    log("raw results: %s" % os.path.relpath(
        os.path.join(rawdir, stamp + ".json"), os.getcwd()))
    print()
    print(report)
    log("elapsed %.0f s (%.1f min)" % (elapsed, elapsed / 60))
    return 0


if __name__ == "__main__":
    sys.exit(main())
