#!/usr/bin/python3
"""
s3gate.py: a SigV4-checking reverse proxy in front of s3rver.

s3rver serves the S3 API surface but does not verify Signature V4 (it only
looks the access key up in its own registry). The gate recomputes every
request's signature with botocore, an implementation independent of
s3edge's, and refuses what Amazon S3 would refuse, with S3's XML errors:

  no or garbled Authorization          403 AccessDenied
  unknown access key                   403 InvalidAccessKeyId
  missing x-amz-content-sha256         400 InvalidRequest
  bad x-amz-content-sha256 (no body)   400 XAmzContentSHA256Mismatch
  missing/garbled x-amz-date           403 AccessDenied
  x-amz-date skewed > 15 min           403 RequestTimeTooSkewed
  wrong region/service in the scope    400 AuthorizationHeaderMalformed
  x-amz-* header present, not signed   403 AccessDenied
  temporary key without its token      403 InvalidAccessKeyId
  wrong session token                  400 InvalidToken
  signature mismatch                   403 SignatureDoesNotMatch

Requests that pass are forwarded to s3rver without their Authorization
header (s3rver would otherwise look our test keys up in its own account
registry), one upstream connection per request; bodies are streamed both
ways. Every response carries x-amz-request-id and x-amz-id-2 as S3's do.

Control endpoints (not checked, never forwarded):
  GET  /__gate/stats   {"requests": [{method, path, query, range, status,
                        forwarded, error}...],
                        "counts": {"GET /bucket/key": n, ...} (forwarded),
                        "refused": {"SignatureDoesNotMatch": n, ...}}
  POST /__gate/reset   clears the records

Usage: s3gate.py --upstream 127.0.0.1:PORT --key AKID:SECRET[:TOKEN] ...
                 [--region us-east-1] [--anonymous-bucket NAME]...
                 [--max-skew 900] [--port-file FILE]
"""

import argparse
import asyncio
import datetime
import hmac
import json
import re
import sys
from urllib.parse import unquote, urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

import httpio

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SIGV4_FMT = "%Y%m%dT%H%M%SZ"
AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 +"
    r"Credential=([^,/ ]+)/(\d{8})/([^,/ ]+)/([^,/ ]+)/aws4_request *, *"
    r"SignedHeaders=([a-z0-9;!#$%&'*+.^_`|~-]+) *, *"
    r"Signature=([0-9a-f]{64})$")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te",
              "trailer", "upgrade", "expect", "authorization"}


class GateSigner(S3SigV4Auth):
    """botocore's S3 SigV4 signer, told exactly which headers the request
    signed: botocore's own list-building drops user-agent and expect,
    which S3 lets a client sign."""

    def __init__(self, credentials, region, signed):
        super().__init__(credentials, "s3", region)
        self._signed = signed

    def headers_to_sign(self, request):
        header_map = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._signed:
                header_map[name.lower()] = value
        return header_map


class Refusal(Exception):
    def __init__(self, status, code, message, extra=None):
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}


def _hval(v):
    # Header bytes were decoded as latin-1; S3 signs them as UTF-8.
    raw = v.encode("latin-1")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return v


