"""p0007: TLS on the admin listener (admin.tls: cert, key). The API
answers over TLS only, s3edgectl speaks to it with an https:// server and
--cacert (checking the certificate and the address), purges through it
with --wait, and refuses an untrusted certificate; a plain HTTP request
to the TLS listener gets no answer."""

import http.client
import json
import socket
import ssl
import subprocess

import harness
from fleetutil import FAULT_CONF_HEAD, TOKEN, ctl, origin_gets, redis  # noqa: F401

CONF = FAULT_CONF_HEAD + """\
node:
  id: tls-node
admin:
  listen: 127.0.0.1:%(aport)d
  tokens: [%(token)s]
  tls:
    cert: %(cert)s
    key: %(key)s
redis:
  url: %(redis)s
"""


def https(port, ca, method, path, body=None, token=TOKEN):
    ctx = ssl.create_default_context(cafile=str(ca))
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    h = {"Authorization": "Bearer " + token} if token else {}
    try:
        c.request(method, path, body=json.dumps(body) if body else None, headers=h)
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        c.close()


def test_admin_api_over_tls(edge, fault, get, tmp_path, redis):
    ca, crt, key = harness.tls_pki()
    aport = harness.free_port()
    e = edge(config=CONF % {"origin": fault.url, "aport": aport, "token": TOKEN,
                            "cert": crt, "key": key, "redis": redis.url()})
    def ready():
        try:
            return https(aport, ca, "GET", "/readyz", token=None)[0] == 200
        except OSError:  # not listening yet
            return False

    harness.wait_for(ready, 10, "ready over TLS")
    assert "admin API on 127.0.0.1:%d with TLS" % aport in e.stderr_text()
    st, doc = https(aport, ca, "GET", "/v1/stats", token="nope")
    assert st == 403 and doc == {"error": "the token is not valid"}

    key_ = "p0007/a.bin"
    fault.put(key_, size=1200, seed=71, cache_control="max-age=3600")
    for _ in range(2):
        assert get(e.url("/" + key_)).status == 200
    assert origin_gets(fault, key_) == 1

    server = "https://127.0.0.1:%d" % aport
    rc, out, err = ctl("--server", server, "--cacert", ca, "--token", TOKEN,
                       "purge", "/" + key_, "--wait", "--timeout", "20")
    assert rc == 0, (rc, out, err)
    doc = json.loads(out)
    assert doc["status"] == "Completed" and doc["paths"] == ["/" + key_]
    first = doc["id"]
    assert get(e.url("/" + key_)).status == 200
    assert origin_gets(fault, key_) == 2
    # status and nodes the same way, the CA from the environment
    rc, out, err = ctl("--server", server, "--token", TOKEN, "status", doc["id"],
                       env={"S3EDGE_CACERT": str(ca)})
    assert rc == 0 and json.loads(out)["id"] == doc["id"], (rc, err)
    # and from a config file
    cfg = tmp_path / "ctl.conf"
    cfg.write_text("server = %s\ntoken = %s\ncacert = %s\n" % (server, TOKEN, ca))
    rc, out, err = ctl("--config", cfg, "nodes")
    assert rc == 0 and json.loads(out)["self"] == "tls-node", (rc, err)

    # without the CA the certificate is not trusted: exit 3, nothing sent
    rc, out, err = ctl("--server", server, "--token", TOKEN, "purge", "/x")
    assert rc == 3 and "not trusted" in err, (rc, err)
    # the certificate names 127.0.0.1, not localhost
    rc, out, err = ctl("--server", "https://localhost:%d" % aport, "--cacert", ca,
                       "--token", TOKEN, "list")
    assert rc == 3, (rc, err)
    # cleartext to the TLS listener: no HTTP answer
    rc, out, err = ctl("--server", "127.0.0.1:%d" % aport, "--token", TOKEN, "list")
    assert rc in (1, 3), (rc, out, err)
    # none of the refused attempts reached the API
    st, doc = https(aport, ca, "GET", "/v1/invalidations")
    assert st == 200 and [x["id"] for x in doc["invalidations"]] == [first]
    with socket.create_connection(("127.0.0.1", aport), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        data = b""
        try:
            while len(data) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        assert not data.startswith(b"HTTP/"), data


def test_admin_tls_bad_files_refused(s3edge_bin, fault, tmp_path):
    ca, crt, key = harness.tls_pki()
    p = tmp_path / "bad.yaml"
    text = CONF.replace("$listen", "127.0.0.1:1").replace("$access_log", "off")
    p.write_text(text % {"origin": fault.url, "aport": 9, "token": TOKEN,
                         "cert": crt, "key": ca, "redis": "redis://127.0.0.1"})
    r = subprocess.run([str(s3edge_bin), "-t", "-c", str(p)], capture_output=True,
                       timeout=15)
    assert r.returncode == 1
    assert "admin.tls.key: " in r.stderr.decode(), r.stderr
