"""Our TcpConnection (as the client) against the stack engineer's ``Stack`` (as the
intercepting server), IP packets built and read by scapy, time virtual, the path seeded
lossy.  This is the seam between the TCP core and the demuxer exercised end to end."""

import random

import pytest
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

from netstack.config import StackConfig
from netstack.events import TcpConnectionRequest
from netstack.events import TcpEvent as StackTcpEvent
from netstack.stack import Stack
from netstack.tcp import Closed, Connected, DataReceived, EofReceived, TcpConfig, TcpConnection, parse_segment
from netstack.tcp.sim import pattern

V4 = ("10.7.0.2", "203.0.113.80")
V6 = ("fd00::2", "2001:db8::80")


def packed(ip):
    import socket

    return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)


class Harness:
    def __init__(self, addrs, loss=0.0, seed=1, refuse=False, mtu=1500):
        self.client_ip, self.server_ip = addrs
        self.v6 = ":" in self.client_ip
        self.stack = Stack(StackConfig(mtu=mtu))
        self.now = 0.0
        self.rng = random.Random(seed)
        self.loss = loss
        self.refuse = refuse
        self.client = TcpConnection.connect(
            (packed(self.client_ip), 40000), (packed(self.server_ip), 443), 0.0, TcpConfig(), 0xFFFFFFF0
        )
        self.inflight = []  # (arrival time, to_stack, bytes)
        self.server_got = bytearray()
        self.client_got = bytearray()
        self.client_events = []
        self.server_events = []
        self.reply = b""
        self.cid = None
        self.requests = []

    def wrap(self, seg):
        if self.v6:
            return bytes(IPv6(src=self.client_ip, dst=self.server_ip, nh=6) / Raw(seg))
        return bytes(IP(src=self.client_ip, dst=self.server_ip, proto=6) / Raw(seg))

    def unwrap(self, pkt):
        ip = IPv6(pkt) if self.v6 else IP(pkt)
        assert ip.src == self.server_ip and ip.dst == self.client_ip  # answered as the destination
        if not self.v6:
            chk = ip.chksum
            del ip.chksum
            assert IP(bytes(ip)).chksum == chk
        return bytes(ip.payload)

    def put(self, to_stack, data):
        if self.loss and self.rng.random() < self.loss:
            return
        self.inflight.append((self.now + 0.02, to_stack, data))

    def step(self):
        for seg in self.client.segments_to_send(self.now):
            self.put(True, self.wrap(seg))
        for pkt in self.stack.packets_to_send():
            self.put(False, pkt)
        while (ev := self.stack.next_event()) is not None:
            if isinstance(ev, TcpConnectionRequest):
                self.requests.append(ev)
                if self.refuse:
                    self.stack.refuse_tcp(ev.conn_id)
                else:
                    self.stack.accept_tcp(ev.conn_id)
                    self.cid = ev.conn_id
            elif isinstance(ev, StackTcpEvent):
                e = ev.event
                self.server_events.append(type(e).__name__)
                if isinstance(e, DataReceived):
                    self.server_got += e.data
                    self.stack.tcp_consumed(ev.conn_id, len(e.data))
                elif isinstance(e, EofReceived):
                    self.stack.tcp_send(ev.conn_id, self.reply)
                    self.stack.tcp_close(ev.conn_id)
        while (ev := self.client.next_event()) is not None:
            self.client_events.append(ev)
            if isinstance(ev, DataReceived):
                self.client_got += ev.data
                self.client.consumed(len(ev.data))
        for pkt in self.stack.packets_to_send():
            self.put(False, pkt)
        for seg in self.client.segments_to_send(self.now):
            self.put(True, self.wrap(seg))
        # next moment: a delivery or a timer
        times = [t for t, _, _ in self.inflight]
        for t in (self.client.get_timer(), self.stack.get_timer()):
            if t is not None:
                times.append(t)
        if not times:
            return False
        self.now = max(self.now, min(times))
        due = [x for x in self.inflight if x[0] <= self.now]
        self.inflight = [x for x in self.inflight if x[0] > self.now]
        for _, to_stack, data in due:
            if to_stack:
                self.stack.receive_packet(data, self.now)
            else:
                self.client.receive(parse_segment(self.unwrap(data)), self.now)
        t = self.client.get_timer()
        if t is not None and t <= self.now:
            self.client.handle_timer(self.now)
        t = self.stack.get_timer()
        if t is not None and t <= self.now:
            self.stack.handle_timer(self.now)
        return True

    def run(self, until=300.0, max_steps=200_000):
        for _ in range(max_steps):
            if self.now > until or not self.step():
                break
            if any(isinstance(e, Closed) for e in self.client_events) and "Closed" in self.server_events:
                break


@pytest.mark.parametrize("addrs", [V4, V6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("loss", [0.0, 0.03])
def test_request_response_through_the_stack(addrs, loss):
    h = Harness(addrs, loss=loss, seed=5)
    request = pattern(60_000, 1)
    h.reply = pattern(250_000, 2)
    h.client.send(request)
    h.client.close()  # half-close: the server answers after our FIN
    h.run()
    assert (
        h.requests and h.requests[0].dst == (h.server_ip, 443) and h.requests[0].src == (h.client_ip, 40000)
    )
    assert bytes(h.server_got) == request
    assert bytes(h.client_got) == h.reply
    assert isinstance(h.client_events[0], Connected)
    assert any(isinstance(e, EofReceived) for e in h.client_events)
    assert Closed("closed") in h.client_events and "Closed" in h.server_events


def test_mss_clamped_to_the_stack_mtu():
    h = Harness(V4, mtu=1280)
    h.reply = b"r" * 10_000
    h.client.send(b"q")
    h.client.close()
    h.run()
    assert h.client._peer_mss == 1280 - 40
    assert bytes(h.client_got) == h.reply


def test_refused_connection_resets_the_client():
    h = Harness(V4, refuse=True)
    h.run(until=5)
    assert h.client_events == [Closed("reset")]
