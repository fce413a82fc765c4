"""Record handshake and transport vectors from Debian's wireguard-go (run by hand, as root).

    python3 tests/gateway/links/wireguard/vectors/generate_with_wireguard_go.py

Everything happens in one throw-away network namespace (loopback only): wireguard-go runs
there as the "phone" with fixed keys and a preshared key, and this script plays the
server on a UDP socket opened inside the namespace.

* Scenario A, wireguard-go initiates: its initiation (random ephemeral, chosen by
  wireguard-go) is recorded; we answer with a fixed ephemeral and index; wireguard-go then
  sends the UDP datagram that triggered the handshake, encrypted - recorded.  We send a UDP
  datagram back, encrypted with counter 0, and record that wireguard-go delivered it.
* Scenario B, we initiate with a fixed ephemeral, index and timestamp; wireguard-go's
  response is recorded; we send an ICMP echo request; the namespace's kernel answers and
  wireguard-go encrypts the echo reply - recorded.

The test (test_wireguard_vectors.py) recomputes everything from the fixed secrets and
the recorded wireguard-go messages: what wireguard-go produced must decrypt to the
expected packets, and what we produce must be byte-identical to what wireguard-go took.
"""

from __future__ import annotations

import ctypes
import datetime
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[5]))

from scapy.layers.inet import ICMP, IP, UDP  # noqa: E402
from scapy.packet import Raw  # noqa: E402

from gateway.links.wireguard import crypto, keys  # noqa: E402
from gateway.links.wireguard.cookie import CookieGenerator  # noqa: E402
from gateway.links.wireguard.handshake import Handshake, StaticIdentity, begin_initiation_read  # noqa: E402
from gateway.links.wireguard.messages import unpack_initiation, unpack_response  # noqa: E402

OUT = Path(__file__).with_name("wireguard_go.json")
CLONE_NEWNET = 0x40000000