class Gate:
    def __init__(self, args):
        self.upstream_host, _, port = args.upstream.rpartition(":")
        self.upstream_port = int(port)
        self.keys = {}
        for spec in args.key:
            parts = spec.split(":")
            akid, secret = parts[0], parts[1]
            token = parts[2] if len(parts) > 2 else None
            self.keys[akid] = (secret, token)
        self.region = args.region
        self.anonymous = set(args.anonymous_bucket or [])
        self.max_skew = args.max_skew
        self.reset()

    def reset(self):
        self.records = []
        self.counts = {}
        self.refused = {}

    def stats(self):
        return {"requests": self.records, "counts": self.counts,
                "refused": self.refused}

    # ------------------------------------------------------------ checks

    def check(self, req, has_body):
        auth = req.get("authorization")
        if auth is None:
            bucket = req.path.lstrip("/").split("/", 1)[0]
            if bucket in self.anonymous and req.method in ("GET", "HEAD"):
                return
            raise Refusal(403, "AccessDenied", "Access Denied")
        m = AUTH_RE.match(auth.strip())
        if not m:
            raise Refusal(403, "AccessDenied",
                          "Authorization header is garbled",
                          {"Authorization": auth})
        akid, sdate, region, service, signed_s, signature = m.groups()
        if akid not in self.keys:
            raise Refusal(403, "InvalidAccessKeyId",
                          "The AWS Access Key Id you provided does not "
                          "exist in our records.", {"AWSAccessKeyId": akid})
        secret, token = self.keys[akid]
        csha = req.get("x-amz-content-sha256")
        if csha is None:
            raise Refusal(400, "InvalidRequest",
                          "Missing required header for this request: "
                          "x-amz-content-sha256")
        if not has_body and csha not in ("UNSIGNED-PAYLOAD", EMPTY_SHA256):
            raise Refusal(400, "XAmzContentSHA256Mismatch",
                          "The provided 'x-amz-content-sha256' header does "
                          "not match what was computed.",
                          {"ClientComputedContentSHA256": csha,
                           "S3ComputedContentSHA256": EMPTY_SHA256})
        amzdate = req.get("x-amz-date")
        if amzdate is None:
            raise Refusal(403, "AccessDenied",
                          "AWS authentication requires a valid Date or "
                          "x-amz-date header")
        try:
            t = datetime.datetime.strptime(amzdate, SIGV4_FMT).replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            raise Refusal(403, "AccessDenied",
                          "AWS authentication requires a valid Date or "
                          "x-amz-date header")
        now = datetime.datetime.now(datetime.timezone.utc)
        if abs((now - t).total_seconds()) > self.max_skew:
            raise Refusal(403, "RequestTimeTooSkewed",
                          "The difference between the request time and the "
                          "current time is too large.",
                          {"RequestTime": amzdate,
                           "ServerTime": now.strftime(SIGV4_FMT),
                           "MaxAllowedSkewMilliseconds": self.max_skew * 1000})
        if region != self.region:
            raise Refusal(400, "AuthorizationHeaderMalformed",
                          "The authorization header is malformed; the region "
                          "'%s' is wrong; expecting '%s'" % (region, self.region),
                          {"Region": self.region})
        if service != "s3":
            raise Refusal(400, "AuthorizationHeaderMalformed",
                          "The authorization header is malformed; incorrect "
                          "service '%s'. This endpoint belongs to 's3'." % service)
        signed = signed_s.split(";")
        if signed != sorted(set(signed)):
            raise Refusal(403, "SignatureDoesNotMatch",
                          "SignedHeaders must be sorted, lower case, unique",
                          {"SignedHeaders": signed_s})
        if "host" not in signed:
            raise Refusal(403, "AccessDenied",
                          "Host must be a signed header",
                          {"SignedHeaders": signed_s})
        present = {k.lower() for k, _ in req.headers}
        unsigned_amz = sorted(h for h in present
                              if h.startswith("x-amz-") and h not in signed)
        if unsigned_amz:
            raise Refusal(403, "AccessDenied",
                          "There were headers present in the request which "
                          "were not signed",
                          {"HeadersNotSigned": ", ".join(unsigned_amz)})
        missing = [h for h in signed if h not in present]
        if missing:
            raise Refusal(403, "SignatureDoesNotMatch",
                          "Signed header(s) absent from the request",
                          {"Missing": ", ".join(missing)})
        sent_token = req.get("x-amz-security-token")
        if token is not None and sent_token is None:
            # temporary keys do not exist without their token
            raise Refusal(403, "InvalidAccessKeyId",
                          "The AWS Access Key Id you provided does not "
                          "exist in our records.", {"AWSAccessKeyId": akid})
        if sent_token is not None and sent_token != token:
            raise Refusal(400, "InvalidToken",
                          "The provided token is malformed or otherwise "
                          "invalid.")

        # botocore, fed the request as it came: same method, the path as
        # sent (S3 signs it without normalising or re-encoding), the query
        # parameters (decoded once: botocore encodes them canonically, as
        # S3 does from the parameters it parsed), the signed headers and
        # the request's own date.
        host = req.get("host", "")
        url = "http://" + host + req.path
        if urlsplit(url).path != req.path:
            raise Refusal(403, "SignatureDoesNotMatch",
                          "request target cannot be canonicalised",
                          {"Target": req.target})
        params = []
        for part in req.query.split("&") if req.query else []:
            if part:
                k, _, v = part.partition("=")
                params.append((unquote(k), unquote(v)))
        areq = AWSRequest(method=req.method, url=url, params=params)
        for k, v in req.headers:
            if k.lower() in signed:
                areq.headers[k.lower()] = _hval(v)
        areq.context["timestamp"] = amzdate
        signer = GateSigner(Credentials(akid, secret, token), region,
                            set(signed))
        creq = signer.canonical_request(areq)
        sts = signer.string_to_sign(areq, creq)
        expect = signer.signature(sts, areq)
        if sdate != amzdate[:8]:
            raise Refusal(403, "SignatureDoesNotMatch",
                          "credential scope date does not match x-amz-date",
                          {"CanonicalRequest": creq, "StringToSign": sts})
        if not hmac.compare_digest(expect, signature):
            raise Refusal(403, "SignatureDoesNotMatch",
                          "The request signature we calculated does not "
                          "match the signature you provided. Check your key "
                          "and signing method.",
                          {"AWSAccessKeyId": akid, "StringToSign": sts,
                           "SignatureProvided": signature,
                           "CanonicalRequest": creq})

    # --------------------------------------------------------- serving

    def record(self, req, status, forwarded, error=None):
        rec = {"method": req.method, "path": req.path, "query": req.query,
               "range": req.get("range"), "status": status,
               "forwarded": forwarded, "error": error}
        self.records.append(rec)
        if forwarded:
            k = "%s %s" % (req.method, req.path)
            self.counts[k] = self.counts.get(k, 0) + 1
        if error:
            self.refused[error] = self.refused.get(error, 0) + 1

    async def control(self, req, reader, writer):
        framing, n = req.body_framing()
        if framing == "length" and n:
            await reader.readexactly(n)
        if req.path == "/__gate/stats" and req.method == "GET":
            await httpio.send_json(writer, self.stats())
        elif req.path == "/__gate/reset" and req.method == "POST":
            self.reset()
            await httpio.send_json(writer, {"ok": True})
        else:
            await httpio.send_json(writer, {"error": "no such control"}, 404)

    async def refuse(self, writer, req, r, close):
        body = httpio.s3_error_body(r.code, r.message, r.extra)
        hdrs = [("Content-Type", "application/xml"), ("Server", "AmazonS3")]
        hdrs += httpio.amz_id_headers()
        await httpio.send_simple(writer, r.status, hdrs, body,
                                 head_only=(req.method == "HEAD"),
                                 close=close)

    async def forward(self, req, framing, length, creader, cwriter):
        """Returns True when the client connection may be kept."""
        ureader, uwriter = await asyncio.open_connection(
            self.upstream_host, self.upstream_port, limit=httpio.MAX_HEAD)
        try:
            hdrs = [(k, v) for k, v in req.headers
                    if k.lower() not in HOP_BY_HOP]
            hdrs.append(("Connection", "close"))
            head = "%s %s HTTP/1.1\r\n" % (req.method, req.target)
            head += "".join("%s: %s\r\n" % kv for kv in hdrs) + "\r\n"
            uwriter.write(head.encode("latin-1"))
            if req.get("expect", "").lower() == "100-continue":
                cwriter.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await cwriter.drain()
            if framing == "length":
                await httpio.relay_length(creader, uwriter, length)
            elif framing == "chunked":
                await httpio.relay_chunked(creader, uwriter)
            await uwriter.drain()

            status, reason, rh = await httpio.read_response_head(ureader)
            for _ in range(10):
                if not 100 <= status < 200:
                    break
                status, reason, rh = await httpio.read_response_head(ureader)
            te = (httpio.header_get(rh, "transfer-encoding") or "").lower()
            cl = httpio.header_get(rh, "content-length")
            no_body = (req.method == "HEAD" or status in (204, 304))
            keep = req.keep_alive() and (no_body or te == "chunked"
                                         or cl is not None)
            out = [(k, v) for k, v in rh
                   if k.lower() not in ("connection", "keep-alive")]
            if not any(k.lower() == "x-amz-request-id" for k, _ in out):
                out += httpio.amz_id_headers()
            if not any(k.lower() == "server" for k, _ in out):
                out.append(("Server", "AmazonS3"))
            if not keep:
                out.append(("Connection", "close"))
            cwriter.write(httpio.response_head(status, out, reason))
            self.record(req, status, True)
            if no_body:
                pass
            elif te == "chunked":
                await httpio.relay_chunked(ureader, cwriter)
            elif cl is not None:
                await httpio.relay_length(ureader, cwriter, int(cl))
            else:
                await httpio.relay_until_eof(ureader, cwriter)
            await cwriter.drain()
            return keep
        finally:
            uwriter.close()

    async def serve(self, creader, cwriter):
        try:
            for _ in range(100000):
                try:
                    req = await httpio.read_request(creader)
                except httpio.BadRequest as e:
                    await httpio.send_simple(
                        cwriter, 400, [("Content-Type", "application/xml")],
                        httpio.s3_error_body("BadRequest", str(e)), close=True)
                    return
                if req is None:
                    return
                if req.path.startswith("/__gate/"):
                    await self.control(req, creader, cwriter)
                    continue
                try:
                    framing, length = req.body_framing()
                except httpio.BadRequest as e:
                    await httpio.send_simple(
                        cwriter, 400, [("Content-Type", "application/xml")],
                        httpio.s3_error_body("InvalidRequest", str(e)),
                        close=True)
                    return
                has_body = framing == "chunked" or length > 0
                try:
                    self.check(req, has_body)
                except Refusal as r:
                    self.record(req, r.status, False, r.code)
                    # for whoever reads the gate's log after a failed test
                    print("refused %s %s: %d %s %s" % (
                        req.method, req.target, r.status, r.code,
                        json.dumps(r.extra)), file=sys.stderr, flush=True)
                    # A body we did not read would be taken for the next
                    # request: close instead of draining it.
                    close = has_body or not req.keep_alive()
                    await self.refuse(cwriter, req, r, close)
                    if close:
                        return
                    continue
                if not await self.forward(req, framing, length,
                                          creader, cwriter):
                    return
        except (ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            return
        finally:
            cwriter.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--key", action="append", required=True)
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--anonymous-bucket", action="append")
    ap.add_argument("--max-skew", type=int, default=900)
    args = ap.parse_args()
    gate = Gate(args)
    server = await asyncio.start_server(gate.serve, args.listen, args.port,
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
