#!/usr/bin/python3
"""
plainorigin.py: a plain (not S3) HTTP/1.1 origin that records what it is
sent, for the methods tier.

Every request is recorded: method, the request-target exactly as it
arrived (path and query undecoded), the header fields, and the body's
length and SHA-256 (hashed as it streams in, chunked bodies decoded).
Objects live in memory by request path:
  GET/HEAD  the stored body (200, ETag, Cache-Control from the object,
            default max-age=300), else 404
  PUT       stores the body; 201 with {"length", "sha256"} in JSON
  POST      the same, 200 (stored too, so a test can see what arrived)
  PATCH     200 with {"length", "sha256"} (nothing stored)
  DELETE    forgets the object; 204
  OPTIONS   204 with Allow and the CORS preflight answer
            (Access-Control-Allow-Origin/-Methods echo the request)
Faults (POST /__plain/fault): {"early_status": N} answers the next
unsafe request with N before reading its body, reads it, then closes.

Control endpoints (JSON):
  GET  /__plain/stats    {"requests": [{method, target, path, query,
                          headers[[name, value]...], length, sha256,
                          complete, status}...]}
  POST /__plain/reset    clears records, objects and faults
  POST /__plain/object   {path, data_b64, cache_control[, status,
                          location]}: with status (a redirect, 410, ...)
                          GET/HEAD answer it, with Location when given
  POST /__plain/fault    fault fields as above ({} clears)

Usage: plainorigin.py [--listen 127.0.0.1] [--port 0] [--port-file FILE]
"""

import argparse
import asyncio
import base64
import hashlib
import json

import httpio

MAX_STORE = 64 * 1024 * 1024


