"""The WireGuard mode server behind ``gateway up``: state, client config, UDP, netstack.

It glues parts that each do one job (package docstring): the ``StateStore`` keeps keys
and peers, the sans-IO ``Device`` runs the protocol on a ``WireGuardEndpoint`` socket,
and a ``PacketBridge`` turns the decrypted packets into netstack connections for the
connection handler.  Each connection is tagged with the peer whose allowed addresses hold
its client address, which is the peer that sent it: the device drops inner packets from
addresses outside the sender's allowed IPs, so the lookup cannot be spoofed.

Peers added or removed with ``gateway peers`` while we run are picked up by watching the
state file (a stat every couple of seconds is cheaper and simpler than inotify here).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

from gateway.links.packets import PacketBridge
from gateway.links.wireguard.config import (
    StateStore,
    WireGuardState,
    create_device,
    render_client_config,
    render_qr,
    sync_device,
)
from gateway.links.wireguard.device import DROP_REASONS, Device
from gateway.links.wireguard.peer import Peer
from gateway.links.wireguard.timers import TimerConfig
from gateway.links.wireguard.udp import WireGuardEndpoint
from gateway.modes.listeners import ModeServer
from gateway.proxy.arrival import Address
from netstack.config import StackConfig

log = logging.getLogger("gateway.wireguard")

FIRST_PEER = "phone"
STATE_POLL_INTERVAL = 2.0


def _opt(options: Any, name: str, default: Any) -> Any:
    """Options are declared in gateway/options.py; a bare handler in tests may lack them."""
    value = getattr(options, name, default) if options is not None else default
    return default if value is None else value


def parse_server_address(text: str) -> Address:
    """``ip``, ``ip:port`` or ``[ipv6]:port`` -> (ip, port), port 53 by default."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, 53


def timer_config(options: Any) -> TimerConfig:
    """Protocol timers, shortened when the options ask (the lab's rekey tests)."""
    changes: dict[str, Any] = {}
    rekey_time = float(_opt(options, "wireguard_rekey_after_time", 0.0) or 0.0)
    rekey_messages = int(_opt(options, "wireguard_rekey_after_messages", 0) or 0)
    if rekey_time > 0:
        changes["rekey_after_time"] = rekey_time
    if rekey_messages > 0:
        changes["rekey_after_messages"] = rekey_messages
    return TimerConfig(**changes)


def format_counters(name: str, counters: Mapping[str, int], *, is_drop: Callable[[str], bool]) -> str:
    """``name counters: drops: a=1, b=2 (total 3); other: c=4`` -- drops first, by reason,
    since they are what an operator looks for; zero counts are left out."""
    drops = {k: v for k, v in sorted(counters.items()) if v and is_drop(k)}
    other = {k: v for k, v in sorted(counters.items()) if v and not is_drop(k)}
    text = ", ".join(f"{k}={v}" for k, v in drops.items())
    line = f"{name} counters: drops: {text} (total {sum(drops.values())})" if drops else f"{name} counters: drops: none"
    if other:
        line += "; " + ", ".join(f"{k}={v}" for k, v in other.items())
    return line


