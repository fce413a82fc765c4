"""Client and server connections as the flow model sees them.

One ``Client`` per accepted connection, one ``Server`` per upstream connection; flows
point at both.  Besides mitmproxy's attributes a ``Client`` records the link a
packet-mode connection came through (WireGuard peer name and key, or TUN interface), so
addons can tell devices apart.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Flag
from typing import TYPE_CHECKING, Any, Literal

from gateway.coretypes.serializable import Serializable
from gateway.proxy.mode_specs import ProxyMode

if TYPE_CHECKING:
    from gateway.certs import Cert
    from gateway.proxy.arrival import Arrival

Address = tuple  # (host, port) or, for IPv6 sockets, (host, port, flowinfo, scope_id)
TransportProtocol = Literal["tcp", "udp"]


class ConnectionState(Flag):
    """Which directions of a connection are still open."""

    CLOSED = 0
    CAN_READ = 1
    CAN_WRITE = 2
    OPEN = CAN_READ | CAN_WRITE


_UNSET: Any = object()


def _new_id() -> str:
    return str(uuid.uuid4())


def _address(value: Any) -> tuple | None:
    # Flow-file formats may hand tuples back as lists.
    return None if value is None else tuple(value)


def _cert_state(cert: Any) -> bytes:
    if isinstance(cert, bytes):
        return cert
    if hasattr(cert, "to_pem"):
        return cert.to_pem()
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.PEM)


def _cert_from_state(pem: bytes | str) -> Cert:
    from gateway.certs import Cert

    return Cert.from_pem(pem.encode() if isinstance(pem, str) else pem)


@dataclass(kw_only=True, eq=False, slots=True)
class Connection(Serializable):
    """Attributes common to both ends: addresses, state, TLS details, timestamps."""

    peername: Address | None
    """The remote's address (for a client: the client; for a server: the server's IP)."""
    sockname: Address | None
    """Our local address on this connection."""
    state: ConnectionState = ConnectionState.CLOSED
    """Not part of the saved state: a loaded flow's connections are never open."""
    transport_protocol: TransportProtocol = "tcp"
    error: str | None = None
    """A short description of why the connection failed or was closed abnormally."""
    tls: bool = False
    """True if TLS should be (or is) established on this connection."""
    certificate_list: Sequence[Cert] = ()
    """The TLS certificate chain presented by the peer, leaf first."""
    alpn: bytes | None = None
    """The negotiated ALPN protocol, e.g. ``b"h2"``."""
    alpn_offers: Sequence[bytes] = ()
    """The ALPN protocols offered (by the client, or by us to the server)."""
    cipher: str | None = None
    cipher_list: Sequence[str] = ()
    tls_version: str | None = None
    """e.g. ``"TLSv1.3"``."""
    sni: str | None = None
    timestamp_start: float | None = None
    timestamp_end: float | None = None
    timestamp_tls_setup: float | None = None
    id: str = field(default_factory=_new_id)

    @property
    def connected(self) -> bool:
        return self.state is ConnectionState.OPEN

    @property
    def tls_established(self) -> bool:
        return self.timestamp_tls_setup is not None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Connection):
            return self.id == other.id
        return False

    def __hash__(self) -> int:
        return hash(self.id)

    def _common_state(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "peername": self.peername,
            "sockname": self.sockname,
            "transport_protocol": self.transport_protocol,
            "error": self.error,
            "tls": self.tls,
            "certificate_list": [_cert_state(c) for c in self.certificate_list],
            "alpn": self.alpn,
            "alpn_offers": list(self.alpn_offers),
            "cipher": self.cipher,
            "cipher_list": list(self.cipher_list),
            "tls_version": self.tls_version,
            "sni": self.sni,
            "timestamp_start": self.timestamp_start,
            "timestamp_end": self.timestamp_end,
            "timestamp_tls_setup": self.timestamp_tls_setup,
        }

    def _set_common_state(self, state: dict[str, Any]) -> None:
        # object.__setattr__: skips Server's open-connection guard, which cannot apply
        # here (state is not part of the saved state) and is costly per attribute.
        set_ = object.__setattr__
        set_(self, "id", state["id"])
        set_(self, "peername", _address(state["peername"]))
        set_(self, "sockname", _address(state["sockname"]))
        set_(self, "transport_protocol", state.get("transport_protocol", "tcp"))
        set_(self, "error", state["error"])
        set_(self, "tls", state["tls"])
        certs = state["certificate_list"]
        set_(self, "certificate_list", [_cert_from_state(c) for c in certs] if certs else [])
        set_(self, "alpn", state["alpn"])
        set_(self, "alpn_offers", list(state["alpn_offers"]))
        set_(self, "cipher", state["cipher"])
        set_(self, "cipher_list", list(state["cipher_list"]))
        set_(self, "tls_version", state["tls_version"])
        set_(self, "sni", state["sni"])
        set_(self, "timestamp_start", state["timestamp_start"])
        set_(self, "timestamp_end", state["timestamp_end"])
        set_(self, "timestamp_tls_setup", state["timestamp_tls_setup"])

    def _tls_repr(self) -> str:
        parts = []
        if self.alpn:
            parts.append(f"alpn={self.alpn.decode(errors='replace')}")
        if self.tls_established:
            parts.append(f"{self.tls_version or 'TLS'}")
            if self.sni:
                parts.append(f"sni={self.sni}")
        return (", " + ", ".join(parts)) if parts else ""

    @staticmethod
    def _fmt(address: Address | None) -> str:
        if not address:
            return "?"
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


