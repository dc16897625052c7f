"""p0005: the status of an invalidation is answered by any node, also one
that never applied it (from the index in Redis), and the list of recent
invalidations survives a restart (STATE_DIR/invalidations)."""

import json

import harness
from fleetutil import Admin, fleet, redis  # noqa: F401


def test_status_from_a_node_that_never_applied_it(fleet, fault, redis):
    a = fleet.start("A")
    inv = a.admin.purge(["/p0005/x.bin"], tags=["t1"])
    a.admin.wait_completed(inv)
    # a node started later begins at the end of the stream: it never
    # applies (nor lists) that invalidation, yet answers its status
    d = fleet.start("D")
    fleet.wait_nodes(d, ["A", "D"])
    assert d.admin.request("GET", "/v1/invalidations")[1]["invalidations"] == []
    doc = harness.wait_for(
        lambda: (lambda x: x if x and x["status"] == "Completed"
                 and len(x["nodes"]) == 2 else None)(d.admin.inv(inv)),
        10, "the status at D")
    assert doc["id"] == inv and doc["node"] == "A"
    assert doc["paths"] == ["/p0005/x.bin"] and doc["tags"] == ["t1"]
    assert doc["soft"] is False and doc["pushed"] is True
    assert doc["applied_here"] is False and a.admin.inv(inv)["applied_here"] is True
    assert sorted((n["node"], n["applied"]) for n in doc["nodes"]) == \
        [("A", True), ("D", True)]
    # the stream id agrees with A's answer
    assert doc["stream_id"] == a.admin.inv(inv)["stream_id"] != ""
    # the index entry holds what the stream holds, with an expiry
    assert redis.cli_raw("HGET", "s3edge:inv:" + inv, "sid").strip() == \
        doc["stream_id"]
    assert int(redis.cli_raw("PTTL", "s3edge:inv:" + inv)) > 6 * 86400 * 1000

    # unknown everywhere: 404; not an id at all: 404 without asking Redis
    st, body, _ = d.admin.request("GET", "/v1/invalidations/INOSUCHTHING234")
    assert st == 404 and body == {"error": "no such invalidation"}
    st, _, _ = d.admin.request("GET", "/v1/invalidations/a%2Fb")
    assert st == 404
    # Redis gone: an id this node does not know cannot be told apart
    redis.kill()
    harness.wait_for(lambda: not d.admin.nodes()["redis_connected"], 10,
                     "D to see Redis gone")
    st, body, _ = d.admin.request("GET", "/v1/invalidations/" + inv)
    assert st == 503 and "Redis" in body["error"], body
    # what a node knows it still answers
    assert a.admin.inv(inv)["id"] == inv


def test_a_push_is_never_appended_twice(fleet, fault, redis):
    """The stream append and the index are one script: an invalidation
    indexed already is not appended again (a push whose answer was lost
    is retried when Redis comes back)."""
    a = fleet.start("A")
    inv = a.admin.purge(["/p0005/once.bin"])
    a.admin.wait_completed(inv)
    sid = redis.cli_raw("HGET", "s3edge:inv:" + inv, "sid").strip()
    entries = redis.cli_raw("XRANGE", "s3edge:purges", "-", "+")
    assert entries.count(inv) == 1 and sid in entries


def test_recent_list_survives_restart(fleet, fault, get, redis):
    a = fleet.start("A")
    b = fleet.start("B")
    fleet.wait_nodes(a, ["A", "B"])
    ids = [a.admin.purge(["/p0005/r%d.bin" % i]) for i in range(3)]
    ids.append(b.admin.purge(tags=["from-b"], soft=True))
    for i in ids:
        a.admin.wait_completed(i)
        b.admin.wait_completed(i)
    before = a.admin.request("GET", "/v1/invalidations")[1]["invalidations"]
    assert [x["id"] for x in before] == ids[::-1]
    lines = (a.state_dir / "invalidations").read_text().splitlines()
    assert {json.loads(x)["id"] for x in lines} == set(ids)

    assert a.edge.stop() == []
    redis.kill()  # and Redis is gone when it comes back
    a2 = fleet.start("A", wait_ready=False)
    after = a2.admin.request("GET", "/v1/invalidations")[1]["invalidations"]
    assert [x["id"] for x in after] == ids[::-1]
    for x, y in zip(before, after):
        assert (x["node"], x["created"], x["stream_id"], x["pushed"]) == \
            (y["node"], y["created"], y["stream_id"], y["pushed"])
    doc = a2.admin.inv(ids[3])
    assert doc["tags"] == ["from-b"] and doc["soft"] is True and doc["node"] == "B"
    doc = a2.admin.inv(ids[0])
    assert doc["paths"] == ["/p0005/r0.bin"] and doc["pushed"] is True


def test_recent_list_survives_restart_without_redis(edge, fault, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    tok = tmp_path / "tokens"
    tok.write_text("tok-0123456789\n")

    def start():
        aport = harness.free_port()
        e = edge(["--origin", fault.origin_url(), "--anonymous",
                  "--admin-listen", "127.0.0.1:%d" % aport,
                  "--admin-token-file", str(tok), "--node-id", "solo",
                  "--state-dir", str(state)], env={})
        a = Admin(aport, "tok-0123456789")
        harness.wait_for(a.ready, 10, "ready")
        return e, a

    e, a = start()
    ids = [a.purge(["/p0005/solo%d" % i]) for i in range(5)]
    assert all(a.inv(i)["status"] == "Completed" for i in ids)
    assert e.stop() == []
    # a torn last line (a crash while appending) is skipped
    with open(state / "invalidations", "a") as f:
        f.write('{"id":"Itorn","node":"so')
    e, a = start()
    after = a.request("GET", "/v1/invalidations")[1]["invalidations"]
    assert [x["id"] for x in after] == ids[::-1]
    assert all(x["status"] == "Completed" for x in after)
    assert a.request("GET", "/v1/invalidations/Itorn")[0] == 404
    # rewritten without the torn line at start
    lines = (state / "invalidations").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ids
