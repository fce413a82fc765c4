"""The proxy server addon: starts a listener per ``mode`` and enforces ``proxyauth``.

``running`` starts every mode in ``ctx.options.mode`` (each with the one shared
``ConnectionHandler``, so they share the CA, the certificate cache and the loop
guard); ``done`` stops them.  A mode that cannot start (busy port, bad spec) is one
error line, which makes the master exit with status 1 instead of running half set up.
Changing ``mode``/``listen_host``/``listen_port`` while running restarts the listeners.

``proxyauth`` for the regular and upstream modes lives here as hooks (as in mitmproxy):
a request or CONNECT without valid ``Proxy-Authorization`` gets a 407 answer; once a
client connection authenticated (typically its CONNECT), the requests inside its
tunnel pass.  SOCKS5 authentication happens in the SOCKS5 handshake itself.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from typing import Any, Optional

from gateway import ctx

log = logging.getLogger("gateway.proxyserver")

REALM = "gateway"


class Proxyserver:
    def __init__(self) -> None:
        self.handler: Any = None
        self.servers: dict[str, Any] = {}
        self._authenticated: set[str] = set()
        self._lock: asyncio.Lock | None = None
        self.is_running = False

    def load(self, loader: Any) -> None:
        loader.add_option(
            "ssl_verify_upstream_trusted_ca", Optional[str], None,  # noqa: UP045
            "PEM file of CA certificates to trust for upstream servers instead of the system's and certifi's.",
        )
        loader.add_option(
            "upstream_proxy", Optional[str], None,  # noqa: UP045
            "Chain the server connections of the other modes (wireguard, tun, transparent, socks5, "
            "regular) through this HTTP(S) proxy, as `upstream:` mode does: `http://host:port` "
            "(or `upstream:http://host:port`). Every TCP connection goes through a CONNECT "
            "tunnel, authenticated with `upstream_auth`; UDP and DNS go direct.",
        )

    # -- lifecycle ---------------------------------------------------------------------------
    def _make_handler(self) -> Any:
        from gateway.certs import CertStore
        from gateway.proxy.handler import ConnectionHandler

        certs = CertStore(ctx.options.state_dir, announce=False)  # announced once something listens
        return ConnectionHandler(ctx.options, ctx.master.addons, certs)

    async def running(self) -> None:
        self.is_running = True
        if not ctx.options.server:
            return
        await self.refresh_servers()

    async def refresh_servers(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            for spec in list(self.servers):
                await self.servers.pop(spec).stop()
            if not ctx.options.server:
                return
            if self.handler is None:
                try:
                    self.handler = self._make_handler()
                except (OSError, ValueError) as e:
                    log.error("cannot load or create the CA in %s: %s", ctx.options.state_dir, e)
                    return
            from gateway.modes import start_mode

            for spec in ctx.options.mode:
                try:
                    server = await start_mode(
                        spec,
                        self.handler,
                        listen_host=ctx.options.listen_host or None,
                        listen_port=ctx.options.listen_port,
                    )
                except OSError as e:
                    log.error("mode %s: cannot listen%s: %s", spec, _where(spec, ctx.options.listen_port),
                              e.strerror or e)
                    continue
                except ValueError as e:
                    log.error("mode %s: %s", spec, e)
                    continue
                self.servers[spec] = server
                addrs = ", ".join(_fmt(a) for a in server.addresses)
                log.info("%s listening at %s", _describe(spec), addrs)
            if not self.servers and self.handler is not None and self.handler._certs is not None:
                # Nothing listens: a CA created for this run would only be litter in a
                # state directory nobody uses (a second `gateway up` on a busy port).
                self.handler._certs.discard_created()
                self.handler = None
            elif self.handler is not None and self.handler._certs is not None:
                self.handler._certs.announce_created()

    def configure(self, updated: set[str]) -> None:
        if "upstream_proxy" in updated and ctx.options.upstream_proxy:
            from gateway.optmanager import OptionsError
            from gateway.proxy.server_connect import parse_upstream_proxy

            try:
                parse_upstream_proxy(ctx.options.upstream_proxy)
            except ValueError as e:
                raise OptionsError(f"upstream_proxy: {e}") from None
        if "mode" in updated:
            from gateway.optmanager import OptionsError
            from gateway.proxy.mode_specs import ProxyMode

            for spec in ctx.options.mode:
                try:
                    ProxyMode.parse(spec)
                except ValueError as e:
                    raise OptionsError(str(e)) from None
        if self.is_running and updated & {"mode", "listen_host", "listen_port", "server"}:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                log.warning("listeners not restarted: option changed outside the event loop")
                return
            loop.create_task(self.refresh_servers())

    async def done(self) -> None:
        self.is_running = False
        for spec in list(self.servers):
            await self.servers.pop(spec).stop()
        if self.handler is not None and self.handler._certs is not None:
            self.handler._certs.close()

    # -- proxyauth -----------------------------------------------------------------------------
    def _auth_applies(self, flow: Any) -> bool:
        if not ctx.options.proxyauth:
            return False
        mode = getattr(flow.client_conn, "proxy_mode", None)
        return getattr(mode, "type_name", None) in ("regular", "upstream")

    def _check(self, flow: Any) -> bool:
        if flow.client_conn.id in self._authenticated:
            return True
        header = flow.request.headers.get("Proxy-Authorization", "")
        if _valid(ctx.options.proxyauth, header):
            self._authenticated.add(flow.client_conn.id)
            return True
        return False

    def _deny(self, flow: Any) -> None:
        from gateway.http import Response

        flow.response = Response.make(
            407,
            b"Proxy Authentication Required\n",
            {"Proxy-Authenticate": f'Basic realm="{REALM}"', "Content-Type": "text/plain", "Connection": "close"},
        )

    def http_connect(self, flow: Any) -> None:
        if self._auth_applies(flow) and not self._check(flow):
            self._deny(flow)
        elif self._auth_applies(flow):
            flow.request.headers.pop("Proxy-Authorization", None)

    def requestheaders(self, flow: Any) -> None:
        if not self._auth_applies(flow) or flow.response is not None:
            return
        if not self._check(flow):
            self._deny(flow)
        else:
            flow.request.headers.pop("Proxy-Authorization", None)

    def client_disconnected(self, client: Any) -> None:
        self._authenticated.discard(client.id)


def _valid(proxyauth: str, header: str) -> bool:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    if not sep:
        return False
    if proxyauth == "any":
        return True
    want_user, _, want_pass = proxyauth.partition(":")
    return hmac.compare_digest(user.encode(), want_user.encode()) & hmac.compare_digest(
        password.encode(), want_pass.encode()
    )


def _describe(spec: str) -> str:
    try:
        from gateway.proxy.mode_specs import ProxyMode

        return ProxyMode.parse(spec).description
    except ValueError:
        return spec


def _fmt(a: Any) -> str:
    host, port = a[0], a[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _where(spec: str, listen_port: int | None) -> str:
    """' on UDP port 51820' for a busy-port error: a second `gateway up` names the port it
    wanted even when the spec has none (the mode's default or --listen-port)."""
    from gateway.proxy.mode_specs import ProxyMode

    try:
        mode = ProxyMode.parse(spec)
        port = mode.listen_port(listen_port or None)
        transport = mode.transport_protocol
    except ValueError:
        return ""
    if port is None:
        return ""
    kind = {"tcp": "TCP", "udp": "UDP"}.get(transport, "TCP/UDP")
    return f" on {kind} port {port}"
