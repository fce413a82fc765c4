"""``TunLab``: the Linux kernel and netstack joined by a TUN device in a throwaway namespace.

Inside a fresh network namespace a TUN device gets the kernel's address (10.77.0.2,
fd77::2) and routes for 10.78.0.0/16 and fd78::/64: everything the kernel sends there goes
through the TUN device to netstack in this process, which answers as those addresses.  The
namespace has only ``lo`` and the TUN device, so nothing can leave it.

With ``hop_mtu`` the kernel in that namespace becomes a router instead: the peer programs
run in a second namespace (10.79.0.2, fd79::2) joined to it by a veth pair whose MTU is
``hop_mtu``, while the peer still advertises a 1500-byte link's MSS (route ``advmss``), as a
client behind a small-MTU hop does.  Full-size packets from netstack then draw the
kernel router's real ICMP fragmentation-needed / packet-too-big.  The veth pair is created
inside the two namespaces and never exists in the root namespace.

Between the device and the driver each direction can pass through a ``LossyLink``; the
kernel-side programs run as ``ip netns exec NS python3 -m netstack.lab.peer ...`` in
their own process, so the kernel's TCP and netstack do not share a core's GIL.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from netstack.aio import NetstackDriver
from netstack.config import StackConfig
from netstack.lab.loopwatch import LoopWatch
from netstack.lab.namespace import ip, netns_exec, run_in_netns, unique_name
from netstack.lab.services import Services
from netstack.lab.shim import Impairment, LossyLink
from netstack.tun import TunLink, open_tun

KERNEL4 = "10.77.0.2"
NET4 = "10.78.0.0/16"
KERNEL6 = "fd77::2"
NET6 = "fd78::/64"
TARGET4 = "10.78.1.1"
TARGET6 = "fd78::1:1"
IFNAME = "nstun0"
HOP_ROUTER4 = "10.79.0.1"
HOP_CLIENT4 = "10.79.0.2"
HOP_ROUTER6 = "fd79::1"
HOP_CLIENT6 = "fd79::2"
REPO = str(Path(__file__).resolve().parents[2])


class TunLab:
    def __init__(
        self,
        *,
        mtu: int = 1500,
        config: StackConfig | None = None,
        to_stack: Impairment | None = None,
        to_kernel: Impairment | None = None,
        congctl: str | None = None,
        services: Services | None = None,
        async_decisions: bool = True,
        hop_mtu: int | None = None,
    ) -> None:
        self.mtu = mtu
        self.hop_mtu = hop_mtu
        self.config = config or StackConfig(mtu=mtu)
        self.to_stack = to_stack
        self.to_kernel = to_kernel
        self.congctl = congctl
        self.services = services or Services()
        self.async_decisions = async_decisions
        self.ns = unique_name("nstk")
        self.client_ns: str | None = None
        self._client_created = False
        self.watch: LoopWatch | None = None
        self.tun: TunLink | None = None
        self.driver: NetstackDriver | None = None
        self.shim_in: LossyLink | None = None
        self.shim_out: LossyLink | None = None
        self._created = False

    async def __aenter__(self) -> TunLab:
        try:
            self._setup()
        except BaseException:
            self._teardown()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._teardown()

    def _setup(self) -> None:
        ns = self.ns
        ip("netns", "add", ns)
        self._created = True
        ip("link", "set", "lo", "up", netns=ns)
        fd, name = run_in_netns(ns, open_tun, IFNAME)
        loop = asyncio.get_running_loop()
        self.watch = LoopWatch(loop)
        self.watch.start()
        self.tun = TunLink(fd, loop=loop)
        ip("link", "set", name, "mtu", str(self.mtu), "txqueuelen", "1000", "up", netns=ns)
        ip("addr", "add", f"{KERNEL4}/32", "dev", name, netns=ns)
        ip("-6", "addr", "add", f"{KERNEL6}/128", "dev", name, "nodad", netns=ns)
        extra = ["congctl", self.congctl] if self.congctl else []
        ip("route", "add", NET4, "dev", name, "src", KERNEL4, *extra, netns=ns)
        ip("-6", "route", "add", NET6, "dev", name, "src", KERNEL6, *extra, netns=ns)
        if self.hop_mtu is not None:
            self._setup_hop(self.hop_mtu, extra)

        services = self.services
        send = self.tun.send_packets
        if self.to_kernel is not None:
            self.shim_out = LossyLink(self.to_kernel, send, loop)
            send = self.shim_out.push
        self.driver = driver = NetstackDriver(
            self.config,
            send_packets=send,
            on_tcp_request=services.on_tcp_request if self.async_decisions else services.on_tcp_request_sync,
            on_tcp_connection=services.on_tcp_connection,
            on_udp_datagram=services.on_udp_datagram,
            loop=loop,
        )
        services.send_udp = driver.send_udp
        feed = driver.feed_many
        if self.to_stack is not None:
            self.shim_in = LossyLink(self.to_stack, feed, loop)
            feed = self.shim_in.push
        self.tun.start(feed)

    def _setup_hop(self, mtu: int, extra: list[str]) -> None:
        """The client namespace behind a ``mtu``-byte hop through the router namespace."""
        ns = self.ns
        cns = self.client_ns = unique_name("nstc")
        ip("netns", "add", cns)
        self._client_created = True
        ip("link", "set", "lo", "up", netns=cns)
        ip(
            "link",
            "add",
            "vr0",
            "mtu",
            str(mtu),
            "type",
            "veth",
            "peer",
            "name",
            "vc0",
            "netns",
            cns,
            netns=ns,
        )
        ip("link", "set", "vc0", "mtu", str(mtu), netns=cns)
        ip("addr", "add", f"{HOP_ROUTER4}/24", "dev", "vr0", netns=ns)
        ip("addr", "add", f"{HOP_CLIENT4}/24", "dev", "vc0", netns=cns)
        v6 = mtu >= 1280  # below IPv6's minimum MTU the kernel disables IPv6 on the link
        if v6:
            ip("-6", "addr", "add", f"{HOP_ROUTER6}/64", "dev", "vr0", "nodad", netns=ns)
            ip("-6", "addr", "add", f"{HOP_CLIENT6}/64", "dev", "vc0", "nodad", netns=cns)
        ip("link", "set", "vr0", "up", netns=ns)
        ip("link", "set", "vc0", "up", netns=cns)
        subprocess.run(
            netns_exec(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"),
            check=True,
            timeout=30,
        )
        # The client claims a 1500-byte link's MSS: only the router knows about the small hop.
        ip("route", "add", NET4, "via", HOP_ROUTER4, "advmss", "1460", *extra, netns=cns)
        if v6:
            ip("-6", "route", "add", NET6, "via", HOP_ROUTER6, "advmss", "1440", *extra, netns=cns)

    def _teardown(self) -> None:
        if self.watch is not None:
            self.watch.stop()
        if self.driver is not None:
            self.driver.close()
        if self.tun is not None:
            self.tun.close()
        if self._client_created and self.client_ns is not None:
            ip("netns", "del", self.client_ns, check=False)
            self._client_created = False
        if self._created:
            ip("netns", "del", self.ns, check=False)
            self._created = False

    def describe(self) -> dict[str, Any]:
        """What the lab saw, for a failing test's report."""
        d: dict[str, Any] = {"ns": self.ns, "client_ns": self.client_ns}
        if self.tun is not None:
            d["tun"] = {
                "rx": self.tun.rx_packets,
                "tx": self.tun.tx_packets,
                "tx_dropped": self.tun.tx_dropped,
                "fd": self.tun.fd,
            }
        if self.driver is not None:
            st = self.driver.stack
            d["stack"] = {
                "connections": st.tcp_connection_count,
                "pending": st.tcp_pending_count,
                "half_open": st._syn_received,
                "counters": dict(st.counters),
            }
        if self.watch is not None:
            d["loop"] = self.watch.describe()
        for name in ("shim_in", "shim_out"):
            shim = getattr(self, name)
            if shim is not None:
                d[name] = {"passed": shim.passed, "dropped": shim.dropped, "in_flight": shim.in_flight}
        return d

    def peer_argv(self, *args: str) -> list[str]:
        return netns_exec(self.client_ns or self.ns, sys.executable, "-m", "netstack.lab.peer", *args)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
        return env

    async def peer(self, *args: str, timeout: float = 120.0) -> dict[str, Any]:
        """Run one kernel-side peer command in the namespace and return its JSON report."""
        proc = await asyncio.create_subprocess_exec(
            *self.peer_argv(*args),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env(),
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise TimeoutError(
                f"peer {' '.join(args)} did not finish in {timeout} s; lab: {self.describe()}"
            ) from None
        lines = out.decode().strip().splitlines()
        if not lines:
            raise RuntimeError(f"peer {args} printed nothing; stderr: {err.decode()[-2000:]}")
        return json.loads(lines[-1])

    async def run(self, *cmd: str, timeout: float = 60.0) -> tuple[int, str]:
        """Run a program (ping, curl) inside the namespace; returns (exit code, output)."""
        proc = await asyncio.create_subprocess_exec(
            *netns_exec(self.client_ns or self.ns, *cmd),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        return proc.returncode or 0, out.decode()
