"""p0002: invalidation through outages: Redis down (a purge is applied at
once where it was accepted, kept, and pushed when Redis returns), a node
down (it catches up before it reports ready), a stream trimmed past a
node's id (it invalidates everything older, conservatively), and rules
that survive a restart without Redis."""

import time

import harness
from fleetutil import Admin, fleet, origin_gets, redis  # noqa: F401


def put(fault, key, seed):
    return fault.put(key, size=1500, seed=seed, cache_control="max-age=3600")


def warm(get, nodes, key):
    for n in nodes:
        for _ in range(2):
            assert get(n.url("/" + key)).status == 200


def test_redis_down_purge_is_kept_and_pushed(fleet, fault, get, redis):
    a, b, c = fleet.start("A"), fleet.start("B"), fleet.start("C")
    fleet.wait_nodes(a, ["A", "B", "C"])
    key = "p0002/down/x.bin"
    put(fault, key, 1)
    warm(get, [a, b, c], key)

    redis.kill()
    harness.wait_for(lambda: not a.admin.nodes()["redis_connected"], 5, "A sees Redis gone")
    inv = a.admin.purge(["/" + key])
    doc = a.admin.inv(inv)
    assert doc["status"] == "InProgress" and doc["pushed"] is False
    # applied at A at once; serving goes on everywhere
    assert get(a.url("/" + key)).status == 200
    assert origin_gets(fault, key) == 4
    for n in (b, c):
        assert get(n.url("/" + key)).status == 200
    assert origin_gets(fault, key) == 4
    assert (fleet.tmp / "state-A" / "pending").read_text().count(inv) == 1

    redis.start()
    doc = a.admin.wait_completed(inv, timeout=15)
    assert doc["pushed"] is True
    assert sorted(n["node"] for n in doc["nodes"]) == ["A", "B", "C"]
    for n in (b, c):
        assert n.admin.inv(inv)["applied_here"] is True
        assert get(n.url("/" + key)).status == 200
    assert origin_gets(fault, key) == 6
    assert (fleet.tmp / "state-A" / "pending").read_text() == ""


def test_node_down_catches_up_before_ready(fleet, fault, get, redis):
    a, b, c = fleet.start("A"), fleet.start("B"), fleet.start("C")
    fleet.wait_nodes(a, ["A", "B", "C"])
    key = "p0002/catchup/x.bin"
    put(fault, key, 2)
    warm(get, [a, b, c], key)

    assert c.edge.stop() == []
    inv = a.admin.purge(["/p0002/catchup/*"])
    # C's heartbeat expires: Completed without it
    doc = a.admin.wait_completed(inv, timeout=10)
    assert sorted(n["node"] for n in doc["nodes"]) == ["A", "B"]

    # C comes back while Redis is down: it cannot catch up, so not ready
    redis.kill()
    c2 = fleet.start("C", wait_ready=False)
    time.sleep(0.5)
    assert not c2.admin.ready()
    st, body, _ = c2.admin.request("GET", "/readyz", token=None)
    assert st == 503 and body["ready"] is False
    # it serves all the same (from the origin: nothing stale in it)
    assert get(c2.url("/" + key)).status == 200
    redis.start()
    harness.wait_for(c2.admin.ready, 15, "C ready after catching up")
    assert c2.admin.inv(inv)["applied_here"] is True
    # what C fetched before it caught up is not trusted either
    n0 = origin_gets(fault, key)
    assert get(c2.url("/" + key)).status == 200
    assert origin_gets(fault, key) == n0 + 1
    assert get(c2.url("/" + key)).status == 200
    assert origin_gets(fault, key) == n0 + 1
    fleet.wait_nodes(a, ["A", "B", "C"])


def test_stream_trimmed_past_a_node_invalidates_everything_older(fleet, fault, get, redis):
    a, b, c = fleet.start("A"), fleet.start("B"), fleet.start("C")
    fleet.wait_nodes(a, ["A", "B", "C"])
    key = "p0002/trim/x.bin"
    put(fault, key, 3)
    warm(get, [a, b, c], key)
    assert c.edge.stop() == []
    for i in range(3):
        a.admin.purge(["/p0002/trim/other%d" % i])
    harness.wait_for(lambda: int(redis.cli_raw("XLEN", "s3edge:purges")) >= 3, 5, "3 entries")
    redis.cli("XTRIM", "s3edge:purges", "MAXLEN", "0")
    assert redis.cli_raw("XLEN", "s3edge:purges").strip() == "0"

    c2 = fleet.start("C")
    log = c2.edge.stderr_text()
    assert "trimmed past our last applied id" in log
    invs = c2.admin.request("GET", "/v1/invalidations")[1]["invalidations"]
    gap = [i for i in invs if i["id"].startswith("GAP")]
    assert len(gap) == 1 and gap[0]["status"] == "Completed"
    assert c2.admin.stats()["purge"]["rules"] >= 1
    # A and B were not affected: still hits
    for n in (a, b):
        assert get(n.url("/" + key)).status == 200
    assert origin_gets(fault, key) == 3


def test_rules_survive_restart_without_redis(edge, fault, get, tmp_path):
    tok = tmp_path / "tok"
    tok.write_text("solo-token\n")
    state = tmp_path / "state"
    state.mkdir()
    aport = harness.free_port()
    args = ["--origin", fault.origin_url(), "--anonymous", "--admin-listen",
            "127.0.0.1:%d" % aport, "--admin-token-file", tok, "--state-dir", state,
            "--node-id", "solo"]
    e = edge(args, env={})
    adm = Admin(aport, token="solo-token")
    harness.wait_for(adm.healthy, 5, "admin API")
    inv = adm.purge(["/p0002/solo/*", "/p0002/x"], tags=["t1"])
    assert adm.inv(inv)["status"] == "Completed"  # a fleet of one
    assert adm.stats()["purge"]["rules"] == 3
    assert e.stop() == []
    e2 = edge(args, env={})
    harness.wait_for(adm.healthy, 5, "admin API")
    assert adm.stats()["purge"]["rules"] == 3
    key = "p0002/solo/y"
    put(fault, key, 4)
    # fetched after the rules were applied: cached normally
    assert get(e2.url("/" + key)).status == 200
    assert get(e2.url("/" + key)).status == 200
    assert origin_gets(fault, key) == 1
    assert adm.nodes()["nodes"][0]["node"] == "solo"
