"""The ICMP half of ``Stack``: echo requests answered (or handed to the owner), errors
received (packet too big teaches the path MTU), errors sent where RFC 1122 3.2.2 and
RFC 4443 2.4 allow them, rate-limited; ICMPv6 neighbour discovery and MLD ignored (the
link is point-to-point)."""

from __future__ import annotations

from netstack.errors import PacketError
from netstack.events import IcmpEchoAnswered, IcmpEchoRequest
from netstack.icmp import (
    V4_DEST_UNREACH,
    V4_ECHO_REPLY,
    V4_ECHO_REQUEST,
    V4_ERRORS,
    V4_FRAG_NEEDED,
    V6_ECHO_REPLY,
    V6_ECHO_REQUEST,
    V6_MLD,
    V6_NEIGHBOUR,
    V6_PACKET_TOO_BIG,
    TokenBucket,
    build_icmpv4,
    build_icmpv6,
    echo_reply_v4,
    echo_reply_v6,
    error_v4,
    error_v6,
    parse_icmpv4,
    parse_icmpv6,
)
from netstack.ipv4 import PROTO_ICMP, PROTO_TCP, IPv4Packet
from netstack.ipv4 import is_unicast_destination as v4_unicast_dst
from netstack.ipv4 import is_unicast_source as v4_unicast_src
from netstack.ipv6 import NH_ICMPV6, IPv6Packet
from netstack.ipv6 import is_unicast_destination as v6_unicast_dst
from netstack.ipv6 import is_unicast_source as v6_unicast_src
from netstack.output import IpOutput, pack_ip

_V4_INFO_TYPES = frozenset({0, 8, 13, 14, 15, 16, 17, 18})