@dataclass(kw_only=True, eq=False, slots=True, repr=False)
class Client(Connection):
    """A connection from a client to us."""

    peername: Address
    sockname: Address
    timestamp_start: float = field(default_factory=time.time)
    mitmcert: Cert | None = None
    """The certificate we presented to the client, if we did TLS with it."""
    proxy_mode: ProxyMode = field(default_factory=lambda: ProxyMode.parse("regular"))
    """The mode that accepted this connection."""
    wireguard_peer: str | None = None
    """Packet modes: the name of the WireGuard peer this connection came through."""
    wireguard_key: str | None = None
    """Packet modes: that peer's public key (base64)."""
    tun_interface: str | None = None
    """Packet modes: the TUN interface this connection came through."""

    @classmethod
    def from_arrival(cls, arrival: Arrival, *, timestamp_start: float | None = None) -> Client:
        """The ``Client`` for a connection a mode handed over (``gateway.proxy.arrival``)."""
        link = arrival.link or {}
        return cls(
            peername=tuple(arrival.peername),
            sockname=tuple(arrival.sockname),
            transport_protocol=arrival.transport,
            proxy_mode=ProxyMode.parse(arrival.mode),
            state=ConnectionState.OPEN,
            timestamp_start=time.time() if timestamp_start is None else timestamp_start,
            wireguard_peer=link.get("wireguard_peer"),
            wireguard_key=link.get("wireguard_key"),
            tun_interface=link.get("tun_interface"),
        )

    @property
    def address(self) -> Address:
        """Alias of ``peername`` (mitmproxy keeps it for old scripts)."""
        return self.peername

    def __repr__(self) -> str:
        link = ""
        if self.wireguard_peer or self.wireguard_key:
            link = f", wireguard={self.wireguard_peer or self.wireguard_key}"
        elif self.tun_interface:
            link = f", tun={self.tun_interface}"
        return (
            f"Client({self._fmt(self.peername)}, state={self.state.name.lower()}"
            f"{self._tls_repr()}{link})"
        )

    __str__ = __repr__

    def get_state(self) -> dict[str, Any]:
        state = self._common_state()
        state["mitmcert"] = _cert_state(self.mitmcert) if self.mitmcert is not None else None
        state["proxy_mode"] = self.proxy_mode.full_spec
        state["wireguard_peer"] = self.wireguard_peer
        state["wireguard_key"] = self.wireguard_key
        state["tun_interface"] = self.tun_interface
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        self._set_common_state(state)
        self.mitmcert = _cert_from_state(state["mitmcert"]) if state["mitmcert"] is not None else None
        self.proxy_mode = ProxyMode.parse(state["proxy_mode"])
        self.wireguard_peer = state.get("wireguard_peer")
        self.wireguard_key = state.get("wireguard_key")
        self.tun_interface = state.get("tun_interface")

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Client:
        client = cls.__new__(cls)  # set_state fills every field
        client.state = ConnectionState.CLOSED
        client.set_state(state)
        return client


@dataclass(kw_only=True, eq=False, slots=True, repr=False)
class Server(Connection):
    """A connection from us to a server."""

    address: Address | None
    """The address we connect (or connected) to; may be a hostname, unlike ``peername``."""
    peername: Address | None = None
    sockname: Address | None = None
    timestamp_tcp_setup: float | None = None
    via: Any = None
    """``gateway.net.server_spec.ServerSpec`` of an upstream proxy we connect through."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("address", "via"):
            is_open = getattr(self, "state", ConnectionState.CLOSED) is ConnectionState.OPEN
            old = getattr(self, name, _UNSET)  # unset while __init__ runs
            if is_open and old is not _UNSET and old != value:
                raise RuntimeError(f"Cannot change server.{name} on open connection.")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return (
            f"Server({self._fmt(self.address)}, state={self.state.name.lower()}"
            f"{self._tls_repr()}{', src_port=' + str(self.sockname[1]) if self.sockname else ''})"
        )

    __str__ = __repr__

    def get_state(self) -> dict[str, Any]:
        state = self._common_state()
        state["address"] = self.address
        state["timestamp_tcp_setup"] = self.timestamp_tcp_setup
        state["via"] = (self.via[0], tuple(self.via[1])) if self.via is not None else None
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        self._set_common_state(state)
        self.address = _address(state["address"])
        self.timestamp_tcp_setup = state["timestamp_tcp_setup"]
        via = state["via"]
        if via is not None:
            from gateway.net.server_spec import ServerSpec

            via = ServerSpec(via[0], tuple(via[1]))
        self.via = via

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Server:
        server = cls.__new__(cls)  # set_state fills every field
        object.__setattr__(server, "state", ConnectionState.CLOSED)
        server.set_state(state)
        return server
