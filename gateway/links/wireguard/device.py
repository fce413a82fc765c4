"""A sans-IO WireGuard device: many peers behind one UDP port.

Feed it what the socket read and the current (monotonic) time; collect what to send and
the decrypted IP packets, each tagged with the peer it came from:

    device.receive_datagram(data, addr, now)      # any number of times (a batch)
    device.send_packet(ip_packet, now)            # routed by destination (allowed IPs)
    device.handle_timer(now)                      # when now >= device.get_timer()
    for datagram, addr in device.datagrams_to_send(): sock.sendto(datagram, addr)
    for peer, ip_packet in device.packets_received(): netstack.receive(ip_packet) ...

Outputs are queued and drained, as aioquic's ``QuicConnection`` does, so a caller that
reads a whole batch of datagrams drains once per batch.

Everything that is not an authenticated, fresh, well-formed message from a known peer
is dropped without an answer and counted in ``counters`` under the reason
(``DROP_REASONS``); nothing of it reaches ``packets_received``.
"""

from __future__ import annotations

import logging
import os
import random
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable

from gateway.links.wireguard import timers as timer_names
from gateway.links.wireguard.allowed_ips import AllowedIPs
from gateway.links.wireguard.constants import (
    DEFAULT_MTU,
    KEY_LEN,
    MESSAGE_COOKIE_REPLY,
    MESSAGE_INITIATION,
    MESSAGE_RESPONSE,
    MESSAGE_TRANSPORT,
)
from gateway.links.wireguard.cookie import CookieChecker
from gateway.links.wireguard.crypto import TAI64N
from gateway.links.wireguard.handshake import (
    HandshakeError,
    InitiationFlood,
    StaleTimestamp,
    StaticIdentity,
    begin_initiation_read,
)
from gateway.links.wireguard.messages import (
    COOKIE_REPLY_LEN,
    INITIATION_LEN,
    RESPONSE_LEN,
    TRANSPORT_MIN_LEN,
    unpack_cookie_reply,
    unpack_initiation,
    unpack_response,
)
from gateway.links.wireguard.peer import Address, Peer, address_bytes
from gateway.links.wireguard.session import Keypair
from gateway.links.wireguard.timers import TimerConfig
from gateway.links.wireguard.transport import INDEX_COUNTER, inner_packet, open_sealed, seal
from gateway.net.address_text import format_address

log = logging.getLogger(__name__)

_TRANSPORT_WORD = MESSAGE_TRANSPORT.to_bytes(4, "little")

DROP_REASONS = (
    "malformed",  # wrong length or type for a WireGuard message
    "bad_mac1",  # handshake message not addressed to our public key
    "unknown_key",  # initiation from a static key that is not one of our peers
    "handshake_decrypt_failed",  # handshake fields that do not authenticate
    "stale_timestamp",  # replayed or older initiation
    "handshake_flood",  # initiations from one peer faster than 50 per second
    "unexpected_response",  # response with no matching initiation in flight
    "unknown_index",  # transport/response/cookie for an index we do not have
    "expired_keypair",  # transport under a keypair older than REJECT_AFTER_TIME
    "replay",  # counter already seen, or behind the window
    "decrypt_failed",  # transport data that does not authenticate (forged, corrupted)
    "disallowed_source",  # decrypted packet whose source is not in the peer's allowed IPs
    "bad_inner_packet",  # decrypted plaintext that is not an IPv4/IPv6 packet
    "cookie_required",  # handshake under load without a valid MAC2 (a cookie reply went out)
    "rate_limited",  # handshake under load beyond the per-address rate
    "bad_cookie_reply",  # cookie reply that does not decrypt
    "no_route",  # packet to send whose destination is no peer's
    "staged_overflow",  # packet waiting for a handshake pushed out by newer ones
)


