"""The UDP half of ``Stack``: datagrams in (flows keyed by 4-tuple, idle timeout in
``UdpFlows``), datagrams out with the original addresses (fragmented above the path MTU),
and refusal as a closed port answers, with ICMP port unreachable."""

from __future__ import annotations

from netstack.errors import PacketError
from netstack.events import Address, UdpDatagram, UdpFlowExpired
from netstack.icmp import V4_DEST_UNREACH, V4_PORT_UNREACH, V6_DEST_UNREACH, V6_PORT_UNREACH
from netstack.icmp_endpoint import IcmpEndpoint
from netstack.ipv4 import PROTO_UDP, IPv4Packet, build_ipv4
from netstack.ipv4 import is_unicast_destination as v4_unicast_dst
from netstack.ipv6 import IPv6Packet, build_ipv6
from netstack.ipv6 import is_unicast_destination as v6_unicast_dst
from netstack.output import pack_ip
from netstack.udp import UdpFlows, build_udp, parse_udp


class UdpEndpoint(IcmpEndpoint):
    """Every UDP destination at once, as flows the owner answers."""

    _udp: UdpFlows

    def _init_udp(self) -> None:
        cfg = self.config
        self._udp = UdpFlows(self.counters, idle_timeout=cfg.udp_idle_timeout, max_flows=cfg.max_udp_flows)

    def _udp_input_v4(self, p: IPv4Packet, verify: bool) -> None:
        sport, dport, data = parse_udp(p.payload, p.src, p.dst, verify, False)
        if not v4_unicast_dst(p.dst):
            raise PacketError("udp.not_unicast")
        self._udp_deliver(p.src, sport, p.dst, dport, data)

    def _udp_input_v6(self, p: IPv6Packet, verify: bool) -> None:
        sport, dport, data = parse_udp(p.payload, p.src, p.dst, verify, True)
        if not v6_unicast_dst(p.dst):
            raise PacketError("udp.not_unicast")
        self._udp_deliver(p.src, sport, p.dst, dport, data)

    def _udp_deliver(self, src: bytes, sport: int, dst: bytes, dport: int, data: memoryview) -> None:
        new, evicted = self._udp.touch((src, sport, dst, dport), self._now)
        if evicted is not None:
            self._events.append(
                UdpFlowExpired(self._addr(evicted[0], evicted[1]), self._addr(evicted[2], evicted[3]))
            )
        self.counters["rx.udp"] += 1
        self._events.append(UdpDatagram(self._addr(src, sport), self._addr(dst, dport), bytes(data), new))

    def udp_send(
        self, src: Address, dst: Address, data: bytes | memoryview, now: float | None = None
    ) -> None:
        """Send a datagram to a client: ``src`` is the address it appears to come from (the
        client's original destination), ``dst`` the client.  Fragmented above the MTU."""
        sip = pack_ip(src[0])
        dip = pack_ip(dst[0])
        if len(sip) != len(dip):
            raise ValueError("udp_send: mixed address families")
        self._now = max(self._now, now) if now is not None else self._now
        seg = build_udp(src[1], dst[1], data, sip, dip)
        self._send_ip(sip, dip, PROTO_UDP, seg)
        self.counters["tx.udp"] += 1
        self._udp.touch((dip, dst[1], sip, src[1]), self._now)

    def refuse_udp(self, src: Address, dst: Address, data: bytes = b"") -> None:
        """Answer a client's datagram (``src`` client, ``dst`` its destination) with ICMP
        port unreachable, as a closed port would, and forget its flow."""
        sip = pack_ip(src[0])
        dip = pack_ip(dst[0])
        self._udp.remove((sip, src[1], dip, dst[1]))
        seg = build_udp(src[1], dst[1], data[:1024], sip, dip)
        if len(sip) == 4:
            invoking = build_ipv4(sip, dip, PROTO_UDP, seg)
            self._icmp_error_v4_raw(invoking, sip, dip, V4_DEST_UNREACH, V4_PORT_UNREACH)
        else:
            invoking = build_ipv6(sip, dip, PROTO_UDP, seg)
            self._icmp_error_v6_raw(memoryview(invoking), (V6_DEST_UNREACH, V6_PORT_UNREACH, 0))

    @property
    def udp_flow_count(self) -> int:
        return len(self._udp)

    def _udp_expire(self, now: float) -> None:
        for key in self._udp.expire(now):
            self._events.append(UdpFlowExpired(self._addr(key[0], key[1]), self._addr(key[2], key[3])))
