"""
t0003: session resumption. A session saved by `openssl s_client
-sess_out` is resumed with `-sess_in` ("Reused"): TLS 1.2 by ticket
(RFC 5077) and by session id from the cache, TLS 1.3 by ticket (RFC 8446
4.6.1), and by the cache when tickets are off. Two s3edge processes
sharing a ticket_key_file resume each other's sessions; with keys of
their own they cannot. Rewriting the key file (new key first, the old one
after it) and SIGHUP keeps old tickets valid; dropping the old key ends
them. A SIGHUP that reloads the certificates keeps generated keys, so
sessions survive it.
"""

import os
import re
import signal

import harness
from tlsutil import pki, s_client, tls_config  # noqa: F401 (pki: fixture)


def resume(port_out, port_in, sess, *args, name="a.test"):
    """A full handshake on port_out saving its session, then one on
    port_in offering it. Returns (first, second)."""
    if sess.exists():
        sess.unlink()
    first = s_client(port_out, *args, servername=name, sess_out=sess)
    assert first.ok and not first.reused, first
    assert sess.exists() and sess.stat().st_size > 0, first
    second = s_client(port_in, *args, "-sess_in", sess, servername=name)
    assert second.ok, second
    return first, second


def test_tls12_ticket_and_cache(fault, edge, pki, tmp_path):
    e = edge(config=tls_config(pki, fault), env={})
    sess = tmp_path / "s.pem"
    first, s = resume(e.port, e.port, sess, "-tls1_2")
    assert s.reused and s.version == "TLSv1.2", s
    # a ticket, for as long as ticket_key_rotation (default 12h)
    assert "TLS session ticket lifetime hint: 43200 (seconds)" in first.out, first
    # without tickets the session id and the server's cache do it
    _, s = resume(e.port, e.port, sess, "-tls1_2", "-no_ticket")
    assert s.reused and s.version == "TLSv1.2", s
    harness.wait_for(lambda: e.stderr_text().count(", resumed") >= 2, 5,
                     "the resumptions in the debug log")


def test_tls12_cache_off(fault, edge, pki, tmp_path):
    e = edge(config=tls_config(pki, fault, tls_extra="session_cache: 0"),
             env={})
    # no ticket, no cache: the server gives no session id, nothing to save
    sess = tmp_path / "s.pem"
    s = s_client(e.port, "-tls1_2", "-no_ticket", servername="a.test",
                 sess_out=sess, timeout=2)
    assert s.ok and re.search(r"Session-ID: *\n", s.out), s
    assert not sess.exists()
    # tickets still work
    _, s = resume(e.port, e.port, sess, "-tls1_2")
    assert s.reused, s


def test_tls13_tickets(fault, edge, pki, tmp_path):
    e = edge(config=tls_config(pki, fault), env={})
    first, s = resume(e.port, e.port, tmp_path / "s.pem", "-tls1_3")
    assert s.reused and s.version == "TLSv1.3", s
    assert "Post-Handshake New Session Ticket arrived" in first.out, first
    # the same session works for another name on the listener only as a
    # full handshake: the client offers it, nothing breaks either way
    s = s_client(e.port, "-tls1_3", "-sess_in", tmp_path / "s.pem",
                 servername="a.test")
    assert s.ok and s.reused, s


def test_tls13_without_tickets_uses_the_cache(fault, edge, pki, tmp_path):
    e = edge(config=tls_config(pki, fault, tls_extra="session_tickets: false"),
             env={})
    _, s = resume(e.port, e.port, tmp_path / "s.pem", "-tls1_3")
    assert s.reused, s
    # with the cache off too, the session id the client keeps leads nowhere
    e2 = edge(config=tls_config(pki, fault, tls_extra="session_tickets: false\n"
                                "session_cache: 0"), env={})
    _, s = resume(e2.port, e2.port, tmp_path / "s.pem", "-tls1_3")
    assert not s.reused, s


def test_two_processes_share_a_ticket_key_file(fault, edge, pki, tmp_path):
    keys = tmp_path / "ticket.keys"
    keys.write_bytes(os.urandom(160))
    os.chmod(keys, 0o600)
    extra = "ticket_key_file: \"%s\"" % keys
    e1 = edge(config=tls_config(pki, fault, tls_extra=extra), env={})
    e2 = edge(config=tls_config(pki, fault, tls_extra=extra), env={})
    e3 = edge(config=tls_config(pki, fault), env={})  # keys of its own
    for version in ("-tls1_2", "-tls1_3"):
        _, s = resume(e1.port, e2.port, tmp_path / "s.pem", version)
        assert s.reused, (version, s)
        _, s = resume(e2.port, e1.port, tmp_path / "s.pem", version)
        assert s.reused, (version, s)
        # the cache of one process is not the other's: without a ticket
        # (TLS 1.2 -no_ticket) there is nothing to share
        if version == "-tls1_2":
            _, s = resume(e1.port, e2.port, tmp_path / "s.pem", version,
                          "-no_ticket")
            assert not s.reused, s
        _, s = resume(e1.port, e3.port, tmp_path / "s.pem", version)
        assert not s.reused, (version, s)


def test_ticket_key_file_rotation(fault, edge, pki, tmp_path):
    keys = tmp_path / "ticket.keys"
    old, new = os.urandom(80), os.urandom(80)
    keys.write_bytes(old)
    e = edge(config=tls_config(pki, fault,
                               tls_extra="ticket_key_file: \"%s\"" % keys),
             env={})
    sess = tmp_path / "old.pem"
    s_client(e.port, "-tls1_3", servername="a.test", sess_out=sess)

    def hup(n):
        e.proc.send_signal(signal.SIGHUP)
        harness.wait_for(lambda: e.stderr_text().count(
            "certificates and keys reloaded") >= n, 5, "reload %d" % n)

    # a new key in front, the old one kept: old tickets still resume
    keys.write_bytes(new + old)
    hup(1)
    s = s_client(e.port, "-tls1_3", "-sess_in", sess, servername="a.test")
    assert s.ok and s.reused, s
    # new tickets are made under the new key: they resume once the old
    # key is gone, old ones no longer do
    sess_new = tmp_path / "new.pem"
    s_client(e.port, "-tls1_3", servername="a.test", sess_out=sess_new)
    keys.write_bytes(new)
    hup(2)
    s = s_client(e.port, "-tls1_3", "-sess_in", sess, servername="a.test")
    assert s.ok and not s.reused, s
    s = s_client(e.port, "-tls1_3", "-sess_in", sess_new, servername="a.test")
    assert s.ok and s.reused, s
    # a bad file is refused and the keys in use stay
    keys.write_bytes(b"short")
    e.proc.send_signal(signal.SIGHUP)
    harness.wait_for(lambda: "found 5 bytes" in e.stderr_text(), 5,
                     "the refused reload in the log")
    s = s_client(e.port, "-tls1_3", "-sess_in", sess_new, servername="a.test")
    assert s.ok and s.reused, s


def test_generated_keys_survive_reload(fault, edge, pki, tmp_path):
    e = edge(config=tls_config(pki, fault), env={})
    sess = tmp_path / "s.pem"
    for version in ("-tls1_2", "-tls1_3"):
        s_client(e.port, version, servername="a.test", sess_out=sess)
        n = e.stderr_text().count("certificates and keys reloaded")
        e.proc.send_signal(signal.SIGHUP)
        harness.wait_for(lambda: e.stderr_text().count(
            "certificates and keys reloaded") > n, 5, "the reload")
        s = s_client(e.port, version, "-sess_in", sess, servername="a.test")
        assert s.ok and s.reused, (version, s)