class IcmpEndpoint(IpOutput):
    """ICMP and ICMPv6 for every address the stack impersonates."""

    _icmp_bucket: TokenBucket
    _own: set[bytes]
    _own4: bytes | None
    _own6: bytes | None

    def _init_icmp(self) -> None:
        cfg = self.config
        self._icmp_bucket = TokenBucket(cfg.icmp_error_rate, cfg.icmp_error_burst)
        self._own = {pack_ip(a) for a in cfg.addresses}
        self._own4 = next((a for a in self._own if len(a) == 4), None)
        self._own6 = next((a for a in self._own if len(a) == 16), None)

    def _echo_allowed(self, dst: bytes) -> str:
        policy = self.config.echo_reply
        if policy == "any":
            return "reply"
        if policy == "own":
            return "reply" if dst in self._own else "no"
        if policy == "owner":
            return "owner"
        return "no"

    def _icmp_input_v4(self, p: IPv4Packet, verify: bool) -> None:
        payload = p.payload
        typ, _code = parse_icmpv4(payload, verify)
        if typ == V4_ECHO_REQUEST:
            if not v4_unicast_dst(p.dst):
                raise PacketError("icmp.echo_not_unicast")
            what = self._echo_allowed(p.dst)
            if what == "no":
                raise PacketError("icmp.echo_not_answered")
            src, dst = self._ntop_ip(p.src), self._ntop_ip(p.dst)
            if what == "owner":
                ident, seq = int.from_bytes(payload[4:6], "big"), int.from_bytes(payload[6:8], "big")
                self._events.append(IcmpEchoRequest(src, dst, ident, seq, bytes(payload[8:]), 4))
                return
            self._send_ip(p.dst, p.src, PROTO_ICMP, echo_reply_v4(payload))
            self.counters["tx.icmp.echo_reply"] += 1
            self._events.append(IcmpEchoAnswered(src, dst, 4))
        elif typ in V4_ERRORS:
            self.counters["rx.icmp.error"] += 1
            if typ == V4_DEST_UNREACH and _code == V4_FRAG_NEEDED:
                self.counters["rx.icmp.frag_needed"] += 1
                # RFC 1191: next-hop MTU in bytes 6-8, then the header we sent.
                if len(payload) >= 28:
                    self._packet_too_big(payload[8:], int.from_bytes(payload[6:8], "big"), False)
        elif typ == V4_ECHO_REPLY:
            raise PacketError("icmp.unexpected_echo_reply")
        else:
            raise PacketError("icmp.unhandled_type")

    def _icmp_input_v6(self, p: IPv6Packet, verify: bool) -> None:
        payload = p.payload
        typ, _code = parse_icmpv6(payload, p.src, p.dst, verify)
        if typ in V6_NEIGHBOUR:
            raise PacketError("icmp6.ndp_ignored")
        if typ in V6_MLD:
            raise PacketError("icmp6.mld_ignored")
        if not v6_unicast_src(p.src):
            raise PacketError("ipv6.bad_source")
        if typ == V6_ECHO_REQUEST:
            if not v6_unicast_dst(p.dst):
                raise PacketError("icmp6.echo_not_unicast")
            what = self._echo_allowed(p.dst)
            if what == "no":
                raise PacketError("icmp6.echo_not_answered")
            src, dst = self._ntop_ip(p.src), self._ntop_ip(p.dst)
            if what == "owner":
                ident, seq = int.from_bytes(payload[4:6], "big"), int.from_bytes(payload[6:8], "big")
                self._events.append(IcmpEchoRequest(src, dst, ident, seq, bytes(payload[8:]), 6))
                return
            self._send_ip(p.dst, p.src, NH_ICMPV6, echo_reply_v6(payload, p.dst, p.src))
            self.counters["tx.icmp6.echo_reply"] += 1
            self._events.append(IcmpEchoAnswered(src, dst, 6))
        elif typ < 128:
            self.counters["rx.icmp6.error"] += 1
            if typ == V6_PACKET_TOO_BIG:
                self.counters["rx.icmp6.packet_too_big"] += 1
                if len(payload) >= 48:
                    self._packet_too_big(payload[8:], int.from_bytes(payload[4:8], "big"), True)
        elif typ == V6_ECHO_REPLY:
            raise PacketError("icmp6.unexpected_echo_reply")
        else:
            raise PacketError("icmp6.unhandled_type")

    def _packet_too_big(self, quote: memoryview, mtu: int, v6: bool) -> None:
        """A router could not forward a packet we sent (``quote``: its start) in ``mtu`` bytes.

        When it was a TCP segment, the error must name a live connection and a sequence
        number we have in flight (RFC 5927 4.1): a forged error then cannot shrink anyone's
        segments or the path MTU.  Other datagrams only teach the MTU, which is floored and
        expires, so a forgery can do little there.
        """
        if v6:
            proto, hlen, client, floor = quote[6], 40, bytes(quote[24:40]), 1280
        else:
            proto, hlen, client, floor = quote[9], (quote[0] & 0x0F) * 4, bytes(quote[16:20]), 576
        if proto == PROTO_TCP:
            if len(quote) < hlen + 8:
                raise PacketError("icmp.pmtu_short_quote")
            tcp = quote[hlen : hlen + 8]
            src = bytes(quote[8:24]) if v6 else bytes(quote[12:16])
            key = (client, int.from_bytes(tcp[2:4], "big"), src, int.from_bytes(tcp[0:2], "big"))
            if not self._tcp_packet_too_big(
                key, int.from_bytes(tcp[4:8], "big"), max(mtu, floor) - (40 if v6 else 20) - 20
            ):
                return
        self._learn_pmtu(client, mtu, floor)

    def _tcp_packet_too_big(self, key: tuple[bytes, int, bytes, int], seq: int, mss: int) -> bool:
        """Overridden by the TCP table: apply ``mss`` to the connection ``key`` if ``seq`` is
        in flight there; False when the error names nothing we sent."""
        return False

    def icmp_echo_reply(self, request: IcmpEchoRequest) -> None:
        """Answer an echo request the owner was asked about (``echo_reply="owner"``)."""
        src = pack_ip(request.dst)
        dst = pack_ip(request.src)
        rest = request.ident.to_bytes(2, "big") + request.seq.to_bytes(2, "big")
        if request.version == 4:
            self._send_ip(src, dst, PROTO_ICMP, build_icmpv4(V4_ECHO_REPLY, 0, rest, request.data))
        else:
            self._send_ip(src, dst, NH_ICMPV6, build_icmpv6(V6_ECHO_REPLY, 0, rest, request.data, src, dst))

    def _icmp_error_v4(
        self, p: IPv4Packet, typ: int, code: int, value: int = 0, from_own: bool = False
    ) -> None:
        """Send an ICMP error about ``p`` where RFC 1122 3.2.2 allows one."""
        if not (v4_unicast_src(p.src) and v4_unicast_dst(p.dst)) or p.frag_offset:
            self.counters["icmp.error_suppressed"] += 1
            return
        if p.proto == PROTO_ICMP and (len(p.payload) < 1 or p.payload[0] not in _V4_INFO_TYPES):
            self.counters["icmp.error_suppressed"] += 1
            return
        invoking = bytes(p.header) + bytes(p.payload[:548])
        self._icmp_error_v4_send(invoking, p.src, p.dst, typ, code, value, from_own)

    def _icmp_error_v4_raw(self, invoking: bytes, src: bytes, dst: bytes, typ: int, code: int) -> None:
        """An ICMP error about a packet known only by its bytes (a fragment, a refused datagram)."""
        if not (v4_unicast_src(src) and v4_unicast_dst(dst)):
            self.counters["icmp.error_suppressed"] += 1
            return
        self._icmp_error_v4_send(invoking, src, dst, typ, code, 0, False)

    def _icmp_error_v4_send(
        self, invoking: bytes, src: bytes, dst: bytes, typ: int, code: int, value: int, from_own: bool
    ) -> None:
        if not self._icmp_bucket.take(self._now):
            self.counters["icmp.rate_limited"] += 1
            return
        me = self._own4 if from_own and self._own4 is not None else dst
        self._send_ip(me, src, PROTO_ICMP, error_v4(typ, code, invoking, value), df=False)
        self.counters["tx.icmp.error"] += 1

    def _icmp_error_v6(
        self, p: IPv6Packet, typ: int, code: int, value: int = 0, from_own: bool = False
    ) -> None:
        """Send an ICMPv6 error about ``p`` where RFC 4443 2.4(e) allows one."""
        if not (v6_unicast_src(p.src) and v6_unicast_dst(p.dst)):
            self.counters["icmp6.error_suppressed"] += 1
            return
        if p.frag is not None and p.frag[0] != 0:
            self.counters["icmp6.error_suppressed"] += 1
            return
        if p.proto == NH_ICMPV6 and (len(p.payload) < 1 or p.payload[0] < 128):
            self.counters["icmp6.error_suppressed"] += 1
            return
        self._icmp_error_v6_send(p.packet, p.src, p.dst, typ, code, value, from_own)

    def _icmp_error_v6_raw(self, data: memoryview, icmp: tuple[int, int, int]) -> None:
        """An ICMPv6 error (parameter problem) about a packet that failed to parse."""
        src = bytes(data[8:24])
        dst = bytes(data[24:40])
        if not (v6_unicast_src(src) and v6_unicast_dst(dst)):
            self.counters["icmp6.error_suppressed"] += 1
            return
        typ, code, value = icmp
        self._icmp_error_v6_send(data, src, dst, typ, code, value, False)

    def _icmp_error_v6_send(
        self, invoking: memoryview, src: bytes, dst: bytes, typ: int, code: int, value: int, from_own: bool
    ) -> None:
        if not self._icmp_bucket.take(self._now):
            self.counters["icmp.rate_limited"] += 1
            return
        me = self._own6 if from_own and self._own6 is not None else dst
        self._send_ip(me, src, NH_ICMPV6, error_v6(typ, code, bytes(invoking[:1232]), me, src, value))
        self.counters["tx.icmp6.error"] += 1
