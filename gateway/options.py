"""The core options: those the CLI has flags for and that several parts read.

Options that belong to one addon (``block_list``, ``map_remote``, ``anticache``, the
WireGuard tunnel ranges, ...) are declared by that addon in its ``load(loader)``, as in
mitmproxy; they can still be set with ``--set`` and in the config file because unknown
names wait until an addon declares them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from gateway.optmanager import OptManager

LOG_VERBOSITY = ["error", "warn", "info", "alert", "debug"]

DEFAULT_STATE_DIR = "~/.gateway"
CONFIG_FILE = "config.toml"


class Options(OptManager):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.add_option(
            "mode", Sequence[str], ["wireguard"],
            "Modes to run, each `mode[:data][@[host:]port]`, e.g. `regular`, `socks5@1080`, "
            "`reverse:https://example.com@8443`, `upstream:http://proxy:3128`, `transparent`, "
            "`wireguard`.  Give several to run them side by side.",
        )
        self.add_option(
            "listen_host", str, "",
            "Address to listen on.  Empty: each mode's default (loopback for proxy modes, "
            "every address for wireguard).",
        )
        self.add_option(
            "listen_port", Optional[int], None,  # noqa: UP045
            "Port to listen on.  Empty: each mode's default (8080 regular, 1080 socks5, 51820 wireguard, ...).",
        )
        self.add_option(
            "server", bool, True,
            "Start the listeners.  Off: run addons only (e.g. to replay flows).",
        )
        self.add_option(
            "state_dir", str, DEFAULT_STATE_DIR,
            "Directory for the CA, WireGuard keys and peers, and config.toml.",
        )
        self.add_option(
            "ssl_insecure", bool, False,
            "Do not verify upstream server certificates.",
        )
        self.add_option(
            "upstream_cert", bool, True,
            "Connect to the server before answering the client's TLS handshake, to copy the "
            "server certificate's names and its ALPN choice.",
        )
        self.add_option(
            "ignore_hosts", Sequence[str], [],
            "Regexes on host:port or SNI whose connections pass through untouched (no TLS "
            "interception).  Cannot be combined with allow_hosts.",
        )
        self.add_option(
            "allow_hosts", Sequence[str], [],
            "Regexes on host:port or SNI: only these are intercepted, all others pass through.",
        )
        self.add_option(
            "tcp_hosts", Sequence[str], [],
            "Regexes on host:port: treat these connections as raw TCP, without protocol detection.",
        )
        self.add_option(
            "udp_hosts", Sequence[str], [],
            "Regexes on host:port: treat these UDP flows as raw UDP, without protocol detection.",
        )
        self.add_option(
            "proxyauth", Optional[str], None,  # noqa: UP045
            "Require clients of regular and socks5 modes to authenticate: `user:pass`, or `any` "
            "to accept any credentials.",
        )
        self.add_option(
            "upstream_auth", Optional[str], None,  # noqa: UP045
            "Credentials `user:pass` sent to the upstream proxy (upstream mode and `upstream_proxy`).",
        )
        self.add_option(
            "stream_large_bodies", Optional[str], "4m",  # noqa: UP045
            "Stream bodies larger than this (e.g. `1m`, `512k`) instead of buffering them; "
            "streamed bodies are not available to addons. The default keeps a phone's large "
            "downloads from growing the gateway's memory; unset it (`--set stream_large_bodies=`) "
            "to buffer every body.",
        )
        self.add_option(
            "body_size_limit", Optional[str], None,  # noqa: UP045
            "Refuse bodies larger than this (e.g. `10m`).",
        )
        self.add_option("http2", bool, True, "Speak HTTP/2 when both sides offer it.")
        self.add_option("websocket", bool, True, "Intercept WebSocket messages.")
        self.add_option("rawtcp", bool, True, "Record TCP connections that are not HTTP as TCP flows.")
        self.add_option(
            "dns_server", Sequence[str], [],
            "Upstream DNS resolvers (`ip` or `ip:port`).  Empty: the system's resolvers.",
        )
        self.add_option(
            "keep_host_header", bool, False,
            "Reverse mode: keep the client's Host header instead of rewriting it to the target's.",
        )
        self.add_option(
            "showhost", bool, False,
            "Show the Host header instead of the connection address in URLs.",
        )
        self.add_option(
            "flow_detail", int, 1,
            "Live output detail: 0 nothing, 1 one line per flow, 2 with headers, 3 with "
            "truncated bodies and messages, 4 with full bodies.",
        )
        self.add_option(
            "termlog_verbosity", str, "info",
            "Log level shown on the terminal.",
            choices=LOG_VERBOSITY,
        )
        self.add_option(
            "save_stream_file", Optional[str], None,  # noqa: UP045
            "Stream finished flows to this file (`+` in front appends).",
        )
        self.add_option(
            "scripts", Sequence[str], [],
            "Python scripts to load as addons: module-level hook functions or `addons = [...]`.",
        )
        self.add_option(
            "keepserving", bool, True,
            "Keep running after a client or server replay has finished.",
        )
        # -- WireGuard mode (gateway/links/wireguard/mode.py) ---------------------------------
        self.add_option(
            "wireguard_endpoint", Optional[str], None,  # noqa: UP045
            "HOST[:PORT] phones reach the gateway at, written into client configs (an IPv6 address "
            "in brackets).  Empty: the one saved in the state, else the address of the default route.",
        )
        self.add_option(
            "wireguard_ipv4_range", Optional[str], None,  # noqa: UP045
            "Tunnel IPv4 range for new state (default 10.0.0.0/24); the gateway takes its first host.",
        )
        self.add_option(
            "wireguard_ipv6_range", Optional[str], None,  # noqa: UP045
            "Tunnel IPv6 range for new state (default: a random ULA /64).",
        )
        self.add_option(
            "wireguard_dns", Sequence[str], [],
            "DNS servers written into client configs.  Empty: the gateway's own tunnel addresses, "
            "where its in-tunnel resolver answers.",
        )
        self.add_option("wireguard_mtu", int, 1420, "Tunnel MTU (client configs and the inner stack).")
        self.add_option(
            "wireguard_keepalive", int, 25,
            "PersistentKeepalive seconds written into client configs (0: off).",
        )
        self.add_option(
            "wireguard_rekey_after_time", float, 0.0,
            "Seconds before a session is renewed (0: the protocol's 120); shortened in tests.",
        )
        self.add_option(
            "wireguard_rekey_after_messages", int, 0,
            "Messages before a session is renewed (0: the protocol's 2^60); shortened in tests.",
        )
        self.update(**kwargs)
