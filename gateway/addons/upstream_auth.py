"""``upstream_auth``: credentials for the upstream proxy (upstream mode) or the server
(reverse mode), as in mitmproxy.

Upstream mode: ``Proxy-Authorization`` on requests sent to the upstream proxy in
absolute form (plain HTTP) and on the CONNECT to it (``http_connect_upstream``).  Reverse
mode: ``Authorization`` on every request.
"""

from __future__ import annotations

import base64
from typing import Any, Optional

from gateway import ctx
from gateway.optmanager import OptionsError


def parse_upstream_auth(auth: str) -> bytes:
    pattern = auth.split(":", 1)
    if len(pattern) != 2 or not pattern[0]:
        raise OptionsError(f"Invalid upstream auth specification: {auth}")
    return b"Basic " + base64.b64encode(auth.encode())


def _mode_name(flow: Any) -> str:
    mode = getattr(flow.client_conn, "proxy_mode", None)
    return getattr(mode, "type_name", "") or ""


class UpstreamAuth:
    def __init__(self) -> None:
        self.auth: bytes | None = None

    def load(self, loader: Any) -> None:
        loader.add_option(
            "upstream_auth", Optional[str], None,  # noqa: UP045
            """
            Add HTTP Basic authentication to upstream proxy and reverse proxy
            requests. Format: username:password.
            """,
        )

    def configure(self, updated: set[str]) -> None:
        if "upstream_auth" in updated:
            value = ctx.options.upstream_auth
            self.auth = parse_upstream_auth(value) if value else None

    def http_connect_upstream(self, flow: Any) -> None:
        if self.auth:
            flow.request.headers["Proxy-Authorization"] = self.auth.decode()

    def requestheaders(self, flow: Any) -> None:
        if not self.auth:
            return
        mode = _mode_name(flow)
        if mode == "upstream" and flow.request.scheme == "http":
            flow.request.headers["Proxy-Authorization"] = self.auth.decode()
        elif mode == "reverse":
            flow.request.headers["Authorization"] = self.auth.decode()