class Plain:
    def __init__(self):
        self.requests = []
        self.objects = {}
        self.answers = {}  # path -> (status, location) for non-200 answers
        self.faults = {}

    async def control(self, req, reader, writer):
        kind, length = req.body_framing()
        body = await reader.readexactly(length) if kind == "length" else b""
        arg = json.loads(body) if body else {}
        if req.path == "/__plain/stats":
            return await httpio.send_json(writer, {"requests": self.requests})
        if req.path == "/__plain/reset":
            self.requests.clear()
            self.objects.clear()
            self.answers.clear()
            self.faults = {}
            return await httpio.send_json(writer, {})
        if req.path == "/__plain/object":
            data = base64.b64decode(arg.get("data_b64", ""))
            self.objects[arg["path"]] = (data, arg.get("cache_control",
                                                       "max-age=300"))
            if "status" in arg:
                self.answers[arg["path"]] = (int(arg["status"]),
                                             arg.get("location"))
            return await httpio.send_json(writer, {
                "sha256": hashlib.sha256(data).hexdigest()})
        if req.path == "/__plain/fault":
            self.faults = dict(arg)
            return await httpio.send_json(writer, {})
        return await httpio.send_json(writer, {"error": "unknown"}, 404)

    async def read_body(self, req, reader, rec):
        """The body, decoded, hashed as it streams; kept when small."""
        kind, length = req.body_framing()
        h = hashlib.sha256()
        keep = []
        kept = 0

        def take(data):
            nonlocal kept
            h.update(data)
            rec["length"] += len(data)
            if kept + len(data) <= MAX_STORE:
                keep.append(data)
                kept += len(data)

        if kind == "length":
            left = length
            for _ in range(httpio.MAX_LOOP):
                if left <= 0:
                    break
                data = await reader.read(min(httpio.RELAY_CHUNK, left))
                if not data:
                    raise ConnectionError("body cut short")
                left -= len(data)
                take(data)
        elif kind == "chunked":
            for _ in range(httpio.MAX_LOOP):
                line = await reader.readuntil(b"\r\n")
                size = int(line[:-2].split(b";")[0].strip(), 16)
                if size == 0:
                    for _ in range(1000):
                        if await reader.readuntil(b"\r\n") == b"\r\n":
                            break
                    break
                take(await reader.readexactly(size))
                if await reader.readexactly(2) != b"\r\n":
                    raise httpio.BadRequest("bad chunk end")
        rec["sha256"] = h.hexdigest()
        rec["complete"] = True
        return b"".join(keep)

    async def respond(self, req, reader, writer):
        rec = {"method": req.method, "target": req.target, "path": req.path,
               "query": req.query, "headers": [list(h) for h in req.headers],
               "length": 0, "sha256": None, "complete": False,
               "status": None}
        self.requests.append(rec)
        unsafe = req.method in ("PUT", "POST", "PATCH", "DELETE")
        early = self.faults.pop("early_status", None) if unsafe else None
        if early is not None:
            rec["status"] = early
            await httpio.send_simple(writer, early, [], b"early\n",
                                     close=True)
            # read the body before closing, as a careful server does
            # (closing with unread input would reset the connection)
            await self.read_body(req, reader, rec)
            return False
        body = await self.read_body(req, reader, rec)
        answer = {"length": rec["length"], "sha256": rec["sha256"]}
        js = (json.dumps(answer) + "\n").encode()
        jh = [("Content-Type", "application/json")]
        if req.method in ("GET", "HEAD"):
            obj = self.objects.get(req.path)
            if obj is None:
                rec["status"] = 404
                await httpio.send_simple(writer, 404, [], b"not found\n",
                                         head_only=req.method == "HEAD")
                return True
            data, cc = obj
            if req.path in self.answers:
                st, loc = self.answers[req.path]
                rec["status"] = st
                hdrs = [("Cache-Control", cc), ("Content-Type", "text/plain")]
                if loc:
                    hdrs.append(("Location", loc))
                await httpio.send_simple(writer, st, hdrs, data,
                                         head_only=req.method == "HEAD")
                return True
            etag = '"%s"' % hashlib.md5(data).hexdigest()
            rec["status"] = 200
            await httpio.send_simple(
                writer, 200, [("Cache-Control", cc), ("ETag", etag),
                              ("Content-Type", "application/octet-stream")],
                data, head_only=req.method == "HEAD")
            return True
        if req.method in ("PUT", "POST"):
            self.objects[req.path] = (body, "max-age=300")
            rec["status"] = 201 if req.method == "PUT" else 200
            await httpio.send_simple(writer, rec["status"],
                                     jh + [("Location", req.path)], js)
            return True
        if req.method == "PATCH":
            rec["status"] = 200
            await httpio.send_simple(writer, 200, jh, js)
            return True
        if req.method == "DELETE":
            self.objects.pop(req.path, None)
            rec["status"] = 204
            await httpio.send_simple(writer, 204, [], b"")
            return True
        if req.method == "OPTIONS":
            rec["status"] = 204
            hdrs = [("Allow", "GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE")]
            if req.has("origin"):
                hdrs.append(("Access-Control-Allow-Origin", req.get("origin")))
                hdrs.append(("Access-Control-Allow-Methods",
                             req.get("access-control-request-method", "GET")))
                hdrs.append(("Access-Control-Max-Age", "600"))
            await httpio.send_simple(writer, 204, hdrs, b"")
            return True
        rec["status"] = 405
        await httpio.send_simple(writer, 405, [], b"no\n")
        return True

    async def serve(self, reader, writer):
        try:
            for _ in range(100000):
                req = await httpio.read_request(reader)
                if req is None:
                    break
                if req.path.startswith("/__plain/"):
                    await self.control(req, reader, writer)
                    continue
                if not await self.respond(req, reader, writer):
                    break
                if not req.keep_alive():
                    break
        except (httpio.BadRequest, ConnectionError, asyncio.IncompleteReadError,
                ValueError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    args = ap.parse_args()
    origin = Plain()
    server = await asyncio.start_server(origin.serve, args.listen, args.port,
                                        limit=httpio.MAX_HEAD)
    port = server.sockets[0].getsockname()[1]
    httpio.announce_port(port, args.port_file)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
