"""Transparent mode (Linux): connections the kernel redirected to us (iptables/nft
``redirect``/``REDIRECT``) carry their original destination in conntrack, which
``getsockopt(SO_ORIGINAL_DST)`` returns as a ``sockaddr_in`` (IPv4) or, with
``IP6T_SO_ORIGINAL_DST`` at ``SOL_IPV6``, a ``sockaddr_in6`` (IPv6).
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from gateway.proxy.arrival import Address

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
IP6T_SO_ORIGINAL_DST = 80  # linux/netfilter_ipv6/ip6_tables.h
SOL_IP = getattr(socket, "SOL_IP", 0)
SOL_IPV6 = getattr(socket, "SOL_IPV6", 41)

_sockaddr_in = struct.Struct("!2xH4s8x")  # family is host-order; skipped
_sockaddr_in6 = struct.Struct("!2xHI16sI")


def parse_sockaddr(buf: bytes) -> Address:
    """Address from a raw ``sockaddr_in`` (16 bytes) or ``sockaddr_in6`` (28 bytes)."""
    if len(buf) >= _sockaddr_in6.size:
        port, _flowinfo, addr, _scope = _sockaddr_in6.unpack_from(buf)
        ip = ipaddress.IPv6Address(addr)
        return (str(ip.ipv4_mapped) if ip.ipv4_mapped else str(ip)), port
    if len(buf) >= _sockaddr_in.size:
        port, addr = _sockaddr_in.unpack_from(buf)
        return str(ipaddress.IPv4Address(addr)), port
    raise ValueError(f"sockaddr of {len(buf)} bytes")


def original_destination(sock: socket.socket) -> Address:
    """The pre-redirect destination of an accepted socket; ``OSError`` if there is none."""
    if sock.family == socket.AF_INET6:
        try:
            return parse_sockaddr(sock.getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST, 28))
        except OSError:
            # An IPv4 connection accepted on a dual-stack socket.
            return parse_sockaddr(sock.getsockopt(SOL_IP, SO_ORIGINAL_DST, 16))
    return parse_sockaddr(sock.getsockopt(SOL_IP, SO_ORIGINAL_DST, 16))
