"""The TUN mode's options, as an addon (options belong to the addon that reads them).

Until this addon is in the default chain, load it as a script to set them::

    gateway up --mode tun -s gateway/links/tun/addon.py --set tun_lan=eth1

(``addons = [...]`` at module level is what the script loader looks for).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

DEFAULT_NAME = "gwtun%d"
DEFAULT_ADDRESSES = ("198.18.0.1/30", "fdc6:7475:6e::1/126")
DEFAULT_TABLE = 26472
DEFAULT_MTU = 1500


class TunOptions:
    def load(self, loader: Any) -> None:
        loader.add_option(
            "tun_lan", Sequence[str], [],
            "Interfaces of the LAN that this host routes: traffic forwarded from them is steered "
            "into the TUN device by policy routing (`iif IFACE lookup tun_table`), so LAN hosts "
            "whose default route points at this host are intercepted without proxy settings. "
            "The host's own traffic and other interfaces are untouched.",
        )
        loader.add_option(
            "tun_lan_dns", bool, True,
            "Also answer DNS that `tun_lan` hosts send to this host's own LAN addresses (their "
            "router is usually their resolver): port 53 on those addresses, answered by the "
            "gateway's resolver (`dns_server`, else /etc/resolv.conf) and recorded as DNS flows.",
        )
        loader.add_option("tun_mtu", int, DEFAULT_MTU, "MTU of the TUN device.")
        loader.add_option(
            "tun_addresses", Sequence[str], list(DEFAULT_ADDRESSES),
            "Addresses (with prefix length) of the TUN device on the kernel's side.",
        )
        loader.add_option(
            "tun_table", int, DEFAULT_TABLE,
            "Routing table (and policy rule priority) used to steer `tun_lan` traffic into the device.",
        )


addons = [TunOptions()]
