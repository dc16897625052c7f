"""
e0002: request paths that would name another key than they seem to, or no
valid key at all: dot segments (raw or %2e-encoded), encoded slash and
backslash, NUL and other control bytes, invalid UTF-8, broken percent
escapes. Each is a 400 and nothing reaches the origin.
"""

BAD_PATHS = [
    "/../etc/passwd",
    "/a/../b.txt",
    "/a/..",
    "/./a.txt",
    "/a/./b.txt",
    "/a/.",
    "/a/%2e%2e/b.txt",
    "/a/%2E%2E/b.txt",
    "/a/.%2e/b.txt",
    "/a/%2e./b.txt",
    "/%2e%2e/etc/passwd",
    "/a/%2e/b.txt",
    "/a%2Fb.txt",
    "/a%2fb.txt",
    "/a%5Cb.txt",
    "/a%5cb.txt",
    "/a%00b.txt",
    "/a%0Ab.txt",
    "/a%0Db.txt",
    "/a%1Fb.txt",
    "/a%7Fb.txt",
    "/%C0%AE%C0%AE/etc/passwd",
    "/%FF.txt",
    "/%C3.txt",
    "/%ED%A0%80.txt",
    "/a%zzb.txt",
    "/a%2",
]


def test_bad_paths_400(s3, edge_s3, get):
    e = edge_s3()
    wrong = []
    for path in BAD_PATHS:
        r = get(e.url(path), "--path-as-is")
        if r.status != 400 or len(r.body) >= 512 or b"<Error>" in r.body:
            wrong.append((path, r.status, r.body[:80]))
    assert wrong == [], "not a short 400: %r" % wrong
    assert s3.stats()["requests"] == [], "reached the origin"
    e.check_alive()


def test_good_neighbours_still_work(s3, edge_s3, get):
    """Dots inside names are fine: only whole '.'/'..' segments are not."""
    keys = ["e0002/..a", "e0002/a..", "e0002/.hidden", "e0002/x.y.z"]
    for k in keys:
        s3.put(k, k.encode())
    e = edge_s3()
    for k in keys:
        r = get(e.url("/" + k), "--path-as-is")
        assert r.status == 200 and r.body == k.encode(), (k, r)
