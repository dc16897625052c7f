"""
h2client.py: HTTP/2 clients for the g tier (HTTP/2 at the edge).

  H2Client  python3-h2 (Debian) on a socket, h2c with prior knowledge:
            requests, responses, resets, flow control on demand
  RawH2     hand-made frames, for what a well-behaved library refuses to
            send: malformed frames, protocol violations, floods
  curl_h2() curl --http2-prior-knowledge through harness.curl

Every read has a deadline; every loop is bounded.
"""

import socket
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# frame types (RFC 9113 6)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, \
    GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
# flags
END_STREAM, ACK, END_HEADERS, PADDED = 0x1, 0x1, 0x4, 0x8
# error codes (RFC 9113 7)
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, \
    SETTINGS_TIMEOUT, STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, \
    CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, ENHANCE_YOUR_CALM = range(12)

# SETTINGS ids
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6


def curl_h2(get, url, *args, **kw):
    """harness.curl over h2c (curl's last protocol option wins)."""
    return get(url, "--http2-prior-knowledge", *args, **kw)


def request_headers(port, path, method="GET", extra=()):
    return [(":method", method), (":scheme", "http"),
            (":authority", "127.0.0.1:%d" % port), (":path", path)] \
        + list(extra)


class Stream:
    def __init__(self, sid):
        self.id = sid
        self.headers = None     # response headers, list of (str, str)
        self.data = bytearray()
        self.ended = False      # END_STREAM received
        self.reset = None       # error code of a RST_STREAM received

    @property
    def status(self):
        return int(self.header(":status")) if self.headers else None

    def header(self, name, default=None):
        for k, v in self.headers or ():
            if k == name:
                return v
        return default

    def done(self):
        return self.ended or self.reset is not None


class H2Client:
    """One h2c connection driven by python3-h2. Received DATA is
    acknowledged (WINDOW_UPDATE) unless auto_ack is False."""

    def __init__(self, port, settings=None, timeout=10.0, auto_ack=True,
                 validate=True):
        self.port = port
        self.timeout = timeout
        self.auto_ack = auto_ack
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        cfg = h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8",
            validate_outbound_headers=validate,
            normalize_outbound_headers=validate,
            validate_inbound_headers=True)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.streams = {}
        self.goaway = None          # (error_code, last_stream_id)
        self.remote_settings = {}
        self.closed = False
        self.events = []
        self.flush()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, method="GET", extra=(), end_stream=True):
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = Stream(sid)
        self.conn.send_headers(sid, request_headers(self.port, path, method,
                                                    extra),
                               end_stream=end_stream)
        self.flush()
        return sid

    def reset(self, sid, code=CANCEL):
        self.conn.reset_stream(sid, error_code=code)
        self.flush()

    def pump(self, timeout):
        """Read once (up to timeout) and handle the events."""
        if self.closed:
            return False
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return True
        except (ConnectionResetError, BrokenPipeError):
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        for ev in self.conn.receive_data(data):
            self.events.append(ev)
            self._handle(ev)
        try:
            self.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True
        return True

    def _handle(self, ev):
        st = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.ResponseReceived) and st:
            st.headers = ev.headers
        elif isinstance(ev, h2.events.DataReceived):
            if st:
                st.data += ev.data
            if self.auto_ack and ev.flow_controlled_length:
                self.conn.acknowledge_received_data(
                    ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded) and st:
            st.ended = True
        elif isinstance(ev, h2.events.StreamReset) and st:
            st.reset = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = (ev.error_code, ev.last_stream_id)
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            for k, v in ev.changed_settings.items():
                self.remote_settings[int(k)] = v.new_value

    def wait(self, pred, timeout=None, what="a condition"):
        deadline = time.monotonic() + (timeout or self.timeout)
        for _ in range(1 << 20):
            if pred():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not self.pump(min(left, 0.5)) and not pred():
                raise AssertionError("connection closed while waiting for %s"
                                     " (goaway=%r)" % (what, self.goaway))
        raise AssertionError("timed out waiting for %s" % what)

    def response(self, sid, timeout=None):
        st = self.streams[sid]
        self.wait(st.done, timeout, "stream %d to end" % sid)
        return st

    def get(self, path, timeout=None, **kw):
        return self.response(self.request(path, **kw), timeout)

    def wait_closed(self, timeout):
        """Read until the server closes; returns the GOAWAY seen (or None)."""
        deadline = time.monotonic() + timeout
        for _ in range(1 << 20):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the server did not close within %.1fs"
                                     " (goaway=%r)" % (timeout, self.goaway))
            try:
                if not self.pump(min(left, 0.5)):
                    return self.goaway
            except h2.exceptions.ProtocolError:
                return self.goaway
        raise AssertionError("unreachable")


# ------------------------------------------------------------ raw frames

def frame(ftype, flags, sid, payload=b""):
    n = len(payload)
    return struct.pack(">BHBBI", (n >> 16) & 0xff, n & 0xffff, ftype, flags,
                       sid & 0x7fffffff) + payload


