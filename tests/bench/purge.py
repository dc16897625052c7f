#!/usr/bin/python3
"""The purge benchmark of s3edge (issue 7's targets, reported, not asserted):

1. Propagation: three s3edge nodes and one redis-server on loopback; PURGES
   (default 200) exact-path purges are POSTed at node A one after another,
   and nodes B and C are polled (GET /v1/invalidations/ID, applied_here)
   until each has applied it.  Latency = from just before the POST at A to
   the poll that sees it applied at B (resp. C); the poll runs every
   0.5 ms, so it adds up to about that much.  Target: p99 < 100 ms.
2. Accepting a purge with N objects cached: node A is filled with N tiny
   objects (1 byte each, distinct keys, through wrk from the bench origin),
   then ACCEPTS (default 50) prefix purges, each of a different prefix, are
   POSTed one after another on a keep-alive connection, and the time from
   sending the request to reading the 202 is recorded.  N = 10,000,
   100,000 and 1,000,000 (--sizes).  Target: < 1 ms, flat in N.

Run it through tests/bench/run.sh purge (which builds the bench origin) or
directly with BENCH_BUILD=DIR holding a built `origin`.  Everything listens
on 127.0.0.1 on ports picked at run time; every process is started here in
its own process group and stopped at the end; every wait is bounded.
Results: tests/bench/results/purge-latest.md (and raw/purge-TIME.json).
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOKEN = "bench-purge-token-0123456789"


def log(msg):
    print("[purge %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    """Nearest-rank percentile of a non-empty list."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def wait_for(pred, timeout, what, interval=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise RuntimeError("timed out waiting for " + what)


class Procs:
    """Processes started here, each in its own process group."""

    def __init__(self, work):
        self.work = work
        self.procs = []

    def start(self, name, cmd):
        err = open(os.path.join(self.work, name + ".log"), "ab")
        p = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL,
                             stdout=err, stderr=err, start_new_session=True)
        err.close()
        self.procs.append(p)
        # run.sh's trap stops what is listed here if this driver dies
        with open(os.path.join(self.work, "pids"), "a") as f:
            f.write("%d\n" % p.pid)
        return p

    def stop(self, p):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait(timeout=10)

    def stop_all(self):
        for p in reversed(self.procs):
            self.stop(p)


class Admin:
    """A keep-alive connection to a node's admin API."""

    def __init__(self, port):
        self.port = port
        self.c = None

    def request(self, method, path, body=None):
        for attempt in range(2):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                data = json.dumps(body) if body is not None else None
                self.c.request(method, path, body=data,
                               headers={"Authorization": "Bearer " + TOKEN,
                                        "Content-Type": "application/json"})
                r = self.c.getresponse()
                text = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.c.close()
                    self.c = None
                return r.status, json.loads(text) if text else None
            except (OSError, http.client.HTTPException):
                self.c.close()
                self.c = None
                if attempt == 1:
                    raise
        raise RuntimeError("unreachable")

    def ok(self, path):
        try:
            return self.request("GET", path)[0] == 200
        except OSError:
            return False


def machine():
    load = open("/proc/loadavg").read().split()[:3]
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"cpus": os.cpu_count(), "cpu": cpu, "load": " ".join(load),
            "kernel": os.uname().release}


