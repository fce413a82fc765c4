"""A server Device and phone Devices wired together in memory, for the device tests.

Both ends are our own Device; the interop with a real client (wireguard-go) is in the
vector tests and in tests/e2e.  Inner packets are built with scapy, an independent oracle.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

from gateway.links.wireguard import keys
from gateway.links.wireguard.device import Device
from gateway.links.wireguard.peer import Peer
from gateway.links.wireguard.timers import TimerConfig

SERVER_ADDR = ("192.0.2.1", 51820)


def udp4(src: str, dst: str, payload: bytes = b"hello", sport: int = 1234, dport: int = 53) -> bytes:
    return bytes(IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(payload))


def udp6(src: str, dst: str, payload: bytes = b"hello") -> bytes:
    return bytes(IPv6(src=src, dst=dst) / UDP(sport=1234, dport=53) / Raw(payload))


def ping4(src: str, dst: str, seq: int = 1) -> bytes:
    return bytes(IP(src=src, dst=dst) / ICMP(id=7, seq=seq) / Raw(b"ping"))


def seeded(seed: int):  # type: ignore[no-untyped-def]
    return random.Random(seed).randbytes


@dataclass
class Phone:
    device: Device
    server_peer: Peer  # the server, as the phone's peer
    peer: Peer  # the phone, as the server's peer
    addr: tuple[str, int]
    address4: str
    address6: str


@dataclass
class Lab:
    server: Device
    phones: list[Phone] = field(default_factory=list)
    now: float = 1000.0
    wall: float = 1_700_000_000.0
    delivered: list = field(default_factory=list)  # (peer, packet) the server decrypted
    phone_delivered: dict = field(default_factory=dict)  # phone index -> packets

    def clock(self) -> float:
        return self.wall + self.now

    def add_phone(self, name: str, *, psk: bytes | None = None, server_keepalive: float = 0.0,
                  config: TimerConfig | None = None, seed: int | None = None) -> Phone:
        n = len(self.phones) + 2
        private = keys.generate_private_key()
        device = Device(private, timers=config, random_bytes=seeded(seed or n * 7), clock=self.clock)
        server_peer = device.add_peer(self.server.public_key, name="server", preshared_key=psk,
                                      allowed_ips=["0.0.0.0/0", "::/0"], endpoint=SERVER_ADDR)
        address4, address6 = f"10.0.0.{n}", f"fd00::{n}"
        peer = self.server.add_peer(device.public_key, name=name, preshared_key=psk,
                                    allowed_ips=[f"{address4}/32", f"{address6}/128"],
                                    persistent_keepalive=server_keepalive)
        phone = Phone(device, server_peer, peer, (f"198.51.100.{n}", 40000 + n), address4, address6)
        self.phones.append(phone)
        self.phone_delivered[len(self.phones) - 1] = []
        return phone

    def pump(self, rounds: int = 10) -> int:
        """Move datagrams both ways until nobody has anything to send; returns how many moved."""
        moved = 0
        for _ in range(rounds):
            progress = False
            for dg, addr in self.server.datagrams_to_send():
                for phone in self.phones:
                    if addr == phone.addr:
                        phone.device.receive_datagram(dg, SERVER_ADDR, self.now)
                        progress = True
                        moved += 1
            for i, phone in enumerate(self.phones):
                for dg, addr in phone.device.datagrams_to_send():
                    assert addr == SERVER_ADDR
                    self.server.receive_datagram(dg, phone.addr, self.now)
                    progress = True
                    moved += 1
                self.phone_delivered[i] += phone.device.packets_received()
            self.delivered += self.server.packets_received()
            if not progress:
                break
        return moved

    def advance(self, seconds: float, step: float = 0.25) -> None:
        """Let time pass, firing every device's timers on the way and delivering datagrams."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            self.server.handle_timer(self.now)
            for phone in self.phones:
                phone.device.handle_timer(self.now)
            self.pump()


def make_lab(config: TimerConfig | None = None, seed: int = 1, **kwargs) -> Lab:  # type: ignore[no-untyped-def]
    lab = Lab(server=Device(keys.generate_private_key(), timers=config, random_bytes=seeded(seed), **kwargs))
    lab.server._clock = lab.clock
    return lab
