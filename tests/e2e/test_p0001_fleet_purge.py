"""p0001: fleet-wide invalidation with a real redis-server and three s3edge
nodes on loopback: a purge at one node makes every node miss next time
(exact, prefix, tag), a soft purge serves stale while it revalidates, the
admin API's status goes Completed once every live node applied it, and
propagation latency over 100 purges is printed."""

import json
import time

import harness
from fleetutil import (Admin, ctl, fleet, origin_gets, percentile,  # noqa: F401
                       redis, TOKEN)


def put(fault, key, **kw):
    kw.setdefault("size", 2000)
    kw.setdefault("cache_control", "max-age=3600")
    return fault.put(key, **kw)


def warm(get, nodes, key):
    """GET through every node twice: one origin fetch each, then hits."""
    for n in nodes:
        for _ in range(2):
            r = get(n.url("/" + key))
            assert r.status == 200, r.status


def three(fleet):
    a, b, c = fleet.start("A"), fleet.start("B"), fleet.start("C")
    fleet.wait_nodes(a, ["A", "B", "C"])
    return a, b, c


def test_exact_purge_at_a_reaches_b_and_c(fleet, fault, get):
    a, b, c = three(fleet)
    key = "p0001/exact/a.bin"
    other = "p0001/exact/keep.bin"
    info = put(fault, key, seed=1)
    put(fault, other, seed=2)
    warm(get, [a, b, c], key)
    warm(get, [a, b, c], other)
    assert origin_gets(fault, key) == 3
    assert origin_gets(fault, other) == 3

    inv = a.admin.purge(["/" + key])
    doc = a.admin.wait_completed(inv)
    assert sorted(n["node"] for n in doc["nodes"]) == ["A", "B", "C"]
    assert all(n["applied"] for n in doc["nodes"])
    assert doc["paths"] == ["/" + key] and doc["soft"] is False
    # the same status from another node
    assert b.admin.wait_completed(inv)["id"] == inv

    for n in (b, c, a):
        r = get(n.url("/" + key))
        assert r.status == 200
        assert harness.sha256(r.body) == info["sha256"]
    assert origin_gets(fault, key) == 6
    # and then hits again; the other object was never purged
    warm(get, [a, b, c], key)
    warm(get, [a, b, c], other)
    assert origin_gets(fault, key) == 6
    assert origin_gets(fault, other) == 3
    st = c.admin.stats()
    assert st["purge"]["rules"] == 1
    assert st["traffic"]["hits"] >= 3


def test_prefix_and_tag_purges(fleet, fault, get):
    a, b, c = three(fleet)
    keys = {
        "rel": "p0001/releases/2.1/app.tar",
        "rel2": "p0001/releases/2.1/sub/lib.tar",
        "other_ver": "p0001/releases/2.10/app.tar",
        "tagged": "p0001/img/logo.png",
        "tagged_hdr": "p0001/img/icon.png",
        "plain": "p0001/img/plain.png",
    }
    put(fault, keys["rel"], seed=3)
    put(fault, keys["rel2"], seed=4)
    put(fault, keys["other_ver"], seed=5)
    put(fault, keys["tagged"], seed=6,
        metadata={"surrogate-key": "brand release-2.1 logos"})
    put(fault, keys["tagged_hdr"], seed=7, headers={"Surrogate-Key": "icons release-2.1"})
    put(fault, keys["plain"], seed=8, metadata={"surrogate-key": "release-2.10"})
    for k in keys.values():
        warm(get, [a, b, c], k)
        assert origin_gets(fault, k) == 3

    inv = b.admin.purge(["/p0001/releases/2.1/*"])
    b.admin.wait_completed(inv)
    inv = c.admin.purge(tags=["release-2.1"])
    c.admin.wait_completed(inv)

    for k in keys.values():
        for n in (a, b, c):
            assert get(n.url("/" + k)).status == 200
    assert origin_gets(fault, keys["rel"]) == 6
    assert origin_gets(fault, keys["rel2"]) == 6
    assert origin_gets(fault, keys["tagged"]) == 6
    assert origin_gets(fault, keys["tagged_hdr"]) == 6
    # "/releases/2.1/*" is not "/releases/2.10/"; "release-2.1" is not "release-2.10"
    assert origin_gets(fault, keys["other_ver"]) == 3
    assert origin_gets(fault, keys["plain"]) == 3


def test_purge_everything(fleet, fault, get):
    a, b, c = three(fleet)
    ks = ["p0001/all/%d" % i for i in range(5)]
    for i, k in enumerate(ks):
        put(fault, k, seed=10 + i)
        warm(get, [a, b, c], k)
    a.admin.wait_completed(a.admin.purge(["/*"]))
    for k in ks:
        for n in (a, b, c):
            assert get(n.url("/" + k)).status == 200
        assert origin_gets(fault, k) == 6


