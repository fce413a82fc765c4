"""A Linux TUN device as a netstack link.

``open_tun`` creates (or attaches to) a layer-3 TUN interface without packet information
headers (``IFF_TUN | IFF_NO_PI``), so every read is one IP packet.  ``TunLink`` reads it
with ``loop.add_reader`` and drains the descriptor until it would block on each readiness
event (bounded per event so one busy link cannot starve the loop), handing the whole batch
to ``NetstackDriver.feed_many``: one wake-up and one stack pass per burst instead of one
per packet.  Writes go straight to the descriptor; a TUN write injects the packet into the
kernel and does not block in practice, and if it ever fails the packet is counted as
dropped, as on any lossy link.

Addresses and routes are set up by whoever owns the interface (``ip`` or pyroute2); the
device is created in the network namespace of the calling thread.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import struct
from collections.abc import Callable

log = logging.getLogger(__name__)

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_MULTI_QUEUE = 0x0100
_IFREQ = struct.Struct("16sH22x")


def open_tun(name: str = "", *, multi_queue: bool = False) -> tuple[int, str]:
    """Open ``/dev/net/tun`` as interface ``name`` (kernel-chosen when empty); returns
    (non-blocking fd, actual interface name)."""
    if len(name.encode()) > 15:
        raise ValueError(f"interface name too long: {name!r}")
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        flags = IFF_TUN | IFF_NO_PI | (IFF_MULTI_QUEUE if multi_queue else 0)
        res = fcntl.ioctl(fd, TUNSETIFF, _IFREQ.pack(name.encode(), flags))
    except BaseException:
        os.close(fd)
        raise
    return fd, res[:16].rstrip(b"\0").decode()


class TunLink:
    """Moves IP packets between a TUN descriptor and a packet consumer on an asyncio loop."""

    def __init__(
        self,
        fd: int,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        max_batch: int = 256,
        read_size: int = 65536,
        close_fd: bool = True,
    ) -> None:
        self.fd = fd
        self._loop = loop or asyncio.get_running_loop()
        self.max_batch = max_batch
        self.read_size = read_size
        self._close_fd = close_fd
        self._consumer: Callable[[list[bytes]], None] | None = None
        self.rx_packets = 0
        self.rx_batches = 0
        self.tx_packets = 0
        self.tx_dropped = 0
        self._closed = False

    def start(self, consumer: Callable[[list[bytes]], None]) -> None:
        """Begin reading; ``consumer`` gets each batch (e.g. ``NetstackDriver.feed_many``)."""
        self._consumer = consumer
        self._loop.add_reader(self.fd, self._on_readable)

    def _on_readable(self) -> None:
        batch: list[bytes] = []
        read = os.read
        fd = self.fd
        size = self.read_size
        for _ in range(self.max_batch):
            try:
                pkt = read(fd, size)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                log.warning("tun: read failed: %s", e)
                break
            if not pkt:
                break
            batch.append(pkt)
        if batch:
            self.rx_packets += len(batch)
            self.rx_batches += 1
            assert self._consumer is not None
            self._consumer(batch)

    def send_packets(self, packets: list[bytes]) -> None:
        """Write packets to the device (for ``NetstackDriver(send_packets=...)``)."""
        if self._closed:
            return
        write = os.write
        fd = self.fd
        for pkt in packets:
            try:
                write(fd, pkt)
            except OSError as e:
                self.tx_dropped += 1
                if e.errno not in (errno.EAGAIN, errno.ENOBUFS, errno.EIO, errno.EINVAL):
                    log.warning("tun: write failed: %s", e)
                continue
            self.tx_packets += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.remove_reader(self.fd)
        except Exception:  # noqa: BLE001 - the loop may already be closed
            pass
        if self._close_fd:
            os.close(self.fd)
