"""WireGuard state on disk, client configurations and their QR codes.

The state directory (``~/.gateway`` unless told otherwise) holds ``wireguard.json``
(mode 0600, directory 0700): the server's private key, the tunnel address ranges and
every peer with the key pair we generated for it, so its configuration can be shown
again later (``gateway peers show NAME --qr``).  Client configurations written for the
user go to ``peers/NAME.conf`` next to it, also 0600.

Addresses: the server takes the first host of each range (10.0.0.1, <ula>::1); peers
get the lowest free host number, the same in both families (10.0.0.2 and <ula>::2), so
a phone is easy to recognise in either.  The IPv6 range defaults to a random ULA /64
(RFC 4193) chosen once, because the popular fd00::/64 is what many home routers use.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import os
import re
import socket
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gateway.links.wireguard import keys
from gateway.links.wireguard.constants import DEFAULT_MTU, DEFAULT_PORT
from gateway.links.wireguard.device import Device

log = logging.getLogger("gateway.wireguard")

STATE_FILE = "wireguard.json"
PEERS_DIR = "peers"
DEFAULT_IPV4_RANGE = "10.0.0.0/24"
DEFAULT_KEEPALIVE = 25
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


class StateError(ValueError):
    """A request that does not fit the state (unknown peer, duplicate name, full range...)."""


def default_state_dir() -> Path:
    return Path(os.environ.get("GATEWAY_STATE_DIR") or "~/.gateway").expanduser()


def random_ula_range() -> str:
    """An RFC 4193 unique local /64: fd + 40 random bits + subnet 0."""
    global_id = int.from_bytes(os.urandom(5), "big")
    return str(ipaddress.IPv6Network(((0xFD << 120) | (global_id << 80), 64)))


@dataclass
class PeerEntry:
    name: str
    private_key: str
    public_key: str
    preshared_key: str | None
    address4: str
    address6: str
    created: str = ""

    @property
    def allowed_ips(self) -> list[str]:
        return [f"{self.address4}/32", f"{self.address6}/128"]


@dataclass
class WireGuardState:
    private_key: str
    ipv4_range: str = DEFAULT_IPV4_RANGE
    ipv6_range: str = field(default_factory=random_ula_range)
    listen_port: int = DEFAULT_PORT
    endpoint: str | None = None
    """Host (name or address) phones reach us at; None: guessed when a config is rendered."""
    peers: list[PeerEntry] = field(default_factory=list)
    mtu: int | None = None
    """The tunnel settings `gateway up` last ran with (None: not recorded yet), so that
    `gateway peers add` writes what the running gateway expects even when they were given
    as `--set` only; ``dns`` empty means the gateway's own tunnel addresses."""
    dns: list[str] | None = None
    keepalive: int | None = None

    @classmethod
    def new(cls, ipv4_range: str | None = None, ipv6_range: str | None = None) -> WireGuardState:
        state = cls(keys.to_base64(keys.generate_private_key()))
        if ipv4_range:
            state.ipv4_range = str(ipaddress.IPv4Network(ipv4_range, strict=False))
        if ipv6_range:
            state.ipv6_range = str(ipaddress.IPv6Network(ipv6_range, strict=False))
        return state

    @property
    def public_key(self) -> str:
        return keys.to_base64(keys.public_key(keys.from_base64(self.private_key)))

    @property
    def server_address4(self) -> str:
        return str(ipaddress.IPv4Network(self.ipv4_range)[1])

    @property
    def server_address6(self) -> str:
        return str(ipaddress.IPv6Network(self.ipv6_range)[1])

    def get_peer(self, name: str) -> PeerEntry:
        for peer in self.peers:
            if peer.name == name:
                return peer
        raise StateError(f"no peer named {name!r}")

    def add_peer(self, name: str, *, preshared_key: bool = True) -> PeerEntry:
        if not _NAME.match(name):
            raise StateError(f"peer names are 1-32 letters, digits, '.', '_' or '-': {name!r}")
        if any(p.name == name for p in self.peers):
            raise StateError(f"a peer named {name!r} exists")
        v4, v6 = ipaddress.IPv4Network(self.ipv4_range), ipaddress.IPv6Network(self.ipv6_range)
        taken = {int(ipaddress.IPv4Address(p.address4)) - int(v4.network_address) for p in self.peers}
        host = next((n for n in range(2, min(v4.num_addresses - 1, 1 << 16)) if n not in taken), None)
        if host is None:
            raise StateError(f"the range {self.ipv4_range} has no free address")
        private = keys.generate_private_key()
        entry = PeerEntry(
            name=name,
            private_key=keys.to_base64(private),
            public_key=keys.to_base64(keys.public_key(private)),
            preshared_key=keys.to_base64(keys.generate_preshared_key()) if preshared_key else None,
            address4=str(v4[host]),
            address6=str(v6[host]),
            created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        )
        self.peers.append(entry)
        return entry

    def remove_peer(self, name: str) -> PeerEntry:
        entry = self.get_peer(name)
        self.peers.remove(entry)
        return entry

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> WireGuardState:
        data = json.loads(text)
        peers = [PeerEntry(**p) for p in data.pop("peers", [])]
        state = cls(**data, peers=peers)
        keys.from_base64(state.private_key)  # fail early on a damaged file
        return state


