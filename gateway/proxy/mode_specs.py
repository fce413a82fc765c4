"""Proxy mode specifications: ``mode[:data][@[listen_host:]listen_port]``.

Examples: ``regular``, ``regular@8081``, ``socks5@127.0.0.1:1080``,
``upstream:http://proxy.local:3128``, ``reverse:https://example.com@443``,
``transparent``, ``wireguard``, ``wireguard:/etc/gw/wg.conf@51821``, ``tun:gw0``.

A spec is parsed once into an immutable ``ProxyMode`` subclass; its state is the spec
string itself (``full_spec``), which is all a flow file needs to remember about the mode
a connection arrived through.  Bad specs raise ``ValueError`` with a message fit for a
one-line CLI error.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal, Self

from gateway.coretypes.serializable import Serializable
from gateway.net import server_spec

TransportProtocol = Literal["tcp", "udp", "both"]

_MODES: dict[str, type[ProxyMode]] = {}


@functools.lru_cache(maxsize=256)
def _parse(spec: str) -> ProxyMode:
    head, at, listen_at = spec.rpartition("@")
    if not at:
        head, listen_at = listen_at, ""
    elif not listen_at:
        raise ValueError(f"invalid mode spec {spec!r}: nothing after '@' (expected [host:]port)")
    mode, _, data = head.partition(":")
    host: str | None = None
    port: int | None = None
    if listen_at:
        if ":" in listen_at:
            host, _, port_str = listen_at.rpartition(":")
            if host.startswith("[") and host.endswith("]"):
                host = host[1:-1]
        else:
            port_str = listen_at
        if not port_str.isdigit() or not 0 <= int(port_str) <= 65535:
            raise ValueError(f"invalid mode spec {spec!r}: invalid port {port_str!r}")
        port = int(port_str)
    try:
        mode_cls = _MODES[mode.lower()]
    except KeyError:
        raise ValueError(
            f"invalid mode spec {spec!r}: unknown mode {mode!r} (known: {', '.join(sorted(_MODES))})"
        ) from None
    return mode_cls(full_spec=spec, data=data, custom_listen_host=host, custom_listen_port=port)


@dataclass(frozen=True)
class ProxyMode(Serializable, metaclass=ABCMeta):
    """A parsed proxy mode; build one with ``ProxyMode.parse(spec)``."""

    full_spec: str
    """The spec string this mode was parsed from."""
    data: str
    """The part after ``mode:`` (a server spec, a path, an interface name), or ``""``."""
    custom_listen_host: str | None
    custom_listen_port: int | None

    type_name: ClassVar[str]
    """The mode's name in specs: ``regular``, ``socks5``, ``wireguard``..."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__name__.startswith("_"):
            return  # an abstract helper base, not a mode
        cls.type_name = cls.__name__.removesuffix("Mode").lower()
        assert cls.type_name not in _MODES, cls.type_name
        _MODES[cls.type_name] = cls

    def __repr__(self) -> str:
        return f"ProxyMode.parse({self.full_spec!r})"

    def __post_init__(self) -> None:
        """Validate ``data``; subclasses that take data override this."""
        if self.data:
            raise ValueError(f"invalid mode spec {self.full_spec!r}: {self.type_name} mode takes no data")

    @property
    @abstractmethod
    def description(self) -> str:
        """A human-readable name for the mode."""

    @property
    @abstractmethod
    def default_port(self) -> int | None:
        """The port to listen on when the spec has none (None: the mode listens on no port)."""

    @property
    @abstractmethod
    def transport_protocol(self) -> TransportProtocol:
        """What the mode's listener accepts."""

    @classmethod
    def parse(cls, spec: str) -> Self:
        """Parse ``spec``; ``RegularMode.parse("socks5")`` is refused (wrong kind of mode)."""
        if not isinstance(spec, str):
            raise ValueError(f"mode spec must be a string, not {type(spec).__name__}")
        mode = _parse(spec)
        if not isinstance(mode, cls):
            raise ValueError(f"{spec!r} is not a spec for a {cls.type_name} mode")
        return mode  # type: ignore[return-value]

    def listen_host(self, default: str | None = None) -> str:
        """The host to listen on: the spec's, else ``default``, else ``""`` (all interfaces)."""
        if self.custom_listen_host is not None:
            return self.custom_listen_host
        if default is not None:
            return default
        return ""

    def listen_port(self, default: int | None = None) -> int | None:
        """The port to listen on: the spec's, else ``default``, else the mode's default port."""
        if self.custom_listen_port is not None:
            return self.custom_listen_port
        if default is not None:
            return default
        return self.default_port

    @classmethod
    def from_state(cls, state: str) -> ProxyMode:
        return ProxyMode.parse(state)

    def get_state(self) -> str:
        return self.full_spec

    def set_state(self, state: str) -> None:
        if state != self.full_spec:
            raise dataclasses.FrozenInstanceError("Proxy modes are immutable.")