class WireGuardServer(ModeServer):
    """A running WireGuard mode (``addresses``, ``stop()``), as ``start_mode`` expects."""

    def __init__(self, mode: Any, handler: Any, *, out: Any = None) -> None:
        super().__init__(mode.full_spec, handler)
        self.mode = mode
        self.options = getattr(handler, "options", None)
        self.out = out or sys.stdout
        self.store = StateStore(_opt(self.options, "state_dir", None))
        self.state: WireGuardState | None = None
        self.device: Device | None = None
        self.endpoint: WireGuardEndpoint | None = None
        self.bridge: PacketBridge | None = None
        self._watch: asyncio.Task | None = None
        self._state_mtime: float | None = None

    # -- start / stop ------------------------------------------------------------------

    async def start(self) -> None:
        opts = self.options
        store = self.store
        # Nothing is written before the socket is open: a run that fails on a busy port
        # must leave no state behind (a second `gateway up` with a new state dir did).
        state = store.load()
        created = state is None
        if state is None:
            state = WireGuardState.new(_opt(opts, "wireguard_ipv4_range", None),
                                       _opt(opts, "wireguard_ipv6_range", None))
            state.add_peer(FIRST_PEER)
        changed = created
        endpoint_opt = _opt(opts, "wireguard_endpoint", None)
        if endpoint_opt and endpoint_opt != state.endpoint:
            state.endpoint = endpoint_opt  # so `gateway peers add` writes the same endpoint
            changed = True
        self.state = state
        mtu = int(_opt(opts, "wireguard_mtu", 1420))
        dns_opt = [str(x) for x in (_opt(opts, "wireguard_dns", []) or [])]
        keepalive = int(_opt(opts, "wireguard_keepalive", 25))
        if (state.mtu, state.dns, state.keepalive) != (mtu, dns_opt, keepalive):
            # Remembered like the endpoint: `gateway peers add` gives a new phone the same.
            state.mtu, state.dns, state.keepalive = mtu, dns_opt, keepalive
            changed = True
        port = self.mode.listen_port(None) or state.listen_port
        if port != state.listen_port:
            # The configs we write (and `gateway peers add`) must point at the port we
            # listen on: `--mode wireguard@51821` is remembered like the endpoint.
            state.listen_port = port
            changed = True
        host = self.mode.listen_host(_opt(opts, "listen_host", "") or "::") or "::"

        self.device = create_device(state, timers=timer_config(opts), mtu=mtu)
        self.endpoint = WireGuardEndpoint(self.device, self._on_packets, host=host, port=port)
        self.endpoint.start()  # OSError (EADDRINUSE) propagates: start_mode reports it
        try:
            if changed:
                store.save(state)
            resolvers = dns_opt or [state.server_address4, state.server_address6]
            dns_servers = list(_opt(opts, "dns_server", []) or [])
            self.bridge = PacketBridge(
                self.handler,
                self.spec,
                self._send_packets,
                link_info=self._link_info,
                trusted=True,
                stack_config=StackConfig(mtu=mtu, addresses=(state.server_address4, state.server_address6)),
                resolver_addresses=resolvers,
                dns_server=parse_server_address(dns_servers[0]) if dns_servers else None,
                own_addresses=(state.server_address4, state.server_address6),
                # http://10.0.0.1/ is the onboarding page, as http://gateway.internal/ is
                onboarding=(str(_opt(opts, "onboarding_ip", "198.18.0.1")), 80)
                if _opt(opts, "onboarding", True) else None,
            )
            self._publish_first_peer(state, created, dns_opt or None, mtu, keepalive)
        except BaseException:
            self.endpoint.close()
            raise
        sockname = self.endpoint.sockname
        self.addresses.append((str(sockname[0]), int(sockname[1])))
        self._state_mtime = self._mtime()
        self._watch = asyncio.get_running_loop().create_task(self._watch_state())

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for line in self.counter_lines():
            log.info("%s", line)
        if self.bridge is not None:
            self.bridge.close()
        if self.endpoint is not None:
            self.endpoint.close()
        await super().stop()

    def counter_lines(self) -> list[str]:
        """What was dropped and why (WireGuard, then netstack), and the main events: the
        summary printed when the mode stops."""
        lines = []
        if self.device is not None:
            extra = {}
            if self.endpoint is not None:
                extra = {"udp_send_errors": self.endpoint.send_errors,
                         "udp_send_queue_full": self.endpoint.send_dropped}
            lines.append(format_counters("wireguard", {**self.device.counters, **extra},
                                         is_drop=lambda k: k in DROP_REASONS or k.startswith("udp_send")))
        if self.bridge is not None:
            lines.append(format_counters("netstack", self.bridge.counters,
                                         is_drop=lambda k: not k.startswith(("rx.", "tx."))))
        return lines

    # -- client configuration ------------------------------------------------------------

    def _publish_first_peer(self, state: WireGuardState, created: bool, dns: list[str] | None, mtu: int,
                            keepalive: int) -> None:
        """Write the first peer's config every start (options may have changed); print it
        with its QR code on the first run, a pointer to it later."""
        try:
            peer = state.get_peer(FIRST_PEER)
        except ValueError:
            # The first peer was removed: silence here left a user wondering how to connect.
            if state.peers:
                names = ", ".join(p.name for p in state.peers)
                print(f"WireGuard peers: {names} (`gateway peers show NAME --qr` shows a configuration)",
                      file=self.out)
            else:
                print("WireGuard has no peers: add one with `gateway peers add NAME` "
                      "(a running gateway takes it without a restart)", file=self.out)
            with contextlib.suppress(Exception):
                self.out.flush()
            return
        text = render_client_config(state, peer, endpoint=state.endpoint, dns=dns, mtu=mtu, keepalive=keepalive)
        # A first run that failed (busy port) already created the state: show the QR code
        # until a run got as far as writing the file.
        first_time = created or not self.store.client_config_path(peer.name).exists()
        path = self.store.write_client_config(peer.name, text)
        if first_time:
            print(f"WireGuard client configuration for {peer.name!r} (scan the QR code with the "
                  f"WireGuard app):\n\n{text}", file=self.out)
            try:
                print(render_qr(text), file=self.out)
            except Exception as e:  # noqa: BLE001 - a missing qrcode module must not stop the mode
                log.warning("cannot draw the QR code: %s", e)
        print(f"WireGuard client configuration for {peer.name!r}: {path} "
              f"(`gateway peers show {peer.name} --qr` shows the QR code)", file=self.out)
        with contextlib.suppress(Exception):
            self.out.flush()

    # -- packets ---------------------------------------------------------------------------

    def _on_packets(self, batch: list[tuple[Peer, bytes]]) -> None:
        bridge = self.bridge
        if bridge is not None:
            bridge.feed_many([packet for _peer, packet in batch])

    def _send_packets(self, packets: list[bytes]) -> None:
        """netstack's output, each packet routed to the peer owning its destination."""
        endpoint = self.endpoint
        if endpoint is not None and endpoint.running:
            endpoint.send_routed(packets)  # one send pass (GSO runs) for the whole batch

    def _link_info(self, peername: Address) -> dict[str, Any]:
        device = self.device
        if device is None:
            return {}
        try:
            peer = device.allowed_ips.lookup(str(ipaddress.ip_address(peername[0].split("%", 1)[0])))
        except ValueError:
            peer = None
        return dict(peer.link_info) if peer is not None else {}

    # -- peers added or removed while running ------------------------------------------------

    def _mtime(self) -> float | None:
        try:
            return self.store.path.stat().st_mtime
        except OSError:
            return None

    async def _watch_state(self) -> None:
        while True:
            await asyncio.sleep(STATE_POLL_INTERVAL)
            mtime = self._mtime()
            if mtime == self._state_mtime:
                continue
            self._state_mtime = mtime
            try:
                state = self.store.load()
            except (OSError, ValueError) as e:
                log.warning("wireguard: cannot reload %s: %s", self.store.path, e)
                continue
            if state is None or self.device is None:
                continue
            before = {p.name for p in self.device.peers.values()}
            sync_device(self.device, state)
            after = {p.name for p in self.device.peers.values()}
            self.state = state
            for name in sorted(after - before):
                log.info("wireguard: peer %s added", name)
            for name in sorted(before - after):
                log.info("wireguard: peer %s removed", name)


async def start(mode: Any, handler: Any) -> WireGuardServer:
    server = WireGuardServer(mode, handler)
    await server.start()
    return server