def _is_link_local_icmpv6(packet: bytes, source: bytes) -> bool:
    """ICMPv6 (directly or after a hop-by-hop header, as MLD sends it) from fe80::/10 or
    from :: (duplicate address detection)."""
    if len(source) != 16 or len(packet) < 41:
        return False
    if not ((source[0] == 0xFE and source[1] & 0xC0 == 0x80) or source == bytes(16)):
        return False
    next_header = packet[6]
    if next_header == 0:  # hop-by-hop options
        next_header = packet[40]
    return next_header == 58


class Device:
    def __init__(self, private_key: bytes, *, timers: TimerConfig | None = None, mtu: int = DEFAULT_MTU,
                 handshake_load_threshold: int = 128,
                 random_bytes: Callable[[int], bytes] = os.urandom,
                 clock: Callable[[], float] = time.time) -> None:
        """``random_bytes`` feeds ephemeral keys, indices, cookie secrets and timer jitter;
        ``clock`` (wall time) feeds only the TAI64N timestamps of our initiations."""
        self.identity = StaticIdentity(private_key)
        self.public_key = self.identity.public_key
        self.config = timers or TimerConfig()
        self.mtu = mtu
        self.handshake_load_threshold = handshake_load_threshold
        self._random = random_bytes
        self._jitter_rng = random.Random(random_bytes(16))
        self._clock = clock
        self.peers: dict[bytes, Peer] = {}
        self.allowed_ips: AllowedIPs[Peer] = AllowedIPs()
        self._indices: dict[int, Keypair | Peer] = {}
        self._cookie_checker = CookieChecker(self.public_key, random_bytes, self.config.cookie_refresh_time)
        self._datagrams: list[tuple[bytes, Address]] = []
        self._packets: list[tuple[Peer, bytes]] = []
        self.counters: Counter[str] = Counter()
        self._last_timestamp = bytes(12)
        self._recent_handshakes: list[float] = []
        self._under_load_until = float("-inf")
        self._buckets: dict[bytes, tuple[float, float]] = {}

    # -- peers -----------------------------------------------------------------------

    def add_peer(self, public_key: bytes, *, name: str | None = None, preshared_key: bytes | None = None,
                 allowed_ips: Iterable[str] = (), endpoint: Address | None = None,
                 persistent_keepalive: float = 0.0) -> Peer:
        if public_key in self.peers:
            raise ValueError("a peer with this public key exists")
        if len(public_key) != KEY_LEN:
            raise ValueError("a public key is 32 bytes")
        peer = Peer(self.identity, public_key, name=name, preshared_key=preshared_key, config=self.config,
                    rng=self._jitter_rng, index_table=self._indices, endpoint=endpoint,
                    persistent_keepalive=persistent_keepalive)
        self.peers[public_key] = peer
        for prefix in allowed_ips:
            self.allowed_ips.insert(prefix, peer)
        peer.allowed_ips = self.allowed_ips.prefixes_of(peer)
        return peer

    def remove_peer(self, peer: Peer) -> None:
        self.peers.pop(peer.public_key, None)
        self.allowed_ips.remove_value(peer)
        peer.keypairs.clear()
        self._forget_handshake_index(peer)
        peer.handshake.clear()
        peer.timers.stop_all()
        peer.staged.clear()

    def peer_named(self, name: str) -> Peer | None:
        return next((p for p in self.peers.values() if p.name == name), None)

    # -- outputs ---------------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        out, self._datagrams = self._datagrams, []
        return out

    def packets_received(self) -> list[tuple[Peer, bytes]]:
        out, self._packets = self._packets, []
        return out

    # -- receiving -------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        """Handle one UDP datagram; never raises on bad input."""
        if data[:4] == _TRANSPORT_WORD:
            self._receive_transport(data, addr, now)
            return
        kind = data[0] if len(data) >= 4 and data[1:4] == b"\0\0\0" else 0
        try:
            if kind == MESSAGE_INITIATION:
                self._receive_initiation(data, addr, now)
            elif kind == MESSAGE_RESPONSE:
                self._receive_response(data, addr, now)
            elif kind == MESSAGE_COOKIE_REPLY:
                self._receive_cookie_reply(data, now)
            else:
                self._drop("malformed", addr)
        except Exception:  # a bug must not take the endpoint down; the datagram is lost
            log.exception("wireguard: error handling a datagram from %s", format_address(addr))
            self.counters["internal_error"] += 1

    def _drop(self, reason: str, addr: Address, peer: Peer | None = None) -> None:
        self.counters[reason] += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("wireguard: dropped a datagram from %s%s: %s", format_address(addr),
                      f" (peer {peer.name})" if peer else "", reason)

    def _receive_transport(self, data: bytes, addr: Address, now: float) -> None:
        if len(data) < TRANSPORT_MIN_LEN:
            self._drop("malformed", addr)
            return
        receiver, counter = INDEX_COUNTER.unpack_from(data, 4)
        keypair = self._indices.get(receiver)
        if keypair is None or keypair.__class__ is not Keypair:
            self._drop("unknown_index", addr)
            return
        peer: Peer = keypair.peer  # type: ignore[union-attr]
        config = self.config
        if now - keypair.created >= config.reject_after_time:  # type: ignore[union-attr]
            self._drop("expired_keypair", addr, peer)
            return
        replay = keypair.replay  # type: ignore[union-attr]
        if not replay.check(counter, config.reject_after_messages):
            self._drop("replay", addr, peer)
            return
        plaintext = open_sealed(keypair, data, counter)  # type: ignore[arg-type]
        if plaintext is None:
            self._drop("decrypt_failed", addr, peer)
            return
        if not replay.update(counter, config.reject_after_messages):
            self._drop("replay", addr, peer)
            return

        # Authenticated: from here on the datagram is genuinely the peer's.
        if peer.endpoint != addr:
            if peer.endpoint is not None:
                self.counters["roamed"] += 1
            peer.endpoint = addr
        peer.rx_bytes += len(data)
        timers = peer.timers
        if peer.keypairs.received_with(keypair):  # type: ignore[arg-type]
            timers.handshake_complete()
            self._send_staged(peer, now)
        timers.any_authenticated_packet_received()
        timers.any_authenticated_packet_traversal(now)
        self._keep_key_fresh_receiving(peer, now)

        if not plaintext:
            self.counters["keepalives_received"] += 1
            return
        timers.data_received(now)
        inner = inner_packet(plaintext)
        if inner is None:
            self._drop("bad_inner_packet", addr, peer)
            return
        packet, source = inner
        if (self.allowed_ips.lookup_v4(source) if len(source) == 4 else self.allowed_ips.lookup_v6(source)) \
                is not peer:
            if _is_link_local_icmpv6(packet, source):
                # Router/neighbour solicitations and MLD reports of the phone's own tunnel
                # interface: expected on every run, not spoofing, and of no use to us.
                self.counters["ignored_link_local"] += 1
                return
            self._drop("disallowed_source", addr, peer)
            return
        peer.rx_packets += 1
        self._packets.append((peer, packet))

    def _handshake_gate(self, data: bytes, addr: Address, sender_index: int, now: float) -> bool:
        """MAC1 always; under load MAC2 (or a cookie reply) and a per-address rate."""
        if not self._cookie_checker.check_mac1(data):
            self._drop("bad_mac1", addr)
            return False
        if not self._under_load(now):
            return True
        source = address_bytes(addr)
        if not self._cookie_checker.check_mac2(data, source, now):
            reply = self._cookie_checker.create_reply(data, sender_index, source, now)
            self._datagrams.append((reply, addr))
            self.counters["cookie_replies_sent"] += 1
            self._drop("cookie_required", addr)
            return False
        if not self._rate_allows(source[:-2], now):
            self._drop("rate_limited", addr)
            return False
        return True

    def _under_load(self, now: float) -> bool:
        recent = self._recent_handshakes
        recent.append(now)
        if len(recent) > 2 * self.handshake_load_threshold or recent[0] <= now - 1.0:
            self._recent_handshakes = recent = [t for t in recent if t > now - 1.0]
        if len(recent) > self.handshake_load_threshold:
            self._under_load_until = now + 1.0
        return now < self._under_load_until

    def _rate_allows(self, ip: bytes, now: float, rate: float = 20.0, burst: float = 5.0) -> bool:
        """Token bucket per source address for handshakes under load (the kernel's numbers)."""
        if len(self._buckets) > 4096:
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 1.0}
        tokens, last = self._buckets.get(ip, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[ip] = (tokens, now)
            return False
        self._buckets[ip] = (tokens - 1.0, now)
        return True

    def _receive_initiation(self, data: bytes, addr: Address, now: float) -> None:
        if len(data) != INITIATION_LEN:
            self._drop("malformed", addr)
            return
        message = unpack_initiation(data)
        if not self._handshake_gate(data, addr, message.sender, now):
            return
        try:
            state, initiator = begin_initiation_read(self.identity, message)
        except HandshakeError:
            self._drop("handshake_decrypt_failed", addr)
            return
        peer = self.peers.get(initiator)
        if peer is None:
            self._drop("unknown_key", addr)
            return
        try:
            peer.handshake.consume_initiation(state, message, now, self.config.handshake_initiation_rate)
        except StaleTimestamp:
            self._drop("stale_timestamp", addr, peer)
            return
        except InitiationFlood:
            self._drop("handshake_flood", addr, peer)
            return
        except HandshakeError:
            self._drop("handshake_decrypt_failed", addr, peer)
            return
        peer.endpoint = addr
        peer.timers.any_authenticated_packet_traversal(now)
        peer.timers.any_authenticated_packet_received()

        self._forget_handshake_index(peer)  # an initiation of ours in flight is superseded
        index = self._new_index(peer)
        response, keys = peer.handshake.create_response(index, self._random(KEY_LEN))
        keypair = Keypair(keys.send_key, keys.receive_key, index, keys.remote_index, now, False, peer)
        self._indices[index] = keypair
        peer.keypairs.install(keypair)
        peer.timers.session_derived(now)
        peer.last_handshake = self._clock()
        self._datagrams.append((bytes(peer.cookies.add_macs(response, now)), addr))
        peer.timers.any_authenticated_packet_traversal(now)
        peer.timers.any_authenticated_packet_sent()
        self.counters["handshake_responses_sent"] += 1

    def _receive_response(self, data: bytes, addr: Address, now: float) -> None:
        if len(data) != RESPONSE_LEN:
            self._drop("malformed", addr)
            return
        message = unpack_response(data)
        if not self._handshake_gate(data, addr, message.sender, now):
            return
        owner = self._indices.get(message.receiver)
        if owner is None or owner.__class__ is not Peer:
            self._drop("unknown_index", addr)
            return
        peer: Peer = owner  # type: ignore[assignment]
        try:
            keys = peer.handshake.consume_response(message)
        except HandshakeError:
            self._drop("unexpected_response", addr, peer)
            return
        keypair = Keypair(keys.send_key, keys.receive_key, keys.local_index, keys.remote_index, now, True, peer)
        self._indices[keys.local_index] = keypair
        peer.endpoint = addr
        timers = peer.timers
        timers.any_authenticated_packet_traversal(now)
        timers.any_authenticated_packet_received()
        peer.keypairs.install(keypair)
        timers.session_derived(now)
        timers.handshake_complete()
        peer.last_handshake = self._clock()
        self.counters["handshakes_completed"] += 1
        # Confirm the session to the responder at once: staged data, or a keepalive.
        self._send_keepalive(peer, now)

    def _receive_cookie_reply(self, data: bytes, now: float) -> None:
        if len(data) != COOKIE_REPLY_LEN:
            self.counters["malformed"] += 1
            return
        reply = unpack_cookie_reply(data)
        owner = self._indices.get(reply.receiver)
        peer = owner if isinstance(owner, Peer) else getattr(owner, "peer", None)
        if peer is None:
            self.counters["unknown_index"] += 1
            return
        if peer.cookies.consume_reply(reply, now):
            self.counters["cookie_replies_received"] += 1
        else:
            self.counters["bad_cookie_reply"] += 1

    # -- sending ---------------------------------------------------------------------

    def send_packet(self, packet: bytes, now: float) -> bool:
        """Encrypt an IP packet to the peer whose allowed IPs hold its destination."""
        version = packet[0] >> 4 if packet else 0
        if version == 4 and len(packet) >= 20:
            peer = self.allowed_ips.lookup_v4(packet[16:20])
        elif version == 6 and len(packet) >= 40:
            peer = self.allowed_ips.lookup_v6(packet[24:40])
        else:
            peer = None
        if peer is None:
            self.counters["no_route"] += 1
            return False
        self._send_data(peer, packet, now)
        return True

    def send_packets(self, peer: Peer, packets: Iterable[bytes], now: float) -> None:
        """Encrypt packets to one peer (the caller already knows where they go)."""
        for packet in packets:
            self._send_data(peer, packet, now)

    def _usable(self, keypair: Keypair | None, now: float) -> bool:
        return (keypair is not None and keypair.send_counter < self.config.reject_after_messages
                and now - keypair.created < self.config.reject_after_time)

    def _send_data(self, peer: Peer, packet: bytes, now: float) -> None:
        keypair = peer.keypairs.current
        if peer.endpoint is None or not self._usable(keypair, now):
            if len(peer.staged) == peer.staged.maxlen:
                self.counters["staged_overflow"] += 1
            peer.staged.append(packet)
            self.initiate_handshake(peer, now)
            return
        self._encrypt(peer, keypair, packet, now)  # type: ignore[arg-type]
        peer.tx_packets += 1
        peer.timers.data_sent(now)
        self._keep_key_fresh_sending(peer, keypair, now)  # type: ignore[arg-type]

    def _encrypt(self, peer: Peer, keypair: Keypair, packet: bytes, now: float) -> None:
        datagram = seal(keypair, packet, self.mtu)
        peer.tx_bytes += len(datagram)
        self._datagrams.append((datagram, peer.endpoint))  # type: ignore[arg-type]
        peer.timers.any_authenticated_packet_traversal(now)
        peer.timers.any_authenticated_packet_sent()

    def _send_staged(self, peer: Peer, now: float) -> None:
        if not peer.staged:
            return
        keypair = peer.keypairs.current
        if peer.endpoint is None or not self._usable(keypair, now):
            self.initiate_handshake(peer, now)
            return
        staged = list(peer.staged)
        peer.staged.clear()
        for packet in staged:
            self._encrypt(peer, keypair, packet, now)  # type: ignore[arg-type]
        peer.tx_packets += len(staged)
        peer.timers.data_sent(now)
        self._keep_key_fresh_sending(peer, keypair, now)  # type: ignore[arg-type]

    def _send_keepalive(self, peer: Peer, now: float) -> None:
        if peer.staged:
            self._send_staged(peer, now)
            return
        keypair = peer.keypairs.current
        if peer.endpoint is None or not self._usable(keypair, now):
            return
        self._encrypt(peer, keypair, b"", now)  # type: ignore[arg-type]
        self.counters["keepalives_sent"] += 1

    def _keep_key_fresh_sending(self, peer: Peer, keypair: Keypair, now: float) -> None:
        if keypair.send_counter > self.config.rekey_after_messages or (
                keypair.is_initiator and now - keypair.created >= self.config.rekey_after_time):
            self.initiate_handshake(peer, now)

    def _keep_key_fresh_receiving(self, peer: Peer, now: float) -> None:
        timers = peer.timers
        if timers.sent_last_minute_handshake:
            return
        keypair = peer.keypairs.current
        config = self.config
        if keypair is not None and keypair.is_initiator and now - keypair.created >= (
                config.reject_after_time - config.keepalive_timeout - config.rekey_timeout):
            timers.sent_last_minute_handshake = True
            self.initiate_handshake(peer, now)

    # -- handshakes we start -----------------------------------------------------------

    def initiate_handshake(self, peer: Peer, now: float, retry: bool = False) -> bool:
        """Send an initiation unless one went out less than REKEY_TIMEOUT ago."""
        handshake = peer.handshake
        if not retry:
            last = handshake.last_initiation_sent_at
            if last is not None and now - last < self.config.rekey_timeout:
                return False
            peer.timers.handshake_attempts = 0
        if peer.endpoint is None:
            self.counters["no_endpoint"] += 1
            return False
        handshake.last_initiation_sent_at = now
        self._forget_handshake_index(peer)
        index = self._new_index(peer)
        message = handshake.create_initiation(index, self._random(KEY_LEN), self._timestamp())
        self._datagrams.append((bytes(peer.cookies.add_macs(message, now)), peer.endpoint))
        self.counters["handshake_initiations_sent"] += 1
        timers = peer.timers
        timers.any_authenticated_packet_traversal(now)
        timers.any_authenticated_packet_sent()
        timers.handshake_initiated(now)
        return True

    def _timestamp(self) -> bytes:
        """TAI64N of the wall clock, forced to grow even if the clock stands still or steps back."""
        stamp = TAI64N(self._clock())
        if stamp <= self._last_timestamp:
            seconds, nanos = struct.unpack(">QI", self._last_timestamp)
            nanos += 1 << 24
            if nanos >= 1_000_000_000:
                seconds, nanos = seconds + 1, 0
            stamp = struct.pack(">QI", seconds, nanos)
        self._last_timestamp = stamp
        return stamp

    def _new_index(self, owner: Peer | Keypair) -> int:
        while True:
            index = int.from_bytes(self._random(4), "little")
            if index not in self._indices:
                self._indices[index] = owner
                return index

    def _forget_handshake_index(self, peer: Peer) -> None:
        index = peer.handshake.local_index
        if self._indices.get(index) is peer:
            del self._indices[index]

    # -- timers ----------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The earliest time at which ``handle_timer`` has work, or None."""
        deadlines = [d for p in self.peers.values() if (d := p.timers.next_deadline()) is not None]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        for peer in list(self.peers.values()):
            for name in peer.timers.due(now):
                if name == timer_names.RETRANSMIT_HANDSHAKE:
                    self._retransmit_handshake(peer, now)
                elif name == timer_names.SEND_KEEPALIVE:
                    self._send_keepalive(peer, now)
                    peer.timers.keepalive_sent_again(now)
                elif name == timer_names.NEW_HANDSHAKE:
                    self.counters["handshakes_for_silence"] += 1
                    self.initiate_handshake(peer, now)
                elif name == timer_names.ZERO_KEY_MATERIAL:
                    self._zero_key_material(peer)
                elif name == timer_names.PERSISTENT_KEEPALIVE:
                    self._send_keepalive(peer, now)

    def _retransmit_handshake(self, peer: Peer, now: float) -> None:
        timers = peer.timers
        if timers.handshake_attempts > self.config.max_handshake_attempts:
            # Give up until there is something to send again (paper section 6.4).
            self.counters["handshakes_given_up"] += 1
            timers.deadlines.pop(timer_names.SEND_KEEPALIVE, None)
            peer.staged.clear()
            timers.schedule_zeroing(now)
            return
        timers.handshake_attempts += 1
        self.counters["handshake_retries"] += 1
        self.initiate_handshake(peer, now, retry=True)

    def _zero_key_material(self, peer: Peer) -> None:
        peer.keypairs.clear()
        self._forget_handshake_index(peer)
        peer.handshake.clear()
        self.counters["key_material_zeroed"] += 1
