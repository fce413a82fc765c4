"""The asyncio edge: a Device served over one UDP socket (IPv4 and IPv6 on one port).

Reading is batched: one ``loop.add_reader`` callback drains the socket until it would
block (bounded per event so timers and other tasks still run), feeds every datagram to
the device, then sends what the device produced and hands the decrypted packets to the
callback as one list.  That costs a few microseconds a datagram; asyncio's
DatagramProtocol path costs several times more (one callback and one Python frame chain
per datagram).  Timers are one ``loop.call_at`` handle re-armed at the device's earliest
deadline.  Time given to the device is ``loop.time()``.

Sending is batched too (``DatagramSender``): a bulk download makes the gateway send tens
of thousands of full-size datagrams a second to one phone, and one ``sendto`` each was a
third of the gateway's CPU (py-spy).  With UDP GSO (``UDP_SEGMENT``) the kernel cuts one
buffer into a run of equal-sized datagrams to one address (the last may be shorter), so
up to 64 cost one ``sendmsg``; where the kernel or socket has no GSO the first try fails
and the sender sends one datagram per call from then on.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import struct
import sys
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from itertools import islice

from gateway.links.wireguard.constants import DEFAULT_PORT
from gateway.links.wireguard.device import Device
from gateway.links.wireguard.peer import Address, Peer
from gateway.net.address_text import format_address

log = logging.getLogger(__name__)

PacketsCallback = Callable[[list[tuple[Peer, bytes]]], None]

MAX_DATAGRAM = 65535
READ_BATCH = 256
"""Datagrams read per readiness event before yielding to the loop."""
MAX_PENDING_SENDS = 8192
SOCKET_BUFFER = 4 * 1024 * 1024
UDP_SEGMENT = 103  # linux/udp.h: the segment size of a UDP GSO send
GSO_MAX_SEGMENTS = 64
GSO_MAX_BYTES = 65000
_GSO_SIZE = struct.Struct("=H")
_NO_GSO = (errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP, errno.EIO, errno.EMSGSIZE)
"""What a kernel, socket or device without UDP GSO answers to a segmented send."""


def open_socket(host: str = "::", port: int = DEFAULT_PORT) -> socket.socket:
    """A non-blocking UDP socket; "::" (the default) is dual-stack, taking IPv4 as well.

    Raises OSError (errno EADDRINUSE when another process holds the port).
    """
    family = socket.AF_INET
    if host in ("", "::") or (host and ipaddress.ip_address(host).version == 6):
        family = socket.AF_INET6
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM)
    except OSError as e:  # a host without IPv6
        if family != socket.AF_INET6 or host not in ("", "::") or e.errno != errno.EAFNOSUPPORT:
            raise
        family, host = socket.AF_INET, "0.0.0.0"
        sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6 and host in ("", "::"):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
            except OSError:
                pass
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class DatagramSender:
    """Sends batches of datagrams on one non-blocking UDP socket in few system calls.

    ``gso``: try UDP GSO (default: on Linux).  It is switched off for good by the first
    segmented send the kernel refuses, and that run goes out one datagram at a time.
    """

    def __init__(self, sock: socket.socket, *, gso: bool | None = None) -> None:
        self.sock = sock
        self.gso = (hasattr(socket, "SOL_UDP") and sys.platform.startswith("linux")) if gso is None else gso
        self.errors = 0
        """Datagrams the kernel refused (unreachable address, wrong family...): dropped."""
        self.segmented_sends = 0
        """``sendmsg`` calls that carried several datagrams."""

    def send(self, datagrams: Sequence[tuple[bytes, Address]], start: int = 0) -> int:
        """Send ``datagrams[start:]`` in order.  Returns the index of the first one not
        sent because the socket would block, or ``len(datagrams)`` when all were handled."""
        sock = self.sock
        n = len(datagrams)
        i = start
        while i < n:
            data, addr = datagrams[i]
            j = self._run_end(datagrams, i) if self.gso else i + 1
            try:
                if j - i > 1:
                    sock.sendmsg([b"".join([d for d, _ in datagrams[i:j]])],
                                 [(socket.SOL_UDP, UDP_SEGMENT, _GSO_SIZE.pack(len(data)))], 0, addr)
                    self.segmented_sends += 1
                else:
                    sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return i
            except OSError as e:
                if j - i > 1 and e.errno in _NO_GSO:
                    log.info("wireguard: no UDP GSO on this socket (%s); sending datagrams one by one", e)
                    self.gso = False
                    continue  # the same run again, one by one
                self.errors += j - i
                log.debug("wireguard: send to %s: %s", format_address(addr), e)
            i = j
        return n

    @staticmethod
    def _run_end(datagrams: Sequence[tuple[bytes, Address]], i: int) -> int:
        """End of the run from ``i`` that one GSO send can carry: same address, same size
        (a shorter last one allowed), bounded in segments and bytes."""
        data, addr = datagrams[i]
        size = len(data)
        n = len(datagrams)
        limit = min(n, i + GSO_MAX_SEGMENTS)
        j, total = i + 1, size
        while j < limit:
            d, a = datagrams[j]
            length = len(d)
            if a != addr or length > size or total + length > GSO_MAX_BYTES:
                break
            total += length
            j += 1
            if length < size:
                break  # a shorter segment can only be the last
        return j


class WireGuardEndpoint:
    """Runs ``device`` on a UDP socket; decrypted packets go to ``on_packets`` in batches.

    ``send_packet``/``send_packets`` encrypt and send at once.  ``sock`` may be given
    (already bound, e.g. inside another network namespace); otherwise ``start`` opens one
    on ``host``/``port``.
    """

    def __init__(self, device: Device, on_packets: PacketsCallback, *, host: str = "::",
                 port: int = DEFAULT_PORT, sock: socket.socket | None = None) -> None:
        self.device = device
        self.on_packets = on_packets
        self.host = host
        self.port = port
        self.sock = sock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._pending: deque[tuple[bytes, Address]] = deque()
        self._writing = False
        self.sender: DatagramSender | None = None
        self.send_dropped = 0
        """Datagrams dropped because the send queue was full (the socket stayed blocked)."""

    @property
    def sockname(self) -> Address:
        assert self.sock is not None
        return self.sock.getsockname()

    @property
    def running(self) -> bool:
        return self._loop is not None

    @property
    def send_errors(self) -> int:
        return self.sender.errors if self.sender is not None else 0

    def start(self) -> None:
        """Open (if needed) and start reading; call from inside the running loop."""
        self._loop = asyncio.get_running_loop()
        if self.sock is None:
            self.sock = open_socket(self.host, self.port)
        self.sock.setblocking(False)
        if self.sender is None or self.sender.sock is not self.sock:
            self.sender = DatagramSender(self.sock)
        self._loop.add_reader(self.sock.fileno(), self._on_readable)
        self._reschedule()

    def close(self) -> None:
        if self._loop is not None and self.sock is not None:
            self._loop.remove_reader(self.sock.fileno())
            if self._writing:
                self._loop.remove_writer(self.sock.fileno())
        if self._timer is not None:
            self._timer.cancel()
        if self.sock is not None:
            self.sock.close()
        self._loop = None

    # -- packets out -----------------------------------------------------------------

    def send_packet(self, ip_packet: bytes) -> bool:
        """Encrypt to the peer whose allowed IPs hold the destination; False if none."""
        assert self._loop is not None
        routed = self.device.send_packet(ip_packet, self._loop.time())
        self._flush()
        return routed

    def send_packets(self, peer: Peer, ip_packets: Iterable[bytes]) -> None:
        assert self._loop is not None
        self.device.send_packets(peer, ip_packets, self._loop.time())
        self._flush()

    def send_routed(self, ip_packets: Iterable[bytes]) -> int:
        """Encrypt each packet to the peer owning its destination, then send them all in
        one batch (netstack's output).  Returns how many had a route."""
        assert self._loop is not None
        device, now = self.device, self._loop.time()
        routed = 0
        for packet in ip_packets:
            routed += device.send_packet(packet, now)
        self._flush()
        return routed

    # -- the loop callbacks ------------------------------------------------------------

    def _on_readable(self) -> None:
        sock, device, loop = self.sock, self.device, self._loop
        assert sock is not None and loop is not None
        now = loop.time()
        recvfrom = sock.recvfrom
        receive = device.receive_datagram
        for _ in range(READ_BATCH):
            try:
                data, addr = recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:  # e.g. ICMP port unreachable reported on the socket
                log.debug("wireguard: recvfrom: %s", e)
                continue
            receive(data, addr, now)
        self._flush()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        assert self._loop is not None
        self.device.handle_timer(self._loop.time())
        self._flush()

    def _flush(self) -> None:
        device = self.device
        datagrams = device.datagrams_to_send()
        if datagrams:
            self._send_datagrams(datagrams)
        packets = device.packets_received()
        if packets:
            try:
                self.on_packets(packets)
            except Exception:
                log.exception("wireguard: packet callback failed")
            # The callback may have answered through send_packets (which flushes itself),
            # but anything it queued on the device directly goes out here.
            more = device.datagrams_to_send()
            if more:
                self._send_datagrams(more)
        self._reschedule()

    def _send_datagrams(self, datagrams: list[tuple[bytes, Address]]) -> None:
        if self._pending:
            self._queue(datagrams)
            return
        assert self.sender is not None
        sent = self.sender.send(datagrams)
        if sent < len(datagrams):
            self._queue(datagrams[sent:])

    def _queue(self, datagrams: list[tuple[bytes, Address]]) -> None:
        room = MAX_PENDING_SENDS - len(self._pending)
        if room < len(datagrams):
            self.send_dropped += len(datagrams) - max(room, 0)
            datagrams = datagrams[:max(room, 0)]
        self._pending.extend(datagrams)
        if not self._writing and self._loop is not None:
            self._loop.add_writer(self.sock.fileno(), self._on_writable)  # type: ignore[union-attr]
            self._writing = True

    def _on_writable(self) -> None:
        pending, sender = self._pending, self.sender
        assert sender is not None
        while pending:
            batch = list(islice(pending, GSO_MAX_SEGMENTS))
            sent = sender.send(batch)
            for _ in range(sent):
                pending.popleft()
            if sent < len(batch):
                return  # would block again: wait for the next writable event
        self._loop.remove_writer(self.sock.fileno())  # type: ignore[union-attr]
        self._writing = False

    def _reschedule(self) -> None:
        loop = self._loop
        if loop is None:
            return
        deadline = self.device.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = loop.call_at(deadline, self._on_timer)