def version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = os.environ.get("BENCH_WORK") or tempfile.mkdtemp(prefix="s3edge-purge-")
        self.own_work = "BENCH_WORK" not in os.environ
        self.build = os.environ.get("BENCH_BUILD") or self.work
        self.procs = Procs(self.work)
        self.s3edge = os.environ.get("S3EDGE_BIN") or os.path.join(REPO, "build", "edge", "s3edge")
        self.tokfile = os.path.join(self.work, "tokens")
        with open(self.tokfile, "w") as f:
            f.write(TOKEN + "\n")
        self.nodes = {}

    # ------------------------------------------------------------ servers
    def start_origin(self):
        binp = os.path.join(self.build, "origin")
        if not os.path.exists(binp):
            cflags = subprocess.run(["pkg-config", "--cflags", "--libs", "libevent"],
                                    capture_output=True, text=True, timeout=30).stdout.split()
            subprocess.run(["gcc", "-std=gnu11", "-O2", "-o", binp,
                            os.path.join(HERE, "origin.c")] + cflags + ["-lpthread"],
                           check=True, timeout=300)
        portfile = os.path.join(self.work, "origin.ports")
        self.procs.start("origin", [binp, "-w", "1", "-o", os.path.join(self.work, "origin.req"),
                                    "-p", portfile, "-T", "3600", "-l", "direct:0:0"])
        wait_for(lambda: os.path.exists(portfile), 10, "the origin")
        with open(portfile) as f:
            self.oport = int(f.read().split()[1])

    def start_redis(self):
        self.rport = free_port()
        rdir = os.path.join(self.work, "redis")
        os.makedirs(rdir, exist_ok=True)
        # persistence as a production Redis would have it: AOF, fsync each second
        self.redis = self.procs.start("redis", [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            "--port", self.rport, "--bind", "127.0.0.1", "--dir", rdir, "--save", "",
            "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "no"])
        wait_for(lambda: subprocess.run(["redis-cli", "-p", str(self.rport), "PING"],
                                        capture_output=True, text=True,
                                        timeout=5).stdout.strip() == "PONG", 10, "redis")

    def start_node(self, name, memory, state_base=None):
        aport, port = free_port(), free_port()
        state = os.path.join(state_base or self.work, "state-" + name)
        os.makedirs(state, exist_ok=True)
        p = self.procs.start("s3edge-" + name, [
            self.s3edge, "--listen", "127.0.0.1:%d" % port,
            "--origin", "http://127.0.0.1:%d/bucket" % self.oport, "--anonymous",
            "--memory-cache", memory, "--default-ttl", "1h", "--access-log", "off",
            "-l", "warn", "--admin-listen", "127.0.0.1:%d" % aport,
            "--admin-token-file", self.tokfile, "--node-id", name,
            "--redis", "redis://127.0.0.1:%d" % self.rport, "--state-dir", state])
        a = Admin(aport)
        wait_for(lambda: p.poll() is not None or a.ok("/readyz"), 20, "node " + name)
        if p.poll() is not None:
            raise RuntimeError("s3edge %s exited: see %s" % (name, self.work))
        self.nodes[name] = {"proc": p, "admin": a, "port": port}

    def stop_node(self, name):
        self.procs.stop(self.nodes.pop(name)["proc"])

    # ------------------------------------------------------------ 1. propagation
    def propagation(self, n):
        a = self.nodes["A"]["admin"]
        others = {k: v["admin"] for k, v in self.nodes.items() if k != "A"}
        wait_for(lambda: len(a.request("GET", "/v1/nodes")[1]["nodes"]) == 3, 10,
                 "the fleet view")
        lat = {k: [] for k in others}
        worst, accept = [], []
        for i in range(n):
            t0 = time.perf_counter()
            st, doc = a.request("POST", "/v1/invalidations",
                                {"paths": ["/prop/%d/x" % i]})
            t1 = time.perf_counter()
            if st != 202:
                raise RuntimeError("purge %d: %d %s" % (i, st, doc))
            accept.append((t1 - t0) * 1000)
            pending = dict(others)
            end = t0 + 10
            while pending and time.perf_counter() < end:
                for k in list(pending):
                    st, d = pending[k].request("GET", "/v1/invalidations/" + doc["id"])
                    if st == 200 and d.get("applied_here"):
                        lat[k].append((time.perf_counter() - t0) * 1000)
                        del pending[k]
                if pending:
                    time.sleep(0.0005)
            if pending:
                raise RuntimeError("purge %d did not reach %s in 10 s" % (i, sorted(pending)))
            worst.append(max(lat[k][-1] for k in others))
        out = {"purges": n, "accept_ms": summary(accept), "all_nodes_ms": summary(worst)}
        for k, v in lat.items():
            out["node_%s_ms" % k] = summary(v)
        return out

    # ------------------------------------------------------------ 2. accept vs size
    def fill(self, name, total, prefix):
        """Until the node holds `total` more objects: rounds of wrk, each
        with keys of its own, sized from the rate of the previous round
        (wrk's threads stop after their share, but wrk itself runs for its
        whole -d), at most 200 rounds and 15 minutes."""
        node = self.nodes[name]
        a = node["admin"]
        start = a.request("GET", "/v1/stats")[1]["cache"]["objects"]
        threads, conns = 2, 32
        t0 = time.monotonic()
        rate, reqs, errs = 2000.0, 0, 0
        for rnd in range(200):
            have = a.request("GET", "/v1/stats")[1]["cache"]["objects"] - start
            left = total - have
            if left <= 0 or time.monotonic() - t0 > 900:
                break
            secs = max(2, min(60, int(left / rate * 1.1) + 1))
            per = (left + threads - 1) // threads
            env = dict(os.environ, FILL_PREFIX="%s-%d" % (prefix, rnd),
                       FILL_PER_THREAD=str(per))
            t1 = time.monotonic()
            r = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % secs,
                                "-s", os.path.join(HERE, "purge_fill.lua"),
                                "http://127.0.0.1:%d/" % node["port"]],
                               capture_output=True, text=True, env=env, timeout=secs + 60)
            js = [x for x in r.stdout.splitlines() if x.startswith("BENCHJSON ")]
            if r.returncode != 0 or not js:
                raise RuntimeError("wrk failed: %s %s" % (r.stdout[-500:], r.stderr[-500:]))
            w = json.loads(js[-1][len("BENCHJSON "):])
            reqs += w["requests"]
            errs += sum(v for k, v in w.items() if k.startswith("err_"))
            if w["requests"] >= per * threads * 0.9:
                pass  # finished early: the rate estimate holds
            else:
                rate = max(100.0, w["requests"] / max(0.1, time.monotonic() - t1))
        return time.monotonic() - t0, reqs, errs

    def accept_vs_size(self, sizes, n):
        rows = []
        have = 0
        a = self.nodes["A"]["admin"]
        for size in sizes:
            if size > have:
                secs, reqs, errs = self.fill("A", size - have, "/f%d" % size)
                log("filled to %d objects in %.0f s (%d requests, %d errors)"
                    % (size, secs, reqs, errs))
            st = a.request("GET", "/v1/stats")[1]
            have = st["cache"]["objects"]
            rss = rss_mib(self.nodes["A"]["proc"].pid)
            times, rules0 = [], st["purge"]["rules"]
            for i in range(n):
                t0 = time.perf_counter()
                code, doc = a.request("POST", "/v1/invalidations",
                                      {"paths": ["/acc-%d-%d/*" % (size, i)]})
                times.append((time.perf_counter() - t0) * 1000)
                if code != 202:
                    raise RuntimeError("prefix purge: %d %s" % (code, doc))
            st2 = a.request("GET", "/v1/stats")[1]
            acc = st2["purge"]["accepted"] - st["purge"]["accepted"]
            srv_us = (st2["purge"]["accept_us_total"] - st["purge"]["accept_us_total"]) / max(1, acc)
            # accepting a prefix purge drops nothing from the store
            rows.append({"target": size, "objects": have, "objects_after": st2["cache"]["objects"],
                         "rules_added": st2["purge"]["rules"] - rules0, "rss_mib": rss,
                         "server_mean_ms": round(srv_us / 1000.0, 3),
                         "accept_ms": summary(times)})
            log("%d objects: accept p50 %.3f ms p99 %.3f ms, in the server %.3f ms" %
                (have, rows[-1]["accept_ms"]["p50"], rows[-1]["accept_ms"]["p99"],
                 rows[-1]["server_mean_ms"]))
        return rows


