"""p0004: a fleet node configured from its YAML file alone (node, admin,
redis, heartbeat sections), purging through its admin API; the command
line overriding the file; bad fleet keys refused with FILE:LINE: key; a
hard purge of an exact path takes the object out of the memory cache at
once (the object and byte counters go down)."""

import subprocess

import pytest

import harness
from fleetutil import FAULT_CONF_HEAD, Admin, TOKEN, origin_gets, redis  # noqa: F401

CONF = FAULT_CONF_HEAD + """\
node:
  id: %(node)s
  pop: yaml-pop
  state_dir: %(state)s
admin:
  listen: 127.0.0.1:%(aport)d
  tokens: [%(token)s, second-token-xyz]
redis:
  url: %(redis)s
  stream_maxlen: 1000
heartbeat: 100ms
"""

BASE = """\
listen:
  - 127.0.0.1:8080
origins:
  - name: s3
    endpoint: http://127.0.0.1:9000
    bucket: e2e
distributions:
  - name: main
    origin: s3
"""

BAD = [
    ("admin-without-token", "admin:\n  listen: 127.0.0.1:9090\n", 11,
     "admin.tokens: missing, expected tokens or a token_file"),
    ("admin-bad-listen", "admin:\n  listen: localhost\n  tokens: [a]\n", 11,
     "admin.listen: expected host:port"),
    ("node-bad-id", "node:\n  id: \"a/b\"\n", 11,
     "node.id: expected a name of 1-100 letters"),
    ("redis-bad-url", "redis:\n  url: http://127.0.0.1:6379\n", 11,
     "redis.url: expected redis://"),
    ("redis-maxlen", "redis:\n  url: redis://127.0.0.1\n  stream_maxlen: 5\n",
     12, "redis.stream_maxlen: expected a number from 100"),
    ("sentinel-no-addrs", "redis:\n  sentinel:\n    master: m\n", 12,
     "redis.sentinel.addrs: missing"),
    ("heartbeat-zero", "heartbeat: 0s\n", 10,
     "heartbeat: expected a duration from 10ms to 1m"),
    ("unknown-key", "admin:\n  listen: 127.0.0.1:9090\n  tokenz: [a]\n", 12,
     "admin.tokenz: unknown key"),
]


def conf_text(fault, tmp_path, redis, node="yaml-a", aport=None):
    state = tmp_path / ("state-" + node)
    state.mkdir(exist_ok=True)
    aport = aport or harness.free_port()
    return CONF % {"origin": fault.url, "node": node, "state": state,
                   "aport": aport, "token": TOKEN, "redis": redis.url()}, aport


def test_node_from_yaml_only_purges(edge, fault, get, tmp_path, redis):
    text, aport = conf_text(fault, tmp_path, redis)
    e = edge(config=text)
    a = Admin(aport)
    harness.wait_for(a.ready, 10, "the node ready")
    # the second token of the list works too; others do not
    assert Admin(aport, "second-token-xyz").request("GET", "/v1/stats")[0] == 200
    assert Admin(aport, "wrong").request("GET", "/v1/stats")[0] == 403
    # its id and PoP label come from the file, its heartbeat reaches Redis
    doc = harness.wait_for(
        lambda: (lambda d: d if d["nodes"] else None)(a.nodes()), 10,
        "the node in its own fleet view")
    assert doc["self"] == "yaml-a"
    assert [(n["node"], n["pop"]) for n in doc["nodes"]] == [("yaml-a", "yaml-pop")]
    assert redis.cli("HGET", "s3edge:node:yaml-a", "pop") == "yaml-pop"
    ttl = int(redis.cli_raw("PTTL", "s3edge:node:yaml-a"))
    assert 0 < ttl <= 400, ttl  # 4 heartbeats of 100 ms

    key, keep = "p0004/a.bin", "p0004/keep.bin"
    fault.put(key, size=3000, seed=41, cache_control="max-age=3600")
    fault.put(keep, size=5000, seed=42, cache_control="max-age=3600")
    for k in (key, keep, key, keep):
        assert get(e.url("/" + k)).status == 200
    assert origin_gets(fault, key) == 1 and origin_gets(fault, keep) == 1
    before = a.stats()["cache"]
    assert before["objects"] == 2, before

    inv = a.purge(["/" + key])
    doc = a.wait_completed(inv)
    assert doc["paths"] == ["/" + key]
    # out of the memory index at once: one object and its bytes fewer
    after = a.stats()
    assert after["cache"]["objects"] == 1, after
    assert before["bytes"] - after["cache"]["bytes"] >= 3000, (before, after)
    assert after["cache"]["evictions"] == before["evictions"]
    assert after["purge"]["removed"] == 1 and after["purge"]["rules"] == 1
    # the purge is in the stream Redis holds, the file's cap applied
    assert inv in redis.cli_raw("XRANGE", "s3edge:purges", "-", "+")
    # a miss, then a hit again; the other object never left
    r = get(e.url("/" + key))
    assert r.status == 200 and harness.sha256(r.body) == \
        harness.sha256(harness.object_bytes(3000, 41))
    assert get(e.url("/" + key)).status == 200
    assert get(e.url("/" + keep)).status == 200
    assert origin_gets(fault, key) == 2 and origin_gets(fault, keep) == 1
    # a prefix purge leaves the index alone (the rule makes it a miss)
    a.purge(["/p0004/*"])
    assert a.stats()["cache"]["objects"] == 2
    assert get(e.url("/" + keep)).status == 200
    assert origin_gets(fault, keep) == 2


