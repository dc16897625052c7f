#!/usr/bin/python3
"""
faultorigin.py: an S3-shaped HTTP/1.1 origin whose misbehaviour the test
chooses.

Objects live in memory under path-style addresses (/BUCKET/KEY, the key
percent-decoded once and kept byte for byte, so "a//b" and "/lead" are
distinct keys). GET and HEAD follow S3's documented behaviour: quoted MD5
ETag, Last-Modified, Content-Type, x-amz-meta-*, one byte range per
request (a-b, a-, -n: 206 with Content-Range; unsatisfiable: 416 with
Content-Range bytes */N and InvalidRange; several ranges or bad syntax:
the whole object, 200), If-Match (412), If-Unmodified-Since (412),
If-None-Match (304), If-Modified-Since (304), NoSuchKey XML for a missing
key. Signatures are not checked.

Faults, set per key or globally, optionally for the next N requests only:
  first_byte_delay  seconds before the status line
  body_delay        seconds between the head and the first body byte
  rate              body throughput limit, bytes per second
  stall_after       send N body bytes, then nothing (connection kept)
  reset_after       send N body bytes, then reset the connection (RST)
  short_body        announce the full Content-Length, send N bytes, close
  status            answer with this status and an S3 XML error
                    (error_code, error_message; 503 default SlowDown)
  never_answer      read the request, never answer
  chunked           Transfer-Encoding: chunked instead of Content-Length
  close             Connection: close after the response
  silent_close      close after the response without saying so
  drop_reused       on a connection that served a request before: read
                    the request, close without answering (a keep-alive
                    race); spent only by such requests
  hold              a name: hold the answer (before the status line)
                    until POST /__fault/release {"name": ...} opens that
                    gate, or NEVER_ANSWER_MAX_S; an open gate stays open
  times             apply to the next N matching requests only
  at_offset         match only a GET whose bytes (its Range, else the
                    whole object) include this object offset, and count
                    stall_after / reset_after / short_body from there:
                    {"at_offset": 5242880, "reset_after": 1000} resets
                    1000 bytes past 5 MiB whatever the request's range;
                    spent only by such requests

Control endpoints (JSON bodies and answers):
  POST /__fault/object   {bucket, key, size+seed | data_b64 | file,
                          content_type, cache_control, metadata{},
                          headers{}, last_modified (epoch s), etag}
                         -> {etag, size, sha256}
  POST /__fault/delete   {bucket, key}
  POST /__fault/fault    {bucket, key} or {} (global), fault fields;
                         {"clear": true} drops the faults of that scope
  POST /__fault/release  {name}: open the gate of that name (hold)
  POST /__fault/reset    clears request records, all faults and gates
                         (held answers go on)
  GET  /__fault/stats    {"connections": n, "requests": [{id, method, path,
                          key, range, headers{}, status, length, bytes_sent,
                          done, aborted, t_start, t_first_byte, t_done}...],
                          "keys": {"bucket/key": {requests, GET, HEAD,
                          bytes, ranges[]}}}
Times are time.monotonic() values (CLOCK_MONOTONIC, shared by every
process on the machine), so a test can order its own events against the
origin's.

Usage: faultorigin.py [--listen 127.0.0.1] [--port 0] [--port-file FILE]
"""

import argparse
import asyncio
import base64
import email.utils
import hashlib
import json
import random
import socket
import struct
import sys
import time
from urllib.parse import unquote_to_bytes

import httpio

NEVER_ANSWER_MAX_S = 300.0
SEND_SLICE = 64 * 1024


def object_bytes(size, seed):
    """Deterministic object bytes; tests compute the same bytes."""
    return random.Random(seed).randbytes(size)


