"""p0003: the admin API refuses bad input with a clear 4xx and applies
nothing: no token (401), a wrong token (403), bad JSON, unknown fields,
wrong types, a path without a leading '/', '*' inside a path, bad tags,
nothing to purge, too many paths, a huge body; unknown resources and
methods. After all of them the node has no rule, no invalidation, no
"accepted" line in its log, and no entry in the Redis stream."""

import json

import harness
from fleetutil import TOKEN, fleet, redis  # noqa: F401


CASES = [
    # (body bytes, status, words in the error)
    (b"{", 400, "bad JSON"),
    (b"", 400, "bad JSON"),
    (b"[]", 400, "JSON object"),
    (b'"x"', 400, "bad JSON"),
    (b'{"paths": ["/a"], "paths": ["/b"]}', 400, "bad JSON"),
    (b'{"paths": ["/a"], "bogus": 1}', 400, 'unknown field "bogus"'),
    (b'{"paths": "/a"}', 400, "array of strings"),
    (b'{"paths": [1]}', 400, "array of strings"),
    (b'{"tags": [null]}', 400, "array of strings"),
    (b'{"paths": ["/a"], "soft": "yes"}', 400, '"soft" must be true or false'),
    (b'{"paths": ["a/b"]}', 400, "must start with '/'"),
    (b'{"paths": [""]}', 400, "must start with '/'"),
    (b'{"paths": ["/a", "b"]}', 400, "must start with '/'"),
    (b'{"paths": ["/a*b"]}', 400, "'*' may only end a path"),
    (b'{"paths": ["/a\\u0000b"]}', 400, "NUL"),
    (b'{"paths": ["/a\\nb"]}', 400, "control characters"),
    (b'{"tags": ["two words"]}', 400, "one token"),
    (b'{"tags": [""]}', 400, "may not be empty"),
    (b'{}', 400, "nothing to invalidate"),
    (b'{"paths": [], "tags": []}', 400, "nothing to invalidate"),
    (json.dumps({"paths": ["/p%d" % i for i in range(3001)]}).encode(), 400,
     "too many paths and tags"),
    (json.dumps({"paths": ["/p%d" % i for i in range(2000)],
                 "tags": ["t%d" % i for i in range(1001)]}).encode(), 400,
     "too many paths and tags"),
    (json.dumps({"paths": ["/" + "a" * 3000]}).encode(), 400, "too long"),
]


def test_bad_input_applies_nothing(fleet, redis):
    a = fleet.start("A")
    adm = a.admin
    for body, status, words in CASES:
        st, doc, text = adm.request("POST", "/v1/invalidations", raw=body)
        assert st == status, (body[:80], st, text)
        assert doc is not None and words in doc["error"], (body[:80], text)

    # a huge body: refused before it is parsed
    big = b'{"paths": ["/' + b"a" * (300 * 1024) + b'"]}'
    try:
        st, _, text = adm.request("POST", "/v1/invalidations", raw=big)
        assert st == 413, (st, text)
    except (ConnectionResetError, BrokenPipeError):
        pass  # closed while we were still sending: refused all the same

    # tokens: none, wrong, empty, another scheme; and on every resource
    good = json.dumps({"paths": ["/a"]}).encode()
    for path, method in (("/v1/invalidations", "POST"), ("/v1/invalidations", "GET"),
                         ("/v1/nodes", "GET"), ("/v1/stats", "GET"),
                         ("/v1/invalidations/IX", "GET")):
        st, doc, _ = adm.request(method, path, raw=good if method == "POST" else None,
                                 token=None)
        assert st == 401 and "bearer token" in doc["error"]
        st, doc, _ = adm.request(method, path, raw=good if method == "POST" else None,
                                 token="wrong-" + TOKEN)
        assert st == 403 and "not valid" in doc["error"]
        st, doc, _ = adm.request(method, path, token=TOKEN[:-1])
        assert st == 403
    st, _, _ = adm.request("GET", "/v1/nodes", token=None,
                           headers={"Authorization": "Basic " + TOKEN})
    assert st == 401
    st, _, _ = adm.request("GET", "/v1/nodes", token="")
    assert st == 401

    # unknown resources and methods
    assert adm.request("GET", "/v1/nothing")[0] == 404
    assert adm.request("GET", "/")[0] == 404
    assert adm.request("GET", "/v1/invalidations/INOSUCH")[0] == 404
    assert adm.request("DELETE", "/v1/invalidations")[0] == 405
    assert adm.request("POST", "/v1/nodes", raw=b"{}")[0] == 405

    # nothing was applied, listed, logged as accepted or pushed
    assert adm.stats()["purge"]["rules"] == 0
    assert adm.request("GET", "/v1/invalidations")[1]["invalidations"] == []
    assert "accepted" not in a.edge.stderr_text()
    assert redis.cli_raw("XLEN", "s3edge:purges").strip() == "0"

    # and a good one still works after all that
    st, doc, _ = adm.request("POST", "/v1/invalidations", raw=good)
    assert st == 202 and doc["id"].startswith("I")
    assert adm.stats()["purge"]["rules"] == 1


def test_startup_refuses_bad_admin_settings(edge, fault, tmp_path):
    empty = tmp_path / "empty-tokens"
    empty.write_text("# no token here\n\n")
    base = ["--origin", fault.origin_url(), "--anonymous"]
    for extra, words in (
            (["--admin-listen", "127.0.0.1:%d" % harness.free_port()],
             "admin.tokens: missing"),
            (["--admin-listen", "127.0.0.1:%d" % harness.free_port(),
              "--admin-token-file", empty], "no token"),
            (["--admin-listen", "127.0.0.1:%d" % harness.free_port(),
              "--admin-token-file", tmp_path / "missing"], "cannot open"),
            (["--admin-listen", "nonsense", "--admin-token-file", empty],
             "admin.listen: expected host:port"),
            (["--redis", "http://127.0.0.1:1"], "expected redis://"),
            (["--redis", "redis://127.0.0.1:99999"], "port from 1 to 65535"),
            (["--state-dir", tmp_path / "no" / "such" / "dir"], "purge.rules")):
        try:
            e = edge(base + [str(x) for x in extra], env={})
        except AssertionError as ex:
            assert words in str(ex), (extra, str(ex))
            continue
        # the main listener opens before the admin settings are checked:
        # the process may have been seen listening on its way out
        harness.wait_for(lambda: e.proc.poll() is not None, 10,
                         "s3edge to refuse %s" % extra)
        e.stopped = True
        assert e.proc.returncode == 1, (extra, e.describe())
        assert words in e.stderr_text(), (extra, e.describe())
