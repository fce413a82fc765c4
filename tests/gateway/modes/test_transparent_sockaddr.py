"""SO_ORIGINAL_DST results are raw sockaddr structures; checked against struct layouts
built independently.  (The kernel path itself is exercised in
tests/e2e/test_tls_modes_transparent.py inside a network namespace with nft redirects.)"""

import socket
import struct

import pytest

from gateway.modes.transparent import original_destination, parse_sockaddr


def test_sockaddr_in():
    raw = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 443) + socket.inet_aton("93.184.216.34") + bytes(8)
    assert parse_sockaddr(raw) == ("93.184.216.34", 443)


def test_sockaddr_in6():
    raw = (struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", 8443, 0)
           + socket.inet_pton(socket.AF_INET6, "2001:db8::1") + struct.pack("=I", 0))
    assert parse_sockaddr(raw) == ("2001:db8::1", 8443)
    mapped = (struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", 80, 0)
              + socket.inet_pton(socket.AF_INET6, "::ffff:10.0.0.7") + bytes(4))
    assert parse_sockaddr(mapped) == ("10.0.0.7", 80)


def test_short_sockaddr():
    with pytest.raises(ValueError):
        parse_sockaddr(b"\x02\x00")


def test_not_redirected_socket_has_no_original_destination():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    c = socket.create_connection(srv.getsockname())
    a, _ = srv.accept()
    try:
        try:
            dest = original_destination(a)
        except OSError:
            return  # no conntrack entry (conntrack not active in this namespace)
        # With conntrack active, an un-NATed connection's original destination is itself.
        assert dest == a.getsockname()
    finally:
        for s in (a, c, srv):
            s.close()