class Obj:
    def __init__(self, data, content_type, cache_control, metadata,
                 headers, last_modified, etag):
        self.data = data
        self.content_type = content_type or "binary/octet-stream"
        self.cache_control = cache_control
        self.metadata = metadata or {}
        self.headers = headers or {}
        self.last_modified = int(last_modified if last_modified is not None
                                 else time.time())
        self.etag = etag or '"%s"' % hashlib.md5(data).hexdigest()

    def meta_headers(self):
        h = [("ETag", self.etag),
             ("Last-Modified", httpio.http_date(self.last_modified)),
             ("Content-Type", self.content_type),
             ("Accept-Ranges", "bytes")]
        if self.cache_control:
            h.append(("Cache-Control", self.cache_control))
        for k, v in self.metadata.items():
            h.append(("x-amz-meta-" + k, v))
        for k, v in self.headers.items():
            h.append((k, v))
        return h


def parse_range(value, size):
    """S3 semantics for one range. Returns None (serve the whole object),
    (start, end) inclusive, or 'unsatisfiable'."""
    if value is None:
        return None
    v = value.strip()
    if not v.startswith("bytes="):
        return None
    spec = v[6:].strip()
    if "," in spec:
        return None
    first, dash, last = spec.partition("-")
    first, last = first.strip(), last.strip()
    if not dash:
        return None
    if first == "":
        if not last.isdigit():
            return None
        n = int(last)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return (max(0, size - n), size - 1)
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    a = int(first)
    if last and int(last) < a:
        return None
    if a >= size:
        return "unsatisfiable"
    b = int(last) if last else size - 1
    return (a, min(b, size - 1))


def etag_list_match(header, etag, weak_ok):
    tags = [t.strip() for t in header.split(",")]
    if "*" in tags:
        return True
    def strip_w(t):
        return t[2:] if t.startswith("W/") else t
    if weak_ok:
        return strip_w(etag) in [strip_w(t) for t in tags]
    return etag in tags


def parse_http_date(s):
    try:
        t = email.utils.parsedate_to_datetime(s)
    except (TypeError, ValueError):
        return None
    if t is None:
        return None
    return t.timestamp()


