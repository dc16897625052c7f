"""p0006: Redis Sentinel for master discovery. One master, one replica and
one Sentinel (Debian's redis-server in Sentinel mode) on loopback; three
nodes configured with redis.sentinel only; a purge before and a purge
after a failover forced with SENTINEL FAILOVER both reach every node."""

import subprocess

import harness
from fleetutil import FAULT_CONF_HEAD, REDIS_BIN, REDIS_CLI, TOKEN, Admin, Redis, origin_gets

MASTER = "e2e-master"

CONF = FAULT_CONF_HEAD + """\
node:
  id: %(node)s
  state_dir: %(state)s
admin:
  listen: 127.0.0.1:%(aport)d
  tokens: [%(token)s]
redis:
  sentinel:
    master: %(master)s
    addrs: ["127.0.0.1:%(dead)d", "127.0.0.1:%(sport)d"]
heartbeat: 100ms
"""


def cli(port, *args):
    r = subprocess.run([REDIS_CLI, "-p", str(port), "--raw"] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=10)
    return r.stdout.strip()


class Sentinel:
    def __init__(self, workdir, master_port):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = harness.free_port()
        conf = self.dir / "sentinel.conf"
        conf.write_text(
            "port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\n"
            "sentinel monitor %s 127.0.0.1 %d 1\n"
            "sentinel down-after-milliseconds %s 2000\n"
            "sentinel failover-timeout %s 10000\n"
            % (self.port, self.dir, MASTER, master_port, MASTER, MASTER))
        log = open(self.dir / "sentinel.log", "ab")
        self.proc = subprocess.Popen([REDIS_BIN, str(conf), "--sentinel"],
                                     stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=log, start_new_session=True)
        log.close()
        harness.wait_for(lambda: self.proc.poll() is not None
                         or cli(self.port, "PING") == "PONG", 10,
                         "redis-sentinel to answer")
        assert self.proc.poll() is None, (self.dir / "sentinel.log").read_text()

    def master_port(self):
        out = cli(self.port, "SENTINEL", "get-master-addr-by-name", MASTER).split()
        return int(out[1]) if len(out) == 2 else None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def test_purge_reaches_every_node_after_a_failover(edge, fault, get, tmp_path):
    master = Redis(tmp_path / "master")
    replica = Redis(tmp_path / "replica",
                    extra=["--replicaof", "127.0.0.1", str(master.port)])
    sentinel = None
    try:
        harness.wait_for(lambda: "master_link_status:up"
                         in cli(replica.port, "INFO", "replication"), 20,
                         "the replica in sync")
        sentinel = Sentinel(tmp_path / "sentinel", master.port)
        # the Sentinel learns of the replica from the master's INFO
        harness.wait_for(lambda: str(replica.port) in cli(
            sentinel.port, "SENTINEL", "replicas", MASTER), 30,
            "the Sentinel to know the replica")

        nodes = {}
        for name in ("A", "B", "C"):
            state = tmp_path / ("state-" + name)
            state.mkdir()
            aport = harness.free_port()
            e = edge(config=CONF % {
                "origin": fault.url, "node": name, "state": state, "aport": aport,
                "token": TOKEN, "master": MASTER, "sport": sentinel.port,
                # a Sentinel that is not there: the next one is asked
                "dead": harness.free_port()})
            a = Admin(aport)
            harness.wait_for(a.ready, 15, "%s ready" % name)
            nodes[name] = (e, a)

        def view_is_full(a):
            d = a.nodes()
            return d["redis_connected"] and \
                sorted(n["node"] for n in d["nodes"]) == ["A", "B", "C"]

        for _, a in nodes.values():
            harness.wait_for(lambda: view_is_full(a), 15, "the fleet view")
        # the nodes talk to the master the Sentinel names
        assert cli(master.port, "SISMEMBER", "s3edge:nodes", "C") == "1"

        k1, k2 = "p0006/one.bin", "p0006/two.bin"
        fault.put(k1, size=1500, seed=61, cache_control="max-age=3600")
        fault.put(k2, size=1500, seed=62, cache_control="max-age=3600")
        for e, _ in nodes.values():
            for k in (k1, k2, k1, k2):
                assert get(e.url("/" + k)).status == 200
        assert origin_gets(fault, k1) == 3 and origin_gets(fault, k2) == 3

        inv = nodes["A"][1].purge(["/" + k1])
        nodes["A"][1].wait_completed(inv)
        for e, _ in nodes.values():
            assert get(e.url("/" + k1)).status == 200
        assert origin_gets(fault, k1) == 6
        # the replica has it all before the failover
        assert cli(master.port, "WAIT", "1", "5000") == "1"

        assert cli(sentinel.port, "SENTINEL", "FAILOVER", MASTER) == "OK"
        harness.wait_for(lambda: sentinel.master_port() == replica.port, 30,
                         "the Sentinel to name the replica")
        harness.wait_for(lambda: cli(replica.port, "ROLE").startswith("master"),
                         30, "the replica promoted")
        # every node follows: it connects to the new master (the node set
        # below was there before, replicated, so it alone proves nothing;
        # a purge sent to the old master in the failover window is lost
        # when it resyncs, as Redis' asynchronous replication has it)
        harness.wait_for(lambda: all("connected to 127.0.0.1:%d" % replica.port
                                     in e.stderr_text() for e, _ in nodes.values()),
                         30, "every node connected to the new master")
        harness.wait_for(lambda: cli(replica.port, "SCARD", "s3edge:nodes") == "3"
                         and all(cli(replica.port, "EXISTS", "s3edge:node:" + n) == "1"
                                 for n in nodes), 30, "the nodes on the new master")
        for _, a in nodes.values():
            harness.wait_for(lambda: view_is_full(a), 15, "the fleet view again")

        inv2 = nodes["B"][1].purge(["/" + k2])
        doc = nodes["B"][1].wait_completed(inv2, timeout=15)
        assert sorted(n["node"] for n in doc["nodes"]) == ["A", "B", "C"]
        assert nodes["C"][1].wait_completed(inv2)["id"] == inv2
        # written to the new master's stream
        assert inv2 in cli(replica.port, "XRANGE", "s3edge:purges", "-", "+")
        for e, _ in nodes.values():
            assert get(e.url("/" + k2)).status == 200
        assert origin_gets(fault, k2) == 6
        # and k1 stays purged once, not again (nothing invalidated twice)
        for e, _ in nodes.values():
            assert get(e.url("/" + k1)).status == 200
        assert origin_gets(fault, k1) == 6
        logs = "".join(e.stderr_text() for e, _ in nodes.values())
        assert "connected to 127.0.0.1:%d" % replica.port in logs
        assert "Sentinel 127.0.0.1:" in logs  # the dead one, skipped
    finally:
        if sentinel is not None:
            sentinel.kill()
        replica.kill()
        master.kill()