def secret(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


PHONE_PRIVATE = keys.clamp(secret("gateway wireguard vector: phone"))
SERVER_PRIVATE = keys.clamp(secret("gateway wireguard vector: server"))
PSK = secret("gateway wireguard vector: psk")
A_RESPONSE_EPHEMERAL = keys.clamp(secret("gateway wireguard vector: A response ephemeral"))
A_RESPONSE_INDEX = 0x0A0A0A0A
B_INITIATION_EPHEMERAL = keys.clamp(secret("gateway wireguard vector: B initiation ephemeral"))
B_INITIATION_INDEX = 0x0B0B0B0B
B_TIMESTAMP_UNIX = 1_700_000_000.0
A_PAYLOAD_FROM_PHONE = b"vector payload from wireguard-go"
A_PAYLOAD_TO_PHONE = b"vector payload to wireguard-go"


def in_netns(name: str, fn):  # type: ignore[no-untyped-def]
    result: dict = {}

    def run() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001
            result["error"] = e
        finally:
            os.close(fd)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def receive(sock: socket.socket, kind: int, seconds: float = 10.0) -> tuple[bytes, tuple]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        data, addr = sock.recvfrom(65535)
        if data[0] == kind:
            return data, addr
    raise TimeoutError(f"no message of type {kind}")


def main() -> None:
    ns = f"wgvec{os.getpid()}"
    iface = f"wgv{os.getpid() % 100000}"
    wg_process = None
    conf = None
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        wg_process = subprocess.Popen(["ip", "netns", "exec", ns, "wireguard-go", "-f", iface],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if subprocess.run(["ip", "-n", ns, "link", "show", iface], capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        server = StaticIdentity(SERVER_PRIVATE)
        phone = StaticIdentity(PHONE_PRIVATE)
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write(f"[Interface]\nPrivateKey = {keys.to_base64(PHONE_PRIVATE)}\nListenPort = 51821\n\n"
                    f"[Peer]\nPublicKey = {keys.to_base64(server.public_key)}\n"
                    f"PresharedKey = {keys.to_base64(PSK)}\nAllowedIPs = 192.0.2.0/24\n"
                    f"Endpoint = 127.0.0.1:51820\n")
            conf = f.name
        sh("ip", "netns", "exec", ns, "wg", "setconf", iface, conf)
        sh("ip", "-n", ns, "addr", "add", "10.0.0.2/32", "dev", iface)
        sh("ip", "-n", ns, "link", "set", iface, "up")
        sh("ip", "-n", ns, "route", "add", "192.0.2.0/24", "dev", iface)

        def sockets() -> tuple[socket.socket, socket.socket]:
            server_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            server_sock.bind(("127.0.0.1", 51820))
            app = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            app.bind(("10.0.0.2", 5555))
            return server_sock, app

        server_sock, app = in_netns(ns, sockets)
        phone_addr = ("127.0.0.1", 51821)

        # Scenario A: wireguard-go initiates.
        app.sendto(A_PAYLOAD_FROM_PHONE, ("192.0.2.1", 9))
        a_initiation, addr = receive(server_sock, 1)
        assert addr == phone_addr, addr
        message = unpack_initiation(a_initiation)
        state, who = begin_initiation_read(server, message)
        assert who == phone.public_key
        a_side = Handshake(server, who, PSK)
        a_side.consume_initiation(state, message, now=0.0, min_interval=0.0)
        response, a_keys = a_side.create_response(A_RESPONSE_INDEX, A_RESPONSE_EPHEMERAL)
        a_response = bytes(CookieGenerator(who, 120.0).add_macs(response, 0.0))
        server_sock.sendto(a_response, phone_addr)
        a_transport_from_phone, _ = receive(server_sock, 4)
        to_phone = bytes(IP(src="192.0.2.1", dst="10.0.0.2", id=1, ttl=64)
                         / UDP(sport=9, dport=5555) / Raw(A_PAYLOAD_TO_PHONE))
        padded = to_phone + bytes(-len(to_phone) % 16)
        a_transport_to_phone = (bytes([4, 0, 0, 0]) + a_keys.remote_index.to_bytes(4, "little")
                                + bytes(8) + crypto.AEAD(a_keys.send_key, 0, padded, b""))
        server_sock.sendto(a_transport_to_phone, phone_addr)
        app.settimeout(5)
        delivered, source = app.recvfrom(65535)
        assert delivered == A_PAYLOAD_TO_PHONE and source == ("192.0.2.1", 9), (delivered, source)

        # Scenario B: we initiate with fixed ephemeral, index and timestamp.
        b_side = Handshake(server, phone.public_key, PSK)
        initiation = b_side.create_initiation(B_INITIATION_INDEX, B_INITIATION_EPHEMERAL,
                                              crypto.TAI64N(B_TIMESTAMP_UNIX))
        b_initiation = bytes(CookieGenerator(phone.public_key, 120.0).add_macs(initiation, 0.0))
        server_sock.sendto(b_initiation, phone_addr)
        b_response, _ = receive(server_sock, 2)
        b_keys = b_side.consume_response(unpack_response(b_response))
        echo = bytes(IP(src="192.0.2.1", dst="10.0.0.2", id=2, ttl=64)
                     / ICMP(type=8, id=0x4242, seq=7) / Raw(b"vector ping"))
        padded = echo + bytes(-len(echo) % 16)
        b_transport_to_phone = (bytes([4, 0, 0, 0]) + b_keys.remote_index.to_bytes(4, "little")
                                + bytes(8) + crypto.AEAD(b_keys.send_key, 0, padded, b""))
        server_sock.sendto(b_transport_to_phone, phone_addr)
        for _ in range(10):
            b_transport_from_phone, _ = receive(server_sock, 4)
            if int.from_bytes(b_transport_from_phone[4:8], "little") == B_INITIATION_INDEX \
                    and len(b_transport_from_phone) > 32:
                break
        else:
            raise TimeoutError("no echo reply under the new session")

        version = subprocess.run(["wireguard-go", "--version"], capture_output=True, text=True).stdout
        h = bytes.hex
        OUT.write_text(json.dumps({
            "provenance": (
                "Recorded by generate_with_wireguard_go.py with Debian's " + version.splitlines()[0]
                + " on " + datetime.date.today().isoformat()
                + "; wireguard-go messages are as it sent them, ours are the bytes it accepted."),
            "phone_private": h(PHONE_PRIVATE),
            "server_private": h(SERVER_PRIVATE),
            "preshared_key": h(PSK),
            "a": {
                "initiation_from_wireguard_go": h(a_initiation),
                "response_ephemeral_secret": h(A_RESPONSE_EPHEMERAL),
                "response_index": A_RESPONSE_INDEX,
                "response_we_sent": h(a_response),
                "transport_from_wireguard_go": h(a_transport_from_phone),
                "inner_payload_from_wireguard_go": h(A_PAYLOAD_FROM_PHONE),
                "inner_packet_to_wireguard_go": h(to_phone),
                "transport_we_sent": h(a_transport_to_phone),
                "wireguard_go_delivered": h(delivered),
            },
            "b": {
                "initiation_ephemeral_secret": h(B_INITIATION_EPHEMERAL),
                "initiation_index": B_INITIATION_INDEX,
                "timestamp_unix": B_TIMESTAMP_UNIX,
                "initiation_we_sent": h(b_initiation),
                "response_from_wireguard_go": h(b_response),
                "echo_request_we_sent": h(echo),
                "transport_we_sent": h(b_transport_to_phone),
                "transport_from_wireguard_go": h(b_transport_from_phone),
            },
        }, indent=2) + "\n")
        print(f"wrote {OUT}")
    finally:
        if wg_process is not None:
            wg_process.terminate()
            try:
                wg_process.wait(5)
            except subprocess.TimeoutExpired:
                wg_process.kill()
        if conf:
            os.unlink(conf)
        subprocess.run(["ip", "netns", "del", ns], check=False)


if __name__ == "__main__":
    main()
