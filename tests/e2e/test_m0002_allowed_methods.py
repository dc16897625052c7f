"""
m0002: allowed_methods, CloudFront's three sets. A method outside the
distribution's set is a 405 whose Allow header lists the set, and reaches
no origin; OPTIONS, when allowed, is forwarded (a CORS preflight gets the
origin's answer) and never cached; GET and HEAD stay cached whatever the
set. Each distribution has its own set.
"""

import harness

CONFIG = """\
listen:
  - $listen
log:
  access_log: $access_log
origins:
  - name: app
    type: http
    endpoint: %(url)s
distributions:
  - name: ro
    hosts: [ro.example.test]
    origin: app
  - name: opt
    hosts: [opt.example.test]
    origin: app
    allowed_methods: [GET, HEAD, OPTIONS]
  - name: all
    hosts: [all.example.test]
    origin: app
    allowed_methods: [DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT]
"""

ALL = "GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE"


def test_methods_outside_the_set_are_405_with_allow(plain, edge, get):
    e = edge(config=CONFIG % {"url": plain.url})
    cases = [("ro", "OPTIONS", "GET, HEAD"), ("ro", "PUT", "GET, HEAD"),
             ("ro", "DELETE", "GET, HEAD"), ("opt", "POST", "GET, HEAD, OPTIONS"),
             ("opt", "PATCH", "GET, HEAD, OPTIONS"), ("all", "TRACE", ALL)]
    for host, method, allow in cases:
        r = get(e.url("/m0002/x"), "-X", method, "-H", "Host: %s.example.test" % host)
        assert r.status == 405, (host, method, r)
        assert r.header("allow") == allow, (host, method, r)
    assert plain.requests() == []


def test_options_forwarded_when_allowed_never_cached(plain, edge, get):
    e = edge(config=CONFIG % {"url": plain.url})
    for i in range(2):
        r = get(e.url("/m0002/cors?q=1"), "-X", "OPTIONS",
                "-H", "Host: opt.example.test",
                "-H", "Origin: https://app.example.test",
                "-H", "Access-Control-Request-Method: PUT")
        assert r.status == 204, r
        assert r.header("access-control-allow-origin") == "https://app.example.test"
        assert r.header("access-control-allow-methods") == "PUT"
        assert r.header("allow") == ALL  # the origin's, passed on
        assert r.xcache() == "pass"
    seen = plain.requests("/m0002/cors")
    assert [x["method"] for x in seen] == ["OPTIONS", "OPTIONS"]
    # the whole query goes with a forwarded request
    assert seen[0]["target"] == "/m0002/cors?q=1"
    names = [k.lower() for k, _ in seen[0]["headers"]]
    assert "origin" in names and "access-control-request-method" in names
    assert "authorization" not in names
    log = e.wait_access(2)
    assert [(l["method"], l["status"], l["cache"]) for l in log] == \
        [("OPTIONS", "204", "PASS")] * 2


def test_get_head_cached_in_every_set(plain, edge, get):
    data = harness.object_bytes(4096, 2)
    plain.put("/m0002/obj", data)
    e = edge(config=CONFIG % {"url": plain.url})
    for host in ("ro", "opt", "all"):
        for _ in range(2):
            r = get(e.url("/m0002/obj"), "-H", "Host: %s.example.test" % host)
            assert r.status == 200 and r.body == data
        h = get(e.url("/m0002/obj"), "-I", "-H", "Host: %s.example.test" % host)
        assert h.status == 200 and h.xcache() == "hit"
    # one fill per distribution: they cache apart
    assert len(plain.requests("/m0002/obj", "GET")) == 3


def test_command_line_allowed_methods(plain, edge, get):
    e = edge(["--plain-origin", plain.url, "--allowed-methods", "GET,HEAD,OPTIONS"])
    # HTTP/1.1: see m0003 on curl 7.88 and RST_STREAM NO_ERROR after a 405
    r = get(e.url("/m0002/c"), "-X", "PUT", "--data-binary", "x", "--http1.1")
    assert r.status == 405 and r.header("allow") == "GET, HEAD, OPTIONS"
    r = get(e.url("/m0002/c"), "-X", "OPTIONS")
    assert r.status == 204
    assert [x["method"] for x in plain.requests("/m0002/c")] == ["OPTIONS"]