class StateStore:
    """Loads and saves the state atomically, readable by its owner only."""

    def __init__(self, state_dir: str | Path | None = None) -> None:
        self.dir = Path(state_dir).expanduser() if state_dir else default_state_dir()
        self.path = self.dir / STATE_FILE

    def load(self) -> WireGuardState | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        return WireGuardState.from_json(text)

    def load_or_create(self, ipv4_range: str | None = None, ipv6_range: str | None = None,
                       first_peer: str | None = None) -> tuple[WireGuardState, bool]:
        """The state, created (with a fresh server key, and ``first_peer`` if given) if absent."""
        state = self.load()
        if state is not None:
            return state, False
        state = WireGuardState.new(ipv4_range, ipv6_range)
        if first_peer:
            state.add_peer(first_peer)
        self.save(state)
        return state, True

    def save(self, state: WireGuardState) -> None:
        self._write(self.path, state.to_json())

    def client_config_path(self, name: str) -> Path:
        return self.dir / PEERS_DIR / f"{name}.conf"

    def write_client_config(self, name: str, text: str) -> Path:
        path = self.client_config_path(name)
        self._write(path, text)
        return path

    def remove_client_config(self, name: str) -> None:
        self.client_config_path(name).unlink(missing_ok=True)

    @staticmethod
    def _write(path: Path, text: str) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def format_endpoint(host: str, port: int) -> str:
    """host:port, with an IPv6 address in brackets as WireGuard configs want it."""
    host = host.strip("[]")
    try:
        if ipaddress.ip_address(host.split("%", 1)[0]).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass  # a host name
    return f"{host}:{port}"


def default_route_source() -> str | None:
    """The source address of the default route (found by connecting a UDP socket, which
    sends nothing), IPv4 first; None without a default route."""
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                address = s.getsockname()[0]
                if not ipaddress.ip_address(address).is_loopback:
                    return address
        except OSError:
            continue
    return None


def interface_addresses() -> list[str]:
    """Scope-global addresses of the local interfaces, IPv4 first: without a default route
    (a lab, an offline LAN) one of them is still what a phone on the same link reaches."""
    try:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            rows = [(a["family"], a.get_attr("IFA_ADDRESS")) for a in ipr.get_addr() if a["scope"] == 0]
    except Exception:  # noqa: BLE001 - no netlink (sandbox, other OS): nothing to suggest
        return []
    found = []
    for _family, address in sorted(rows, key=lambda r: r[0] != socket.AF_INET):
        try:
            ip = ipaddress.ip_address(address)
        except (TypeError, ValueError):
            continue
        if not (ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified):
            found.append(str(ip))
    return found


