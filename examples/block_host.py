"""Block hosts: answer 403 for them without contacting the server.

    gateway up --mode regular -s examples/block_host.py --set block_host=ads.example.com

An addon class with its own option.  A blocked host matches itself and its subdomains.
Setting ``flow.response`` in the ``request`` hook answers the client directly.
"""

import logging
from collections.abc import Sequence

from gateway import ctx, http

logger = logging.getLogger(__name__)


class BlockHost:
    def load(self, loader):
        loader.add_option(
            name="block_host",
            typespec=Sequence[str],
            default=[],
            help="Hosts to answer with 403 Forbidden (subdomains included).",
        )

    def configure(self, updated):
        if "block_host" in updated:
            self.blocked = [h.lower().strip(".") for h in ctx.options.block_host]

    def is_blocked(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == b or host.endswith("." + b) for b in getattr(self, "blocked", []))

    def request(self, flow: http.HTTPFlow) -> None:
        if self.is_blocked(flow.request.pretty_host):
            logger.info(f"blocked {flow.request.pretty_url}")
            flow.response = http.Response.make(
                403, b"Blocked by the gateway.\n", {"Content-Type": "text/plain"}
            )


addons = [BlockHost()]
