"""
httpio.py: the small HTTP/1.1 pieces shared by the e2e test servers
(s3gate.py, faultorigin.py): reading a request head from an asyncio
stream, relaying bodies without buffering them whole, S3-shaped XML
errors and the port-file start-up protocol.

Only the Python standard library is used here.
"""

import asyncio
import email.utils
import json
import os
import secrets
import time

MAX_HEAD = 64 * 1024
RELAY_CHUNK = 64 * 1024


class BadRequest(Exception):
    pass


class Request:
    """A parsed request head. Header names keep their case in `headers`
    (a list of (name, value) str pairs, decoded as latin-1 so that the
    original bytes can be recovered exactly)."""

    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        path, _, query = target.partition("?")
        self.path = path
        self.query = query

    def get(self, name, default=None):
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return default

    def get_all(self, name):
        lname = name.lower()
        return [v for k, v in self.headers if k.lower() == lname]

    def has(self, name):
        return self.get(name) is not None

    def keep_alive(self):
        conn = ",".join(self.get_all("connection")).lower()
        tokens = [t.strip() for t in conn.split(",")]
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    def body_framing(self):
        """('none'|'length'|'chunked', length)"""
        te = ",".join(self.get_all("transfer-encoding")).strip().lower()
        cls = self.get_all("content-length")
        if te:
            if cls:
                raise BadRequest("Content-Length with Transfer-Encoding")
            if te != "chunked":
                raise BadRequest("unsupported Transfer-Encoding")
            return ("chunked", None)
        if cls:
            if len(set(v.strip() for v in cls)) != 1:
                raise BadRequest("conflicting Content-Length")
            v = cls[0].strip()
            if not v.isdigit():
                raise BadRequest("bad Content-Length")
            return ("length", int(v))
        return ("none", 0)


async def read_request(reader):
    """Read one request head. Returns None on a clean EOF before any
    byte; raises BadRequest on garbage."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise BadRequest("truncated head")
    except asyncio.LimitOverrunError:
        raise BadRequest("head too large")
    lines = head[:-4].split(b"\r\n")
    try:
        method, target, version = lines[0].decode("latin-1").split(" ")
    except ValueError:
        raise BadRequest("bad request line")
    if not version.startswith("HTTP/1."):
        raise BadRequest("bad version")
    headers = []
    for raw in lines[1:]:
        if not raw or raw[:1] in (b" ", b"\t") or b":" not in raw:
            raise BadRequest("bad header line")
        name, _, value = raw.partition(b":")
        headers.append((name.decode("latin-1"),
                        value.strip(b" \t").decode("latin-1")))
    return Request(method, target, version, headers)


async def read_response_head(reader):
    """Read a response head: (status, reason, headers list)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].decode("latin-1").split(" ", 2)
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for raw in lines[1:]:
        name, _, value = raw.partition(b":")
        headers.append((name.decode("latin-1"),
                        value.strip(b" \t").decode("latin-1")))
    return status, reason, headers


def header_get(headers, name, default=None):
    lname = name.lower()
    for k, v in headers:
        if k.lower() == lname:
            return v
    return default


MAX_LOOP = 1 << 30     # far more iterations than any test body needs


async def relay_length(reader, writer, n, progress=None):
    """Copy exactly n bytes from reader to writer, chunk by chunk."""
    left = n
    for _ in range(MAX_LOOP):
        if left <= 0:
            break
        data = await reader.read(min(RELAY_CHUNK, left))
        if not data:
            raise ConnectionError("peer closed with %d bytes left" % left)
        left -= len(data)
        if writer is not None:
            writer.write(data)
            await writer.drain()
        if progress is not None:
            progress(len(data))


async def relay_chunked(reader, writer, progress=None):
    """Copy a chunked body verbatim (framing included) up to and including
    its last chunk and trailer section."""
    for _ in range(MAX_LOOP):
        line = await reader.readuntil(b"\r\n")
        if writer is not None:
            writer.write(line)
        size_s = line[:-2].split(b";")[0].strip()
        size = int(size_s, 16)
        if size == 0:
            # trailer section, ends with an empty line
            for _ in range(1000):
                t = await reader.readuntil(b"\r\n")
                if writer is not None:
                    writer.write(t)
                if t == b"\r\n":
                    break
            if writer is not None:
                await writer.drain()
            return
        await relay_length(reader, writer, size + 2, progress)


async def relay_until_eof(reader, writer, progress=None):
    for _ in range(MAX_LOOP):
        data = await reader.read(RELAY_CHUNK)
        if not data:
            return
        writer.write(data)
        await writer.drain()
        if progress is not None:
            progress(len(data))


def http_date(ts=None):
    return email.utils.formatdate(ts if ts is not None else time.time(),
                                  usegmt=True)


def request_id():
    return secrets.token_hex(8).upper()


def amz_id_headers():
    """S3 sends these on every response; an edge must not pass them on."""
    return [("x-amz-request-id", request_id()),
            ("x-amz-id-2", secrets.token_urlsafe(48))]


def xml_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;"))


def s3_error_body(code, message, extra=None):
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<Error>',
             "<Code>%s</Code>" % xml_escape(code),
             "<Message>%s</Message>" % xml_escape(message)]
    for k, v in (extra or {}).items():
        parts.append("<%s>%s</%s>" % (k, xml_escape(str(v)), k))
    parts.append("<RequestId>%s</RequestId></Error>" % request_id())
    return "".join(parts).encode("utf-8")


REASONS = {
    100: "Continue", 200: "OK", 204: "No Content", 206: "Partial Content",
    304: "Not Modified", 400: "Bad Request", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 412: "Precondition Failed",
    416: "Range Not Satisfiable", 500: "Internal Server Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}


def response_head(status, headers, reason=None):
    lines = ["HTTP/1.1 %d %s" % (status, reason or REASONS.get(status, "Status"))]
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def send_simple(writer, status, headers, body, head_only=False,
                      close=False):
    hdrs = [("Date", http_date())] + list(headers)
    hdrs.append(("Content-Length", str(len(body))))
    if close:
        hdrs.append(("Connection", "close"))
    writer.write(response_head(status, hdrs))
    if not head_only:
        writer.write(body)
    await writer.drain()


async def send_json(writer, obj, status=200):
    body = (json.dumps(obj, sort_keys=True) + "\n").encode("utf-8")
    await send_simple(writer, status,
                      [("Content-Type", "application/json")], body)


def announce_port(port, port_file):
    """Start-up protocol: the server binds port 0 and tells its parent the
    port, by a file written atomically (rename) and a line on stdout."""
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, port_file)
    print("listening %d" % port, flush=True)