def guess_endpoint() -> tuple[str, bool]:
    """The address this host is most likely reached at, and whether it is an address: the
    default route's source, else a global interface address, else (False) the hostname,
    which a phone can rarely resolve."""
    address = default_route_source()
    if address is None:
        address = next(iter(interface_addresses()), None)
    if address is not None:
        return address, True
    return socket.gethostname(), False


def guess_endpoint_host() -> str:
    host, is_address = guess_endpoint()
    if not is_address:
        log.warning("wireguard: no default route and no global address: the phone's config says "
                    "Endpoint = %s, which a phone can rarely resolve; give the address phones reach this "
                    "host at: gateway up --set wireguard_endpoint=ADDRESS (gateway peers: --endpoint ADDRESS)",
                    host)
    return host


def render_client_config(state: WireGuardState, peer: PeerEntry, *, endpoint: str | None = None,
                         port: int | None = None, dns: Iterable[str] | None = None, mtu: int = DEFAULT_MTU,
                         keepalive: int = DEFAULT_KEEPALIVE) -> str:
    """The wg-quick style configuration a phone imports (text or QR code).

    ``endpoint`` may be "host", "host:port", "ipv6" or "[ipv6]:port"; the default is the
    state's endpoint, else a guess.  ``dns`` defaults to the gateway's own tunnel
    addresses, where its resolver answers.
    """
    host, chosen_port = _split_endpoint(endpoint or state.endpoint or guess_endpoint_host())
    dns_servers = list(dns) if dns is not None else [state.server_address4, state.server_address6]
    lines = [
        "[Interface]",
        f"PrivateKey = {peer.private_key}",
        f"Address = {peer.address4}/32, {peer.address6}/128",
    ]
    if dns_servers:
        lines.append(f"DNS = {', '.join(dns_servers)}")
    lines += [
        f"MTU = {mtu}",
        "",
        "[Peer]",
        f"PublicKey = {state.public_key}",
    ]
    if peer.preshared_key:
        lines.append(f"PresharedKey = {peer.preshared_key}")
    lines += [
        "AllowedIPs = 0.0.0.0/0, ::/0",
        f"Endpoint = {format_endpoint(host, port or chosen_port or state.listen_port)}",
    ]
    if keepalive:
        lines.append(f"PersistentKeepalive = {keepalive}")
    return "\n".join(lines) + "\n"


def _split_endpoint(text: str) -> tuple[str, int | None]:
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, None  # a name, an IPv4 address or a bare IPv6 address


def render_qr(text: str, invert: bool = True, border: int = 2) -> str:
    """A QR code of ``text`` drawn with half blocks, two modules per character cell.

    With ``invert`` (the default) light modules are drawn as blocks, which is right on
    the usual light-on-dark terminal; pass False for dark-on-light terminals.
    """
    import qrcode

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_L, border=border)
    qr.add_data(text)
    qr.make(fit=True)
    matrix = qr.get_matrix()  # True = dark, border included
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    glyphs = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
    rows = []
    for top, bottom in zip(matrix[::2], matrix[1::2], strict=True):
        rows.append("".join(glyphs[(t != invert, b != invert)] for t, b in zip(top, bottom, strict=True)))
    return "\n".join(rows) + "\n"


def create_device(state: WireGuardState, **device_options) -> Device:  # type: ignore[no-untyped-def]
    """A Device with the server key and every peer of ``state`` (``device_options`` go to Device)."""
    device = Device(keys.from_base64(state.private_key), **device_options)
    sync_device(device, state)
    return device


def sync_device(device: Device, state: WireGuardState, persistent_keepalive: float = 0.0) -> None:
    """Add peers that are in ``state`` but not in ``device``, remove those no longer in it."""
    wanted = {keys.from_base64(p.public_key): p for p in state.peers}
    for public_key, peer in list(device.peers.items()):
        if public_key not in wanted:
            device.remove_peer(peer)
    for public_key, entry in wanted.items():
        if public_key not in device.peers:
            device.add_peer(public_key, name=entry.name,
                            preshared_key=keys.from_base64(entry.preshared_key) if entry.preshared_key else None,
                            allowed_ips=entry.allowed_ips, persistent_keepalive=persistent_keepalive)