def summary(v):
    return {"n": len(v), "p50": round(pct(v, 50), 3), "p99": round(pct(v, 99), 3),
            "max": round(max(v), 3), "mean": round(statistics.mean(v), 3)}


def fs_type(path):
    try:
        return subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True,
                              timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def rss_mib(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return None


def render(res):
    m = res["machine"]
    p = res["propagation"]
    lines = [
        "# s3edge purge benchmark",
        "",
        "Run %s UTC, %.0f s; %d CPUs (%s), load average at start %s, Linux %s; %s; %s."
        % (res["started"], res["elapsed_s"], m["cpus"], m["cpu"], m["load"], m["kernel"],
           res["redis"], res["s3edge"]),
        "Everything on loopback on this machine, shared with other jobs: see the load "
        "average.  Made by `tests/bench/run.sh purge` (tests/bench/purge.py).",
        "",
        "## Propagation across 3 nodes (target p99 < 100 ms)",
        "",
        "%d exact-path purges POSTed at node A one after another; B and C polled every "
        "0.5 ms until each has applied it (GET /v1/invalidations/ID, applied_here)."
        % p["purges"],
        "",
        "| measure | p50 ms | p99 ms | max ms | mean ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, key in (("POST at A answered (202)", "accept_ms"),
                       ("applied at B", "node_B_ms"), ("applied at C", "node_C_ms"),
                       ("applied at B and C (slower of the two)", "all_nodes_ms")):
        s = p[key]
        lines.append("| %s | %.1f | %.1f | %.1f | %.1f |" % (label, s["p50"], s["p99"],
                                                           s["max"], s["mean"]))
    lines += [
        "",
        "## Accepting a prefix purge with N objects cached (target < 1 ms, flat in N)",
        "",
        "Node A filled with N 1-byte objects (distinct keys, through wrk from the bench "
        "origin); then %d prefix purges of new prefixes POSTed one after another on a "
        "keep-alive connection: time from sending the request to reading the 202, "
        "which includes the HTTP and JSON work, the rule journal and the pending "
        "file, each written and fdatasync'ed; here state_dir is on %s, so the syncs "
        "cost little.  With state_dir on %s (the propagation run above, a nearly "
        "empty cache) the same POST takes p50 %.1f ms, p99 %.1f ms: two fdatasyncs "
        "of the disk." % (res["accepts"], res["accept_state_fs"], res["state_fs"],
                         p["accept_ms"]["p50"], p["accept_ms"]["p99"]),
        "",
        "\"in the server\" is the mean time in the admin handler (parse, apply, journal, "
        "answer queued), from GET /v1/stats (purge.accept_us_total / accepted): the part "
        "the cache size could change, free of the client's and the scheduler's share.",
        "",
        "| objects cached | s3edge RSS MiB | in the server, mean ms | client p50 ms "
        "| client p99 ms | client max ms | objects after |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in res["accept"]:
        s = r["accept_ms"]
        lines.append("| {:,} | {} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {:,} |".format(
            r["objects"], r["rss_mib"], r["server_mean_ms"], s["p50"], s["p99"], s["max"],
            r["objects_after"]))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--purges", type=int, default=200)
    ap.add_argument("--accepts", type=int, default=50)
    ap.add_argument("--sizes", default="10000,100000,1000000",
                    help="object counts, comma-separated, ascending")
    ap.add_argument("--memory", default="6GiB",
                    help="memory cache of the filled node (a 1-byte object takes a 4 KiB "
                    "chunk and its metadata: about 5 KiB)")
    ap.add_argument("--quick", action="store_true", help="50 purges, sizes 1000,10000")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    if args.quick:
        args.purges, args.sizes = 50, "1000,10000"
    sizes = [int(x) for x in args.sizes.split(",")]
    b = Bench(args)
    if not os.path.exists(b.s3edge):
        sys.exit("purge bench: no s3edge at %s (build it, or set S3EDGE_BIN)" % b.s3edge)
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    t0 = time.monotonic()
    res = {"started": started, "machine": machine(), "purges": args.purges,
           "accepts": args.accepts,
           "redis": version(["redis-server", "--version"]).split(" sha=")[0],
           "s3edge": version([b.s3edge, "-v"])}
    try:
        b.start_origin()
        b.start_redis()
        b.start_node("A", args.memory)
        b.start_node("B", "64MiB")
        b.start_node("C", "64MiB")
        res["state_fs"] = fs_type(b.work)
        log("propagation: %d purges at A" % args.purges)
        res["propagation"] = b.propagation(args.purges)
        pr = res["propagation"]
        log("propagation to B and C: p50 %.1f ms, p99 %.1f ms" %
            (pr["all_nodes_ms"]["p50"], pr["all_nodes_ms"]["p99"]))
        for n in ("A", "B", "C"):
            b.stop_node(n)
        # a fresh node for the fill, its state on tmpfs: what accepting
        # costs besides the fdatasyncs of the disk (which the propagation
        # run's "POST at A answered" row shows)
        shm = os.environ.get("BENCH_SHM") or "/dev/shm"
        if not (os.path.isdir(shm) and os.access(shm, os.W_OK)):
            shm = b.work
        b.shm = tempfile.mkdtemp(prefix="s3edge-purge-state-", dir=shm)
        res["accept_state_fs"] = fs_type(b.shm)
        b.start_node("A", args.memory, state_base=b.shm)
        res["accept"] = b.accept_vs_size(sizes, args.accepts)
    finally:
        b.procs.stop_all()
        if getattr(b, "shm", None):
            shutil.rmtree(b.shm, ignore_errors=True)
    res["elapsed_s"] = time.monotonic() - t0
    text = render(res)
    print(text)
    os.makedirs(os.path.join(args.out, "raw"), exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    with open(os.path.join(args.out, "raw", "purge-%s.json" % stamp), "w") as f:
        json.dump(res, f, indent=1)
    if not args.quick:
        with open(os.path.join(args.out, "purge-latest.md"), "w") as f:
            f.write(text)
    if b.own_work:
        shutil.rmtree(b.work, ignore_errors=True)


if __name__ == "__main__":
    main()
