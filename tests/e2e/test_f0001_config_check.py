"""
f0001: `s3edge -t -c FILE` checks a config: exit 0 for a good one; exit 1
with "FILE:LINE: key.path: what was expected" on stderr for a bad one,
LINE being the line of the offending key or value. A good config also
serves (static credentials from the file, signed and checked by the gate).
"""

import subprocess

import pytest

GOOD = """\
listen:
  - $listen
log:
  level: info
  access_log: $access_log
cache:
  memory_size: 64MiB
  max_object_size: 8MiB
limits:
  max_headers: 50
origins:
  - name: s3
    endpoint: $endpoint
    bucket: e2e
    region: us-east-1
    addressing: path
    credentials:
      source: static
      access_key_id: $akid
      secret_access_key: $secret
    first_byte_timeout: 5s
distributions:
  - name: main
    hosts: ["*"]
    origin: s3
    default_ttl: 1h
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

# (id, text, line, key path, the error names it)
BAD = [
    ("bad-yaml", BASE + "cache:\n  memory_size: 1MiB: 2MiB\n", 11, None),
    ("unknown-top-key", BASE + "cahce:\n  memory_size: 1MiB\n", 10, "cahce"),
    ("unknown-nested-key", BASE + "cache:\n  memroy_size: 1MiB\n", 11,
     "cache.memroy_size"),
    ("bad-size", BASE + "cache:\n  memory_size: 12 parsecs\n", 11,
     "cache.memory_size"),
    ("bad-duration", BASE.replace("    bucket: e2e\n",
                                  "    bucket: e2e\n"
                                  "    first_byte_timeout: soon\n"), 7,
     "origins[0].first_byte_timeout"),
    ("unknown-origin", BASE.replace("    origin: s3", "    origin: nosuch"), 9,
     "distributions[0].origin"),
    ("bad-port", BASE.replace("127.0.0.1:8080", "127.0.0.1:99999"), 2,
     "listen[0]"),
    ("missing-listen", BASE.replace("listen:\n  - 127.0.0.1:8080\n", ""),
     None, "listen"),
    ("bad-addressing", BASE.replace("    bucket: e2e\n",
                                    "    bucket: e2e\n"
                                    "    addressing: sideways\n"), 7,
     "origins[0].addressing"),
    ("bad-credentials-source", BASE.replace(
        "    bucket: e2e\n",
        "    bucket: e2e\n    credentials:\n      source: magic\n"), 8,
     "origins[0].credentials.source"),
    ("duplicate-key", BASE + "workers: 1\nworkers: 2\n", 11, "workers"),
]


def run_check(s3edge_bin, path):
    return subprocess.run([str(s3edge_bin), "-t", "-c", str(path)],
                          capture_output=True, timeout=20)


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_config(s3edge_bin, tmp_path, case):
    name, text, line, key = case
    p = tmp_path / ("%s.yaml" % name)
    p.write_text(text)
    r = run_check(s3edge_bin, p)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 1, (r.returncode, err)
    if line is not None:
        assert "%s:%d:" % (p, line) in err, err
    else:
        assert str(p) + ":" in err, err
    if key is not None:
        assert key in err, err


def test_missing_file(s3edge_bin, tmp_path):
    p = tmp_path / "nope.yaml"
    r = run_check(s3edge_bin, p)
    assert r.returncode == 1
    assert str(p) in r.stderr.decode("utf-8", "replace")


def test_reference_configs_check(s3edge_bin):
    import harness
    for name in ("s3edge.yaml", "demo.yaml"):
        p = harness.REPO / "conf" / name
        if p.exists():
            r = run_check(s3edge_bin, p)
            assert r.returncode == 0, (name, r.stderr)


def test_good_config_checks_and_serves(s3, edge, get, tmp_path, s3edge_bin):
    from string import Template
    text = Template(GOOD).safe_substitute(endpoint=s3.url, akid=s3.AKID,
                                          secret=s3.SECRET)
    p = tmp_path / "good.yaml"
    p.write_text(Template(text).safe_substitute(listen="127.0.0.1:1",
                                                access_log="off"))
    r = run_check(s3edge_bin, p)
    assert r.returncode == 0, r.stderr

    s3.put("f0001/conf.txt", b"served by a config file")
    e = edge(config=text, env={})
    r1 = get(e.url("/f0001/conf.txt"))
    r2 = get(e.url("/f0001/conf.txt"))
    assert r1.status == 200 and r1.body == b"served by a config file", r1
    assert (r1.xcache(), r2.xcache()) == ("miss", "hit")
    assert s3.gets("f0001/conf.txt") == 1
    assert [l["cache"] for l in e.wait_access(2)] == ["MISS", "HIT"]