class Origin:
    def __init__(self):
        self.objects = {}
        self.faults = {}        # "bucket/key" or "" (global) -> dict
        self.records = []
        self.keys = {}
        self.connections = 0
        self.next_id = 1
        self.gates = {}         # hold name -> asyncio.Event

    # ---------------------------------------------------------- control

    def put_object(self, o):
        if "data_b64" in o:
            data = base64.b64decode(o["data_b64"])
        elif "file" in o:
            with open(o["file"], "rb") as f:
                data = f.read()
        else:
            data = object_bytes(int(o["size"]), o.get("seed", 0))
        obj = Obj(data, o.get("content_type"), o.get("cache_control"),
                  o.get("metadata"), o.get("headers"),
                  o.get("last_modified"), o.get("etag"))
        self.objects[o["bucket"] + "/" + o["key"]] = obj
        return {"etag": obj.etag, "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest()}

    def set_fault(self, f):
        scope = ""
        if "bucket" in f:
            scope = f["bucket"] + "/" + f["key"]
        if f.get("clear"):
            self.faults.pop(scope, None)
            return {"ok": True}
        spec = {k: v for k, v in f.items() if k not in ("bucket", "key")}
        self.faults[scope] = spec
        return {"ok": True}

    def take_fault(self, key, reused, span=None):
        """The fault for this request (per key first, then global), with
        its `times` budget spent. A drop_reused fault only applies to (and
        is only spent by) a request on a connection that served before; an
        at_offset fault to a request whose span (first, last) of object
        bytes includes that offset."""
        for scope in (key, ""):
            f = self.faults.get(scope)
            if f is None:
                continue
            if f.get("drop_reused") and not reused:
                return {}
            if "at_offset" in f:
                off = int(f["at_offset"])
                if span is None or not span[0] <= off <= span[1]:
                    return {}
            if "times" in f:
                f["times"] -= 1
                if f["times"] <= 0:
                    del self.faults[scope]
            return f
        return {}

    def gate(self, name):
        return self.gates.setdefault(str(name), asyncio.Event())

    def reset(self):
        self.records = []
        self.keys = {}
        self.faults = {}
        self.connections = 0
        for ev in self.gates.values():
            ev.set()
        self.gates = {}

    def stats(self):
        return {"connections": self.connections, "requests": self.records,
                "keys": self.keys}

    async def control(self, req, reader, writer):
        framing, n = req.body_framing()
        body = b""
        if framing == "length" and n:
            body = await reader.readexactly(n)
        arg = json.loads(body) if body else {}
        p, m = req.path, req.method
        if p == "/__fault/stats" and m == "GET":
            ans = self.stats()
        elif p == "/__fault/object" and m == "POST":
            ans = self.put_object(arg)
        elif p == "/__fault/delete" and m == "POST":
            self.objects.pop(arg["bucket"] + "/" + arg["key"], None)
            ans = {"ok": True}
        elif p == "/__fault/fault" and m == "POST":
            ans = self.set_fault(arg)
        elif p == "/__fault/release" and m == "POST":
            self.gate(arg["name"]).set()
            ans = {"ok": True}
        elif p == "/__fault/reset" and m == "POST":
            self.reset()
            ans = {"ok": True}
        else:
            await httpio.send_json(writer, {"error": "no such control"}, 404)
            return
        await httpio.send_json(writer, ans)

    # --------------------------------------------------------- serving

    def new_record(self, req, key):
        rec = {"id": self.next_id, "method": req.method, "path": req.path,
               "query": req.query, "key": key, "range": req.get("range"),
               "headers": {k.lower(): v for k, v in req.headers},
               "status": None, "length": None, "bytes_sent": 0,
               "done": False, "aborted": False, "t_start": time.monotonic(),
               "t_first_byte": None, "t_done": None}
        self.next_id += 1
        self.records.append(rec)
        ks = self.keys.setdefault(key, {"requests": 0, "GET": 0, "HEAD": 0,
                                        "bytes": 0, "ranges": []})
        ks["requests"] += 1
        ks[req.method] = ks.get(req.method, 0) + 1
        if req.get("range") is not None:
            ks["ranges"].append(req.get("range"))
        return rec

    async def send_error(self, writer, req, rec, status, code, message,
                         extra_headers=(), close=False):
        body = httpio.s3_error_body(code, message)
        hdrs = [("Content-Type", "application/xml"), ("Server", "AmazonS3")]
        hdrs += httpio.amz_id_headers() + list(extra_headers)
        rec["status"] = status
        rec["length"] = 0 if req.method == "HEAD" else len(body)
        rec["t_first_byte"] = time.monotonic()
        await httpio.send_simple(writer, status, hdrs, body,
                                 head_only=(req.method == "HEAD"), close=close)
        rec["bytes_sent"] = rec["length"]

    def body_span(self, req, key):
        """(first, last) object offsets a GET would send, or None (no
        body: not a GET, no such key, a failing If-Match, no bytes)."""
        obj = self.objects.get(key)
        if req.method != "GET" or obj is None or not obj.data:
            return None
        im = req.get("if-match")
        if im is not None and not etag_list_match(im, obj.etag, False):
            return None
        rng = parse_range(req.get("range"), len(obj.data))
        if rng == "unsatisfiable":
            return None
        return rng if rng is not None else (0, len(obj.data) - 1)

    async def respond(self, req, reader, writer, conn):
        """Serve one S3 request. Returns False when the connection must be
        closed afterwards."""
        try:
            key = unquote_to_bytes(req.path[1:]).decode("utf-8")
        except UnicodeDecodeError:
            key = req.path[1:]
        rec = self.new_record(req, key)
        conn["rec"] = rec
        fault = self.take_fault(key, conn["served"] > 0,
                                self.body_span(req, key))
        conn["served"] += 1
        close = bool(fault.get("close")) or not req.keep_alive()

        if fault.get("drop_reused"):
            # As a server closing an idle connection just as the client
            # reuses it: the request is read, then the connection closes.
            rec["aborted"] = True
            return False

        if fault.get("never_answer"):
            # Hold the connection until the client gives up (or a bound).
            try:
                await asyncio.wait_for(reader.read(1), NEVER_ANSWER_MAX_S)
            except asyncio.TimeoutError:
                pass
            rec["aborted"] = True
            return False
        if fault.get("hold"):
            try:
                await asyncio.wait_for(self.gate(fault["hold"]).wait(),
                                       NEVER_ANSWER_MAX_S)
            except asyncio.TimeoutError:
                pass
        if fault.get("first_byte_delay"):
            await asyncio.sleep(float(fault["first_byte_delay"]))

        if req.method not in ("GET", "HEAD"):
            await self.send_error(writer, req, rec, 405, "MethodNotAllowed",
                                  "The specified method is not allowed "
                                  "against this resource.",
                                  [("Allow", "GET, HEAD")], close)
            return not close
        if "status" in fault:
            st = int(fault["status"])
            code = fault.get("error_code",
                             "SlowDown" if st == 503 else "InternalError")
            msg = fault.get("error_message",
                            "Please reduce your request rate." if st == 503
                            else "We encountered an internal error. "
                                 "Please try again.")
            await self.send_error(writer, req, rec, st, code, msg,
                                  close=close)
            return not close
        obj = self.objects.get(key)
        if obj is None:
            await self.send_error(writer, req, rec, 404, "NoSuchKey",
                                  "The specified key does not exist.",
                                  close=close)
            return not close

        # RFC 9110 13.2.2 order: If-Match, If-Unmodified-Since,
        # If-None-Match, If-Modified-Since (S3 follows it).
        im = req.get("if-match")
        ius = req.get("if-unmodified-since")
        inm = req.get("if-none-match")
        ims = req.get("if-modified-since")
        if im is not None:
            if not etag_list_match(im, obj.etag, weak_ok=False):
                await self.send_error(writer, req, rec, 412,
                                      "PreconditionFailed",
                                      "At least one of the pre-conditions "
                                      "you specified did not hold",
                                      close=close)
                return not close
        elif ius is not None:
            t = parse_http_date(ius)
            if t is not None and obj.last_modified > t:
                await self.send_error(writer, req, rec, 412,
                                      "PreconditionFailed",
                                      "At least one of the pre-conditions "
                                      "you specified did not hold",
                                      close=close)
                return not close
        not_modified = False
        if inm is not None:
            not_modified = etag_list_match(inm, obj.etag, weak_ok=True)
        elif ims is not None:
            t = parse_http_date(ims)
            not_modified = t is not None and obj.last_modified <= t
        if not_modified:
            hdrs = [("Date", httpio.http_date()), ("Server", "AmazonS3"),
                    ("ETag", obj.etag),
                    ("Last-Modified", httpio.http_date(obj.last_modified))]
            hdrs += httpio.amz_id_headers()
            if close:
                hdrs.append(("Connection", "close"))
            rec["status"] = 304
            rec["length"] = 0
            rec["t_first_byte"] = time.monotonic()
            writer.write(httpio.response_head(304, hdrs))
            await writer.drain()
            rec["done"] = True
            rec["t_done"] = time.monotonic()
            return not close

        size = len(obj.data)
        rng = parse_range(req.get("range"), size)
        if rng == "unsatisfiable":
            await self.send_error(writer, req, rec, 416, "InvalidRange",
                                  "The requested range is not satisfiable",
                                  [("Content-Range", "bytes */%d" % size)],
                                  close)
            return not close
        if rng is None:
            status, start, end = 200, 0, size - 1
        else:
            status, (start, end) = 206, rng
        length = end - start + 1 if size else 0

        hdrs = [("Date", httpio.http_date()), ("Server", "AmazonS3")]
        hdrs += httpio.amz_id_headers() + obj.meta_headers()
        if status == 206:
            hdrs.append(("Content-Range",
                         "bytes %d-%d/%d" % (start, end, size)))
        chunked = bool(fault.get("chunked"))
        if chunked:
            hdrs.append(("Transfer-Encoding", "chunked"))
        else:
            hdrs.append(("Content-Length", str(length)))
        if close:
            hdrs.append(("Connection", "close"))
        rec["status"] = status
        rec["length"] = length
        writer.write(httpio.response_head(status, hdrs))
        await writer.drain()
        rec["t_first_byte"] = time.monotonic()
        if req.method == "HEAD":
            rec["done"] = True
            rec["t_done"] = time.monotonic()
            return not close

        if fault.get("body_delay"):
            await asyncio.sleep(float(fault["body_delay"]))
        limit = length
        ending = None
        base = int(fault["at_offset"]) - start if "at_offset" in fault else 0
        for name in ("stall_after", "reset_after", "short_body"):
            if name in fault and base + int(fault[name]) < limit:
                limit = base + int(fault[name])
                ending = name
        rate = float(fault.get("rate", 0))
        view = memoryview(obj.data)[start:start + limit]
        ks = self.keys[key]
        t0 = time.monotonic()
        sent = 0
        while sent < limit:
            n = min(SEND_SLICE, limit - sent)
            if rate > 0:
                # Pace against the start, so sleeps do not accumulate drift.
                n = min(n, max(1, int(rate / 50)))
                due = t0 + sent / rate
                now = time.monotonic()
                if due > now:
                    await asyncio.sleep(due - now)
            piece = view[sent:sent + n]
            if chunked:
                writer.write(b"%x\r\n" % n + bytes(piece) + b"\r\n")
            else:
                writer.write(piece)
            await writer.drain()
            sent += n
            rec["bytes_sent"] = sent
            ks["bytes"] += n
        if ending == "stall_after":
            try:
                await asyncio.wait_for(reader.read(1), NEVER_ANSWER_MAX_S)
            except asyncio.TimeoutError:
                pass
            rec["aborted"] = True
            return False
        if ending == "reset_after":
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack("ii", 1, 0))
            writer.transport.abort()
            rec["aborted"] = True
            return False
        if ending == "short_body":
            rec["aborted"] = True
            return False
        if chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        rec["done"] = True
        rec["t_done"] = time.monotonic()
        if fault.get("silent_close"):
            return False
        return not close

    async def serve(self, reader, writer):
        self.connections += 1
        conn = {"rec": None, "served": 0}
        try:
            for _ in range(100000):
                try:
                    req = await httpio.read_request(reader)
                except httpio.BadRequest as e:
                    await httpio.send_simple(
                        writer, 400, [("Content-Type", "application/xml")],
                        httpio.s3_error_body("BadRequest", str(e)), close=True)
                    return
                if req is None:
                    return
                if req.path.startswith("/__fault/"):
                    await self.control(req, reader, writer)
                    continue
                try:
                    framing, n = req.body_framing()
                    if framing == "length" and n:
                        await reader.readexactly(n)
                    elif framing == "chunked":
                        await httpio.relay_chunked(reader, None)
                except httpio.BadRequest as e:
                    await httpio.send_simple(
                        writer, 400, [("Content-Type", "application/xml")],
                        httpio.s3_error_body("InvalidRequest", str(e)),
                        close=True)
                    return
                if not await self.respond(req, reader, writer, conn):
                    return
        except (ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            # A client that went away mid-response.
            rec = conn["rec"]
            if rec is not None and not rec["done"]:
                rec["aborted"] = True
            return
        finally:
            try:
                writer.close()
            except RuntimeError:
                pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    args = ap.parse_args()
    origin = Origin()
    server = await asyncio.start_server(origin.serve, args.listen, args.port,
                                        limit=httpio.MAX_HEAD)
    port = server.sockets[0].getsockname()[1]
    httpio.announce_port(port, args.port_file)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