def settings_frame(pairs=(), ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0,
                 b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def goaway_payload(data):
    last, code = struct.unpack(">II", data[:8])
    return last & 0x7fffffff, code


class Frame:
    def __init__(self, ftype, flags, sid, payload):
        self.type, self.flags, self.sid, self.payload = (ftype, flags, sid,
                                                         payload)

    def error_code(self):
        if self.type == RST_STREAM:
            return struct.unpack(">I", self.payload[:4])[0]
        if self.type == GOAWAY:
            return goaway_payload(self.payload)[1]
        return None

    def __repr__(self):
        return "<frame type=%d flags=%#x sid=%d len=%d code=%r>" % (
            self.type, self.flags, self.sid, len(self.payload),
            self.error_code())


class RawH2:
    """A connection speaking frames we build by hand. The server's
    SETTINGS are acknowledged as they arrive, so that only what a test
    sends on purpose is wrong."""

    def __init__(self, port, timeout=10.0, settings=(), trickle=False,
                 auto_window=True):
        """trickle: the preface goes out one byte per write; auto_window:
        DATA received is given back (WINDOW_UPDATE) as a client would."""
        self.port = port
        self.auto_window = auto_window
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.enc = hpack.Encoder()
        self.buf = b""
        self.frames = []
        self.eof = False
        self.reset = False
        if trickle:
            for i in range(len(PREFACE)):
                self.sock.sendall(PREFACE[i:i + 1])
                time.sleep(0.005)
            self.sock.sendall(settings_frame(settings))
        else:
            self.sock.sendall(PREFACE + settings_frame(settings))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            self.reset = True
            return False

    def block(self, headers):
        return self.enc.encode(headers)

    def headers(self, sid, headers, end_stream=True, end_headers=True):
        flags = (END_STREAM if end_stream else 0) | \
            (END_HEADERS if end_headers else 0)
        return frame(HEADERS, flags, sid, self.block(headers))

    def get_frame(self, sid, path="/"):
        return self.headers(sid, request_headers(self.port, path))

    def _parse(self):
        for _ in range(1 << 20):
            if len(self.buf) < 9:
                return
            hi, lo, t, fl, sid = struct.unpack(">BHBBI", self.buf[:9])
            n = (hi << 16) | lo
            if len(self.buf) < 9 + n:
                return
            f = Frame(t, fl, sid & 0x7fffffff, self.buf[9:9 + n])
            self.buf = self.buf[9 + n:]
            self.frames.append(f)
            if t == SETTINGS and not fl & ACK:
                self.send(settings_frame(ack=True))
            if t == DATA and n and self.auto_window:
                inc = struct.pack(">I", n)
                self.send(frame(WINDOW_UPDATE, 0, 0, inc) +
                          frame(WINDOW_UPDATE, 0, sid & 0x7fffffff, inc))

    def read_until(self, pred, timeout=5.0):
        """Read frames until pred(frames) is true, EOF, or the deadline.
        Returns pred's value (None on EOF / deadline)."""
        deadline = time.monotonic() + timeout
        for _ in range(1 << 20):
            v = pred(self.frames)
            if v:
                return v
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                return None
            self.sock.settimeout(left)
            try:
                b = self.sock.recv(1 << 20)
            except socket.timeout:
                return None
            except ConnectionResetError:
                self.reset = self.eof = True
                return pred(self.frames)
            if not b:
                self.eof = True
            self.buf += b
            self._parse()
        return None

    def goaway(self, timeout=5.0):
        """The first GOAWAY's (last_stream_id, error_code), or None."""
        f = self.read_until(lambda fs: next(
            (x for x in fs if x.type == GOAWAY), None), timeout)
        return goaway_payload(f.payload) if f else None

    def final_goaway(self, timeout=5.0):
        """The GOAWAY that is not a shutdown notice."""
        f = self.read_until(lambda fs: next(
            (x for x in fs if x.type == GOAWAY and
             goaway_payload(x.payload)[0] != 0x7fffffff), None), timeout)
        return goaway_payload(f.payload) if f else None

    def rst(self, sid, timeout=5.0):
        """The error code of the first RST_STREAM on sid, or None."""
        f = self.read_until(lambda fs: next(
            (x for x in fs if x.type == RST_STREAM and x.sid == sid), None),
            timeout)
        return f.error_code() if f else None

    def wait_eof(self, timeout=5.0):
        self.read_until(lambda fs: False, timeout)
        return self.eof

    def response(self, sid, timeout=5.0):
        """(headers, body, ended, rst_code) of stream sid, decoded."""
        def done(fs):
            for x in fs:
                if x.sid != sid:
                    continue
                if x.type == RST_STREAM:
                    return True
                if x.type in (DATA, HEADERS) and x.flags & END_STREAM:
                    return True
            return False
        self.read_until(done, timeout)
        dec = hpack.Decoder()
        hdrs, body, ended, code = None, b"", False, None
        # header blocks must be decoded in order, whatever the stream
        for x in self.frames:
            if x.type == HEADERS:
                h = dec.decode(_header_block(x))
                if x.sid == sid:
                    hdrs = [(k.decode() if isinstance(k, bytes) else k,
                             v.decode() if isinstance(v, bytes) else v)
                            for k, v in h]
            if x.sid != sid:
                continue
            if x.type == DATA:
                body += _data_payload(x)
            if x.type in (DATA, HEADERS) and x.flags & END_STREAM:
                ended = True
            if x.type == RST_STREAM:
                code = x.error_code()
        return hdrs, body, ended, code


def _header_block(f):
    p = f.payload
    if f.flags & PADDED:
        pad = p[0]
        p = p[1:len(p) - pad]
    if f.flags & 0x20:  # PRIORITY
        p = p[5:]
    return p


def _data_payload(f):
    p = f.payload
    if f.flags & PADDED:
        pad = p[0]
        p = p[1:len(p) - pad]
    return p


def h2_ok(port, path, timeout=10.0):
    """A fresh h2c connection fetches path: (status, body)."""
    with H2Client(port, timeout=timeout) as c:
        st = c.get(path, timeout=timeout)
        return st.status, bytes(st.data)