def test_soft_exact_purge_keeps_the_object(edge, fault, get, tmp_path, redis):
    text, aport = conf_text(fault, tmp_path, redis, node="yaml-soft")
    e = edge(config=text)
    a = Admin(aport)
    harness.wait_for(a.ready, 10, "the node ready")
    key = "p0004/soft.bin"
    fault.put(key, size=1000, seed=43, cache_control="max-age=3600")
    assert get(e.url("/" + key)).status == 200
    a.purge(["/" + key], soft=True)
    st = a.stats()
    assert st["cache"]["objects"] == 1 and st["purge"]["removed"] == 0


def test_command_line_overrides_the_file(edge, fault, tmp_path, redis):
    text, _ = conf_text(fault, tmp_path, redis, node="from-file")
    aport = harness.free_port()
    tok = tmp_path / "tokens"
    tok.write_text("cli-token-0123\n")
    e = edge(config=text, args=["--node-id", "from-cli", "--pop", "cli-pop",
                                "--admin-listen", "127.0.0.1:%d" % aport,
                                "--admin-token-file", str(tok)])
    a = Admin(aport, "cli-token-0123")
    harness.wait_for(a.ready, 10, "the node ready")
    doc = harness.wait_for(
        lambda: (lambda d: d if d["nodes"] else None)(a.nodes()), 10,
        "the node in its own fleet view")
    assert doc["self"] == "from-cli"
    assert doc["nodes"][0]["pop"] == "cli-pop"
    # the file's tokens stay valid alongside the file's
    assert Admin(aport, TOKEN).request("GET", "/v1/stats")[0] == 200
    assert "from-file" not in redis.cli_raw("SMEMBERS", "s3edge:nodes")
    assert e.check_alive() is None


def test_command_line_adds_what_the_file_lacks(s3edge_bin, tmp_path):
    # a file with admin.listen but no token passes -t with --admin-token-file
    p = tmp_path / "f.yaml"
    p.write_text(BASE + "admin:\n  listen: 127.0.0.1:9090\n")
    tok = tmp_path / "tokens"
    tok.write_text("t\n")
    r = subprocess.run([str(s3edge_bin), "-t", "-c", str(p)],
                       capture_output=True, timeout=15)
    assert r.returncode == 1
    assert "admin.tokens: missing" in r.stderr.decode()
    r = subprocess.run([str(s3edge_bin), "-t", "-c", str(p),
                        "--admin-token-file", str(tok)],
                       capture_output=True, timeout=15)
    assert r.returncode == 0, r.stderr.decode()
    # and a bad value from the command line is refused after the load
    r = subprocess.run([str(s3edge_bin), "-t", "-c", str(p), "--admin-token-file",
                        str(tok), "--node-id", "bad id"],
                       capture_output=True, timeout=15)
    assert r.returncode == 1
    assert "node.id: expected a name" in r.stderr.decode()


@pytest.mark.parametrize("name,text,line,msg", BAD, ids=[b[0] for b in BAD])
def test_bad_fleet_config(s3edge_bin, tmp_path, name, text, line, msg):
    p = tmp_path / "bad.yaml"
    p.write_text(BASE + text)
    r = subprocess.run([str(s3edge_bin), "-t", "-c", str(p)],
                       capture_output=True, timeout=15)
    err = r.stderr.decode()
    assert r.returncode == 1, (r.returncode, err)
    assert err.startswith("%s:%d: %s" % (p, line, msg)), err
