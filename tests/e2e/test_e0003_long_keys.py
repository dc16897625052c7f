"""
e0003: long keys. S3 keys go up to 1024 bytes of UTF-8; one made of
multi-byte characters is three times that on the wire, still well under
the request-line limit, and must work. (Fault origin: s3rver keeps keys
as file names, which stop at 255 bytes.)
"""

from urllib.parse import quote

import harness


def test_1024_byte_keys(fault, edge_fault, get):
    keys = ["e0003/" + "k" * (1024 - 6),
            "e0003/" + "é" * ((1024 - 6) // 2),
            "e0003/" + "/".join(["seg"] * 200) + "/end"]
    for k in keys:
        assert len(k.encode()) <= 1024
        fault.put(k, data=harness.sha256(k.encode()).encode())
    e = edge_fault()
    for k in keys:
        r = get(e.url("/" + quote(k, safe="/~")))
        assert r.status == 200, (k[:40], r)
        assert r.body == harness.sha256(k.encode()).encode()
        assert [q["path"] for q in fault.requests_for(k)] == [
            "/%s/%s" % (fault.BUCKET, quote(k, safe="/~"))]