ProxyMode.type_name = "proxy"


class _ServerSpecMode(ProxyMode, metaclass=ABCMeta):
    """Modes whose data is a server spec (``upstream:...``, ``reverse:...``)."""

    _default_scheme: ClassVar[str] = "http"
    _allowed_schemes: ClassVar[tuple[str, ...]] = server_spec.SCHEMES

    scheme: str
    """The server spec's scheme (set in ``__post_init__``)."""
    address: tuple[str, int]

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError(
                f"invalid mode spec {self.full_spec!r}: {self.type_name} mode needs a server, "
                f"e.g. {self.type_name}:http://example.com:8080"
            )
        try:
            spec = server_spec.parse(self.data, self._default_scheme)
        except ValueError as e:
            raise ValueError(f"invalid mode spec {self.full_spec!r}: {e}") from None
        if spec.scheme not in self._allowed_schemes:
            raise ValueError(
                f"invalid mode spec {self.full_spec!r}: {self.type_name} mode does not support "
                f"scheme {spec.scheme!r} (use {' or '.join(self._allowed_schemes)})"
            )
        object.__setattr__(self, "scheme", spec.scheme)
        object.__setattr__(self, "address", spec.address)


class RegularMode(ProxyMode):
    """A regular HTTP(S) proxy: clients send absolute-form requests or CONNECT."""

    description = "HTTP(S) proxy"
    default_port = 8080
    transport_protocol: TransportProtocol = "tcp"  # type: ignore[assignment]


class TransparentMode(ProxyMode):
    """Connections redirected to us by the OS; the original destination comes from the socket."""

    description = "Transparent Proxy"
    default_port = 8080
    transport_protocol: TransportProtocol = "tcp"  # type: ignore[assignment]


class UpstreamMode(_ServerSpecMode):
    """A regular proxy that forwards everything through another HTTP(S) proxy."""

    description = "HTTP(S) proxy (upstream mode)"
    default_port = 8080
    transport_protocol: TransportProtocol = "tcp"  # type: ignore[assignment]
    _allowed_schemes = ("http", "https")


class ReverseMode(_ServerSpecMode):
    """Every connection goes to one fixed server."""

    description = "Reverse proxy"
    _default_scheme = "https"

    @property
    def default_port(self) -> int:  # type: ignore[override]
        return 53 if self.scheme == "dns" else 8080

    @property
    def transport_protocol(self) -> TransportProtocol:  # type: ignore[override]
        if self.scheme == "dns":
            return "both"
        if self.scheme in ("udp", "dtls", "quic", "http3"):
            return "udp"
        return "tcp"


class Socks5Mode(ProxyMode):
    """A SOCKS v5 proxy (CONNECT command; no authentication unless configured)."""

    description = "SOCKS v5 proxy"
    default_port = 1080
    transport_protocol: TransportProtocol = "tcp"  # type: ignore[assignment]


class WireGuardMode(ProxyMode):
    """A WireGuard endpoint: peers' tunnelled IP packets go through our netstack.

    ``data`` is an optional path to the server's configuration file.
    """

    description = "WireGuard server"
    default_port = 51820
    transport_protocol: TransportProtocol = "udp"  # type: ignore[assignment]

    def __post_init__(self) -> None:
        pass  # data: an optional config path, anything goes


_IFNAME = re.compile(r"^[^\s/:]{1,15}$")


class TunMode(ProxyMode):
    """A TUN device: IP packets routed to it go through our netstack.

    ``data`` is the interface name (Linux limits it to 15 characters); empty lets the
    mode pick one.  A TUN device listens on no port, so ``@port`` is refused.
    """

    description = "TUN interface"
    default_port = None
    transport_protocol: TransportProtocol = "both"  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.data and not _IFNAME.match(self.data):
            raise ValueError(
                f"invalid mode spec {self.full_spec!r}: {self.data!r} is not a valid interface "
                "name (1-15 characters, no whitespace, '/' or ':')"
            )
        if self.custom_listen_host is not None or self.custom_listen_port is not None:
            raise ValueError(f"invalid mode spec {self.full_spec!r}: tun mode does not listen on a port")
