#!/usr/bin/env python3
"""A UDP relay that delays and drops datagrams, seeded: the lab's stand-in for netem.

The kernel here has no netem qdisc (LAB-NOTES.md), and WireGuard runs over UDP, so a relay
between the phone's wireguard-go and the gateway's endpoint gives the tunnelled IP packets
delay and loss.  It listens on LISTEN (the phone's Endpoint), forwards to TARGET, and sends
the answers back to the latest client address.  Each direction gets ``--delay-ms`` and
``--loss``; the drop decisions come from ``random.Random(seed)`` so runs are repeatable.
Reading drains each socket until it would block (one callback per readiness event).

The relay is Python and may itself lose datagrams when it cannot keep up; those losses are
counted apart from the seeded ones so a benchmark can tell the path's loss from the relay's:
``seeded`` (the configured loss), ``queue_full`` (more than MAX_QUEUED held for the delay),
``send_errors`` (a full socket buffer on the way out) and ``rcvbuf_overflow`` (datagrams the
kernel dropped because the relay's receive buffer was full, from SO_RXQ_OVFL).

    udp_relay.py --listen 10.99.1.1:51900 --target 127.0.0.1:51820 --delay-ms 20 --loss 0.01
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import socket
import time
from collections import deque

MAX_QUEUED = 20_000
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)
_ANC = socket.CMSG_SPACE(4)


def parse_addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class Relay:
    def __init__(self, listen: tuple[str, int], target: tuple[str, int], delay: float, loss: float,
                 seed: int) -> None:
        family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
        self.front = socket.socket(family, socket.SOCK_DGRAM)
        self.front.bind(listen)
        self.front.setblocking(False)
        tfamily = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
        self.back = socket.socket(tfamily, socket.SOCK_DGRAM)
        self.back.connect(target)
        self.back.setblocking(False)
        for s in (self.front, self.back):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
        self.overflow = {self.front.fileno(): 0, self.back.fileno(): 0}
        self.delay, self.loss = delay, loss
        self.rng = random.Random(seed)
        self.client: tuple | None = None
        self.queue: deque = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.counts = {"up": 0, "down": 0, "seeded": 0, "queue_full": 0, "send_errors": 0, "rcvbuf_overflow": 0}

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        loop.add_reader(self.front.fileno(), self._from_client)
        loop.add_reader(self.back.fileno(), self._from_server)

    def _forward(self, send, data: bytes, *addr: object) -> None:
        if self.loss and self.rng.random() < self.loss:
            self.counts["seeded"] += 1
            return
        if not self.delay:
            self._send(send, data, addr)
            return
        # A constant delay keeps each direction in order: one FIFO and one timer for the head
        # instead of a timer per datagram (which costs more than the forwarding itself).
        if len(self.queue) >= MAX_QUEUED:
            self.counts["queue_full"] += 1  # a full router buffer
            return
        self.queue.append((self.loop.time() + self.delay, send, data, addr))
        if self.timer is None:
            self.timer = self.loop.call_at(self.queue[0][0], self._release)

    def _release(self) -> None:
        self.timer = None
        now = self.loop.time()
        queue = self.queue
        while queue and queue[0][0] <= now:
            _, send, data, addr = queue.popleft()
            self._send(send, data, addr)
        if queue:
            self.timer = self.loop.call_at(queue[0][0], self._release)

    def _send(self, send, data: bytes, addr: tuple) -> None:
        try:
            send(data, *addr)
        except OSError:
            self.counts["send_errors"] += 1  # a full buffer is loss too, the relay's own

    def _overflow(self, sock: socket.socket, ancdata: list) -> None:
        """SO_RXQ_OVFL: the kernel's running count of datagrams dropped on this socket."""
        for level, kind, value in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(value) >= 4:
                total = int.from_bytes(value[:4], "little")
                fd = sock.fileno()
                if total > self.overflow[fd]:
                    self.counts["rcvbuf_overflow"] += total - self.overflow[fd]
                    self.overflow[fd] = total

    def _from_client(self) -> None:
        for _ in range(512):
            try:
                data, ancdata, _flags, addr = self.front.recvmsg(65535, _ANC)
            except (BlockingIOError, InterruptedError):
                return
            if ancdata:
                self._overflow(self.front, ancdata)
            self.client = addr
            self.counts["up"] += 1
            self._forward(self.back.send, data)

    def _from_server(self) -> None:
        for _ in range(512):
            try:
                data, ancdata, _flags, _addr = self.back.recvmsg(65535, _ANC)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # ICMP port unreachable while the target restarts
            if ancdata:
                self._overflow(self.back, ancdata)
            if self.client is None:
                continue
            self.counts["down"] += 1
            self._forward(self.front.sendto, data, self.client)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", required=True, help="HOST:PORT the client sends to")
    p.add_argument("--target", required=True, help="HOST:PORT of the real endpoint")
    p.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay added to each direction")
    p.add_argument("--loss", type=float, default=0.0, help="drop probability per datagram and direction")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--seconds", type=float, default=3600.0, help="exit after this long (a bound)")
    a = p.parse_args()
    relay = Relay(parse_addr(a.listen), parse_addr(a.target), a.delay_ms / 1000, a.loss, a.seed)
    relay.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("relay ready", flush=True)
    started = time.monotonic()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), a.seconds)
    print(f"relay done after {time.monotonic() - started:.0f}s: {relay.counts}", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