def test_soft_purge_serves_stale_while_revalidating(fleet, fault, get):
    a, b, c = three(fleet)
    key = "p0001/soft/page.html"
    info = put(fault, key, seed=20, cache_control="max-age=3600, stale-while-revalidate=60")
    hard_key = "p0001/soft/nostale.html"
    put(fault, hard_key, seed=21, cache_control="max-age=3600")
    warm(get, [a, b, c], key)
    warm(get, [a, b, c], hard_key)
    fault.reset()
    put(fault, key, seed=20, cache_control="max-age=3600, stale-while-revalidate=60")
    put(fault, hard_key, seed=21, cache_control="max-age=3600")

    inv = a.admin.purge(["/" + key, "/" + hard_key], soft=True)
    doc = a.admin.wait_completed(inv)
    assert doc["soft"] is True

    for n in (a, b, c):
        # within stale-while-revalidate: the stored copy now, a
        # conditional refresh behind it
        r = get(n.url("/" + key))
        assert r.status == 200
        assert harness.sha256(r.body) == info["sha256"]
    reqs = harness.wait_for(
        lambda: (lambda rs: rs if len(rs) >= 3 else None)(fault.requests_for(key)),
        5, "three background revalidations")
    assert len(reqs) == 3
    for rq in reqs:
        assert rq["headers"].get("if-none-match") == info["etag"], rq["headers"]
    # refreshed by a 304: hits again, no more origin traffic
    for n in (a, b, c):
        assert get(n.url("/" + key)).status == 200
    assert len(fault.requests_for(key)) == 3

    # no stale-while-revalidate: revalidated before it is served
    for n in (a, b, c):
        r = get(n.url("/" + hard_key))
        assert r.status == 200
    reqs = fault.requests_for(hard_key)
    assert len(reqs) == 3
    assert all(rq["headers"].get("if-none-match") for rq in reqs)
    for n in (a, b, c):
        assert get(n.url("/" + hard_key)).status == 200
    assert len(fault.requests_for(hard_key)) == 3


def test_s3edgectl(fleet, fault, get, tmp_path):
    a, b, c = three(fleet)
    key = "p0001/ctl/x.bin"
    put(fault, key, seed=30)
    warm(get, [a, b, c], key)
    env = {"S3EDGE_ADMIN": "127.0.0.1:%d" % a.admin.port, "S3EDGE_TOKEN": TOKEN}

    rc, out, err = ctl("purge", "/" + key, "--wait", "--timeout", "10", env=env)
    assert rc == 0, (out, err)
    assert '"Completed"' in out
    for n in (a, b, c):
        assert get(n.url("/" + key)).status == 200
    assert origin_gets(fault, key) == 6

    rc, out, err = ctl("purge", "--tag", "t-ctl", "--soft", env=env)
    assert rc == 0, err
    inv = json.loads(out)["id"]
    rc, out, err = ctl("status", inv, env=env)
    assert rc == 0 and json.loads(out)["id"] == inv
    rc, out, err = ctl("nodes", env=env)
    assert rc == 0
    assert sorted(n["node"] for n in json.loads(out)["nodes"]) == ["A", "B", "C"]
    rc, out, _ = ctl("list", env=env)
    assert rc == 0 and len(json.loads(out)["invalidations"]) == 2

    # the server and token from flags and from a config file
    conf = tmp_path / "ctl.conf"
    tokf = tmp_path / "ctl.token"
    tokf.write_text(TOKEN + "\n")
    conf.write_text("# s3edgectl\nserver = 127.0.0.1:%d\ntoken_file = %s\n"
                    % (b.admin.port, tokf))
    rc, out, err = ctl("--config", conf, "status", inv)
    assert rc == 0, err
    rc, out, err = ctl("-s", "127.0.0.1:%d" % c.admin.port, "-t", TOKEN, "status", inv)
    assert rc == 0, err

    # exit codes scripts can use
    rc, _, err = ctl("purge", "/x", env={"S3EDGE_ADMIN": env["S3EDGE_ADMIN"]})
    assert rc == 4 and "401" in err
    rc, _, err = ctl("purge", "/x", env=dict(env, S3EDGE_TOKEN="wrong"))
    assert rc == 4 and "403" in err
    rc, _, err = ctl("purge", "no-slash", env=env)
    assert rc == 5 and "must start with '/'" in err
    rc, _, err = ctl("status", "INOSUCHID", env=env)
    assert rc == 5
    rc, _, _ = ctl("purge", env=env)
    assert rc == 2
    rc, _, _ = ctl("frobnicate", env=env)
    assert rc == 2
    rc, _, err = ctl("nodes", env={"S3EDGE_ADMIN": "127.0.0.1:%d" % harness.free_port(),
                                   "S3EDGE_TOKEN": TOKEN})
    assert rc == 3, err
    # nothing above was applied
    assert len(a.admin.request("GET", "/v1/invalidations")[1]["invalidations"]) == 2


def test_propagation_latency_over_100_purges(fleet, fault):
    a, b, c = three(fleet)
    lat = []
    for i in range(100):
        t0 = time.monotonic()
        inv = a.admin.purge(["/p0001/lat/%d" % i])
        seen = set()
        for _ in range(5000):
            for n in (b, c):
                if n.name not in seen and (n.admin.inv(inv) or {}).get("applied_here"):
                    seen.add(n.name)
            if len(seen) == 2:
                break
            time.sleep(0.001)
        assert len(seen) == 2, "purge %d did not reach B and C" % i
        lat.append((time.monotonic() - t0) * 1000)
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    print("\npropagation over 100 purges (POST at A until applied at B and C): "
          "p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (p50, p99, max(lat)))
    assert p99 < 5000
