"""Our WireGuard Device against Debian's wireguard-go + wg, in network namespaces.

Topology (all made here, removed afterwards even on failure; no link to the root
namespace, no route out):

    phone ns (wireguard-go, wg, ping)  --veth--  gateway ns (a UDP socket on :51820)
    [phone2 ns ...                     --veth--]

The gateway namespace holds only a socket: it is opened inside that namespace (setns in a
short-lived thread), and this test process runs our Device on it with the asyncio edge
(udp.WireGuardEndpoint).  The phones are configured from the client configuration that
config.render_client_config produced, with Address/DNS/MTU stripped (wg rejects them)
and applied with ip, as LAB-NOTES says.  Behind the gateway there is no netstack yet: a
minimal harness answers ICMP echo requests itself.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from gateway.links.wireguard import keys
from gateway.links.wireguard.config import StateStore, create_device, render_client_config, sync_device
from gateway.links.wireguard.device import Device
from gateway.links.wireguard.peer import Peer
from gateway.links.wireguard.timers import TimerConfig
from gateway.links.wireguard.udp import WireGuardEndpoint, open_socket
from netstack.checksum import checksum, pseudo_header_sum

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(shutil.which("wireguard-go") is None or shutil.which("wg") is None,
                       reason="needs wireguard-go and wg"),
]

PORT = 51820
BEHIND_V4 = "203.0.113.7"  # an address "behind the gateway", answered by the harness
BEHIND_V6 = "2001:db8:77::7"
CLONE_NEWNET = 0x40000000


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30).stdout


def in_netns(name: str, fn):  # type: ignore[no-untyped-def]
    """Call fn in namespace ``name`` (in a thread of its own, so ours never moves)."""
    result: dict = {}

    def target() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            result["error"] = e
        finally:
            os.close(fd)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def strip_wg_quick_keys(config: str) -> str:
    return "".join(line + "\n" for line in config.splitlines()
                   if line.split("=", 1)[0].strip() not in ("Address", "DNS", "MTU"))


def echo_reply(packet: bytes) -> bytes | None:
    """The ICMP / ICMPv6 echo reply to an echo request, built by hand (no netstack yet)."""
    version = packet[0] >> 4
    if version == 4:
        ihl = (packet[0] & 15) * 4
        total = int.from_bytes(packet[2:4], "big")
        if packet[9] != 1 or packet[ihl] != 8:
            return None
        header = bytearray(packet[:ihl])
        header[8] = 64
        header[12:16], header[16:20] = packet[16:20], packet[12:16]
        header[10:12] = b"\0\0"
        header[10:12] = checksum(header).to_bytes(2, "big")
        icmp = bytearray(packet[ihl:total])
        icmp[0], icmp[2:4] = 0, b"\0\0"
        icmp[2:4] = checksum(icmp).to_bytes(2, "big")
        return bytes(header + icmp)
    if version == 6 and packet[6] == 58 and packet[40] == 128:
        length = int.from_bytes(packet[4:6], "big")
        source, destination = packet[8:24], packet[24:40]
        header = bytearray(packet[:40])
        header[7] = 64
        header[8:24], header[24:40] = destination, source
        icmp = bytearray(packet[40:40 + length])
        icmp[0], icmp[2:4] = 129, b"\0\0"
        icmp[2:4] = checksum(icmp, pseudo_header_sum(destination, source, 58, length)).to_bytes(2, "big")
        return bytes(header + icmp)
    return None


class Lab:
    def __init__(self, state_dir: Path) -> None:
        self.tag = f"{os.getpid() % 10000}{secrets.token_hex(2)}"
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen] = []
        self.links = 0
        self.store = StateStore(state_dir)
        self.gateway_ns = self.namespace("g")
        self.endpoint: WireGuardEndpoint | None = None
        self.device: Device | None = None
        self.echoes: list[tuple[str, str]] = []  # (peer name, inner source) of echo requests
        self.captured: list[tuple[bytes, tuple]] = []  # transport datagrams the gateway received

    def namespace(self, role: str) -> str:
        name = f"wgt{role}{self.tag}"
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def link(self, phone_ns: str, gateway_addr: str, phone_addr: str, prefix: int) -> None:
        self.links += 1
        a, b = f"vg{self.tag}{self.links}", f"vp{self.tag}{self.links}"
        run("ip", "link", "add", a, "netns", self.gateway_ns, "type", "veth", "peer", "name", b, "netns", phone_ns)
        for ns, dev, addr in ((self.gateway_ns, a, gateway_addr), (phone_ns, b, phone_addr)):
            extra = ["nodad"] if ":" in addr else []
            run("ip", "-n", ns, "addr", "add", f"{addr}/{prefix}", "dev", dev, *extra)
            run("ip", "-n", ns, "link", "set", dev, "up")

    def start_gateway(self, timers: TimerConfig | None = None) -> Device:
        state, _ = self.store.load_or_create(ipv4_range="10.0.0.0/24", ipv6_range="fd00:6761:7465::/64")
        self.device = create_device(state, timers=timers)
        device = self.device
        original = device.receive_datagram

        def recording(data: bytes, addr: tuple, now: float) -> None:
            if data[:1] == b"\x04" and len(data) > 32:
                self.captured.append((data, addr))
            original(data, addr, now)

        device.receive_datagram = recording  # type: ignore[method-assign]
        sock = in_netns(self.gateway_ns, lambda: open_socket("::", PORT))
        self.endpoint = WireGuardEndpoint(device, self.on_packets, sock=sock)
        self.endpoint.start()
        return device

    def on_packets(self, batch: list[tuple[Peer, bytes]]) -> None:
        for peer, packet in batch:
            reply = echo_reply(packet)
            if reply is None:
                continue
            source = socket.inet_ntop(socket.AF_INET if packet[0] >> 4 == 4 else socket.AF_INET6,
                                      packet[12:16] if packet[0] >> 4 == 4 else packet[8:24])
            self.echoes.append((peer.name, source))
            assert self.endpoint is not None
            self.endpoint.send_packets(peer, [reply])

    def phone(self, name: str, underlay: tuple[str, str, int], endpoint: str) -> str:
        """A namespace with wireguard-go configured from the rendered client config."""
        ns = self.namespace(f"p{len(self.namespaces)}")
        gateway_addr, phone_addr, prefix = underlay
        self.link(ns, gateway_addr, phone_addr, prefix)
        state = self.store.load()
        assert state is not None
        if not any(p.name == name for p in state.peers):
            state.add_peer(name)
            self.store.save(state)
        entry = state.get_peer(name)
        config = render_client_config(state, entry, endpoint=endpoint)
        self.store.write_client_config(name, config)
        iface = f"wg{self.tag}{len(self.namespaces)}"
        self.processes.append(subprocess.Popen(["ip", "netns", "exec", ns, "wireguard-go", "-f", iface],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _ in range(200):
            if subprocess.run(["ip", "-n", ns, "link", "show", iface], capture_output=True).returncode == 0:
                break
            time.sleep(0.02)
        conf = self.store.dir / f"{iface}.stripped.conf"
        conf.write_text(strip_wg_quick_keys(self.store.client_config_path(name).read_text()))
        run("ip", "netns", "exec", ns, "wg", "setconf", iface, str(conf))
        interface = {k.strip(): v.strip() for k, _, v in
                     (line.partition("=") for line in config.split("[Peer]")[0].splitlines() if "=" in line)}
        for address in interface["Address"].split(","):
            extra = ["nodad"] if ":" in address else []
            run("ip", "-n", ns, "addr", "add", address.strip(), "dev", iface, *extra)
        run("ip", "-n", ns, "link", "set", iface, "mtu", interface["MTU"], "up")
        run("ip", "-n", ns, "route", "add", "default", "dev", iface)
        run("ip", "-n", ns, "-6", "route", "add", "default", "dev", iface)
        if self.device is not None:
            sync_device(self.device, state)
        return ns

    async def ping(self, ns: str, target: str, count: int = 3, interval: str = "0.2") -> int:
        """Number of echo replies the phone received."""
        process = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", ns, "ping", "-n", "-c", str(count), "-i", interval, "-W", "2", target,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(process.communicate(), timeout=30 + count)
        for line in out.decode().splitlines():
            if "received" in line:
                return int(line.split(",")[1].split()[0])
        raise AssertionError(out.decode())

    def close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close()
        for process in self.processes:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


@pytest.fixture
def lab(tmp_path: Path):  # type: ignore[no-untyped-def]
    lab = Lab(tmp_path / "state")
    try:
        yield lab
    finally:
        lab.close()
    leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert lab.tag not in leftover


async def until(predicate, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_handshake_and_ping_v4_and_v6_through_the_tunnel(lab: Lab) -> None:
    device = lab.start_gateway()
    phone = lab.phone("alice", ("192.0.2.1", "192.0.2.2", 24), endpoint="192.0.2.1")
    assert await lab.ping(phone, BEHIND_V4, count=3) == 3
    assert await lab.ping(phone, BEHIND_V6, count=3) == 3
    peer = device.peer_named("alice")
    assert peer is not None and peer.keypairs.current is not None
    assert device.counters["handshake_responses_sent"] == 1
    state = lab.store.load()
    assert state is not None
    entry = state.get_peer("alice")
    assert {src for name, src in lab.echoes} == {entry.address4, entry.address6}
    assert {name for name, _ in lab.echoes} == {"alice"}
    # wg on the phone saw the handshake too
    shown = run("ip", "netns", "exec", phone, "wg", "show", f"wg{lab.tag}2", "latest-handshakes")
    assert int(shown.split()[-1]) > 0


async def test_replayed_datagram_and_strangers_handshake_change_nothing(lab: Lab) -> None:
    device = lab.start_gateway()
    phone = lab.phone("alice", ("192.0.2.1", "192.0.2.2", 24), endpoint="192.0.2.1")
    assert await lab.ping(phone, BEHIND_V4, count=2) == 2
    peer = device.peer_named("alice")
    assert peer is not None
    endpoint_before = peer.endpoint
    datagram, _ = next((d, a) for d, a in reversed(lab.captured) if len(d) > 32 + 16)
    echoes, replays = len(lab.echoes), device.counters["replay"]

    def send_from_phone_ns(data: bytes) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("192.0.2.2", 0))
        s.sendto(data, ("192.0.2.1", PORT))
        return s

    attacker = in_netns(phone, lambda: send_from_phone_ns(datagram))
    try:
        await until(lambda: device.counters["replay"] == replays + 1)
        await asyncio.sleep(0.2)
        assert len(lab.echoes) == echoes  # nothing delivered
        assert peer.endpoint == endpoint_before  # the replay came from elsewhere: no roaming
    finally:
        attacker.close()

    # A stranger with a valid MAC1 (it knows our public key) but a key we never added.
    stranger = Device(keys.generate_private_key())
    stranger_peer = stranger.add_peer(device.public_key, allowed_ips=["0.0.0.0/0"], endpoint=("192.0.2.1", PORT))
    stranger.initiate_handshake(stranger_peer, 0.0)
    [(initiation, _)] = stranger.datagrams_to_send()
    responses, unknown = device.counters["handshake_responses_sent"], device.counters["unknown_key"]
    attacker = in_netns(phone, lambda: send_from_phone_ns(initiation))
    try:
        await until(lambda: device.counters["unknown_key"] == unknown + 1)
        attacker.settimeout(0.5)
        with pytest.raises(TimeoutError):
            attacker.recvfrom(2048)  # dropped silently: no answer at all
        assert device.counters["handshake_responses_sent"] == responses
    finally:
        attacker.close()
    assert await lab.ping(phone, BEHIND_V4, count=2) == 2  # and the real phone is unaffected


async def test_rekeys_keep_pings_flowing(lab: Lab) -> None:
    # Shortened timers: the gateway becomes the initiator after 20 messages and then
    # rekeys every 2 s while it sends; wireguard-go's own timers are the standard ones.
    device = lab.start_gateway(TimerConfig(rekey_after_messages=20, rekey_after_time=2.0,
                                           reject_after_time=6.0, rekey_timeout=1.0))
    phone = lab.phone("alice", ("192.0.2.1", "192.0.2.2", 24), endpoint="192.0.2.1")
    assert await lab.ping(phone, BEHIND_V4, count=60, interval="0.2") == 60
    assert device.counters["handshakes_completed"] >= 3
    assert device.counters["handshake_initiations_sent"] >= 3


async def test_two_phones_at_once_are_told_apart(lab: Lab) -> None:
    lab.start_gateway()
    alice = lab.phone("alice", ("192.0.2.1", "192.0.2.2", 24), endpoint="192.0.2.1")
    bob = lab.phone("bob", ("198.51.100.1", "198.51.100.2", 24), endpoint="198.51.100.1")
    results = await asyncio.gather(lab.ping(alice, BEHIND_V4, count=5, interval="0.1"),
                                   lab.ping(bob, BEHIND_V4, count=5, interval="0.1"))
    assert results == [5, 5]
    state = lab.store.load()
    assert state is not None
    by_peer = Counter(lab.echoes)
    assert by_peer == {("alice", state.get_peer("alice").address4): 5, ("bob", state.get_peer("bob").address4): 5}


async def test_ipv6_outside_with_bracketed_endpoint(lab: Lab) -> None:
    device = lab.start_gateway()
    phone = lab.phone("alice", ("2001:db8:1::1", "2001:db8:1::2", 64), endpoint="2001:db8:1::1")
    config = lab.store.client_config_path("alice").read_text()
    assert f"Endpoint = [2001:db8:1::1]:{PORT}" in config
    assert await lab.ping(phone, BEHIND_V4, count=2) == 2
    assert await lab.ping(phone, BEHIND_V6, count=2) == 2
    peer = device.peer_named("alice")
    assert peer is not None and peer.endpoint is not None and peer.endpoint[0] == "2001:db8:1::2"
