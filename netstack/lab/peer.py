"""The kernel's side of the lab: plain sockets, run inside the namespace.

``ip netns exec NS python3 -m netstack.lab.peer COMMAND ARGS...`` talks to netstack through
the TUN device with Linux's own TCP/UDP and prints one JSON object with what happened, so
the test (in another process, holding the netstack side) can compare digests.  Every
socket operation has a timeout; nothing here loops without bound.
"""

from __future__ import annotations

import hashlib
import json
import random
import resource
import selectors
import socket
import struct
import sys
import time
from collections.abc import Iterator

CHUNK = 1 << 20


def pattern(nbytes: int, seed: int) -> Iterator[bytes]:
    """Deterministic pseudo-random bytes, generated in chunks (both sides can make them)."""
    rng = random.Random(seed)
    left = nbytes
    while left > 0:
        n = min(CHUNK, left)
        yield rng.randbytes(n)
        left -= n


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    s = socket.socket(_family(host), socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def _read_all(s: socket.socket, h: hashlib._Hash | None = None) -> tuple[int, bytes]:
    """Read until EOF; returns (byte count, the first 4 KiB)."""
    n = 0
    head = b""
    while True:
        data = s.recv(CHUNK)
        if not data:
            return n, head
        if h is not None:
            h.update(data)
        if len(head) < 4096:
            head += data[: 4096 - len(head)]
        n += len(data)


def tcp_send(host: str, port: str, nbytes: str, seed: str = "1", timeout: str = "120") -> dict:
    """Send ``nbytes`` then half-close; the netstack side answers with its count and digest."""
    s = _connect(host, int(port), float(timeout))
    h = hashlib.sha256()
    t0 = time.monotonic()
    for chunk in pattern(int(nbytes), int(seed)):
        h.update(chunk)
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    _n, reply = _read_all(s)
    elapsed = time.monotonic() - t0
    s.close()
    return {
        "sent": int(nbytes),
        "sha256": h.hexdigest(),
        "reply": reply.decode(errors="replace"),
        "elapsed": elapsed,
    }


def tcp_recv(host: str, port: str, nbytes: str, seed: str = "1", timeout: str = "120") -> dict:
    """Ask for ``nbytes`` of the pattern and read them to EOF."""
    s = _connect(host, int(port), float(timeout))
    t0 = time.monotonic()
    s.sendall(f"SEND {int(nbytes)} {int(seed)}\n".encode())
    h = hashlib.sha256()
    n, _ = _read_all(s, h)
    elapsed = time.monotonic() - t0
    s.close()
    return {"received": n, "sha256": h.hexdigest(), "elapsed": elapsed}


def tcp_halfclose(host: str, port: str, timeout: str = "30") -> dict:
    """The netstack side closes its direction first; we keep sending after its FIN."""
    s = _connect(host, int(port), float(timeout))
    greeting = b""
    while not greeting.endswith(b"\n"):
        data = s.recv(100)
        if not data:
            break
        greeting += data
    eof = s.recv(100) == b""
    s.sendall(b"after your fin\n")
    s.shutdown(socket.SHUT_WR)
    _n, reply = _read_all(s)
    s.close()
    return {"greeting": greeting.decode(), "eof_first": eof, "reply": reply.decode()}


def tcp_parallel(host: str, port: str, count: str, size: str, timeout: str = "60") -> dict:
    """``count`` connections at once, each sending ``size`` distinct bytes to an echo
    service and checking it gets exactly them back."""
    count_i, size_i = int(count), int(size)
    sel = selectors.DefaultSelector()
    deadline = time.monotonic() + float(timeout)
    state: dict[socket.socket, dict] = {}
    for i in range(count_i):
        s = socket.socket(_family(host), socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, int(port)))
        payload = struct.pack("!I", i) * (size_i // 4)
        state[s] = {"i": i, "out": memoryview(payload), "want": payload, "got": bytearray(), "shut": False}
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    ok = 0
    errors: list[str] = []
    while state and time.monotonic() < deadline:
        for key, mask in sel.select(timeout=1.0):
            s = key.fileobj  # type: ignore[assignment]
            st = state[s]
            try:
                if mask & selectors.EVENT_WRITE and st["out"]:
                    n = s.send(st["out"][:65536])
                    st["out"] = st["out"][n:]
                if not st["out"] and not st["shut"]:
                    s.shutdown(socket.SHUT_WR)
                    st["shut"] = True
                    sel.modify(s, selectors.EVENT_READ)
                if mask & selectors.EVENT_READ:
                    data = s.recv(65536)
                    if data:
                        st["got"] += data
                    else:
                        if bytes(st["got"]) == st["want"]:
                            ok += 1
                        else:
                            errors.append(f"conn {st['i']}: got {len(st['got'])} bytes, mismatch")
                        sel.unregister(s)
                        s.close()
                        del state[s]
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                errors.append(f"conn {st['i']}: {e!r}")
                sel.unregister(s)
                s.close()
                del state[s]
    for s in state:
        errors.append(f"conn {state[s]['i']}: unfinished")
        s.close()
    return {"ok": ok, "errors": errors[:20], "error_count": len(errors)}


def tcp_reset_by_us(host: str, port: str, timeout: str = "10") -> dict:
    """Send a little, then close with SO_LINGER 0: the kernel sends RST."""
    s = _connect(host, int(port), float(timeout))
    s.sendall(b"hello before reset\n")
    time.sleep(0.2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    return {"done": True}


def tcp_expect_reset(host: str, port: str, timeout: str = "10") -> dict:
    """Connect and read until the netstack side resets the connection."""
    s = _connect(host, int(port), float(timeout))
    s.sendall(b"please reset me\n")
    try:
        _n, data = _read_all(s)
        return {"result": "eof", "data": data.decode(errors="replace")}
    except ConnectionResetError:
        return {"result": "reset"}
    except TimeoutError:
        return {"result": "timeout"}
    finally:
        s.close()


def tcp_connect(host: str, port: str, timeout: str = "3") -> dict:
    """Just connect: reports "connected", "refused" or "timeout"."""
    try:
        s = _connect(host, int(port), float(timeout))
    except ConnectionRefusedError:
        return {"result": "refused"}
    except TimeoutError:
        return {"result": "timeout"}
    s.close()
    return {"result": "connected"}


def udp_request(host: str, port: str, size: str = "100", timeout: str = "5") -> dict:
    """Send a datagram of ``size`` bytes, wait for one answer on a connected socket."""
    s = socket.socket(_family(host), socket.SOCK_DGRAM)
    s.settimeout(float(timeout))
    s.connect((host, int(port)))
    s.send(b"q" * int(size))
    try:
        data = s.recv(65535)
    except ConnectionRefusedError:
        return {"result": "refused"}
    except TimeoutError:
        return {"result": "timeout"}
    finally:
        s.close()
    return {"result": "answer", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def hold(host: str, port: str, count: str, batch: str = "200", timeout: str = "120") -> dict:
    """Open ``count`` idle connections (in batches, to stay under the SYN backlog limits),
    report, then keep them until stdin closes."""
    need = int(count) + 100
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, soft), max(need, hard)))
    socks: list[socket.socket] = []
    deadline = time.monotonic() + float(timeout)
    total, step = int(count), int(batch)
    while len(socks) < total and time.monotonic() < deadline:
        pending = []
        for _ in range(min(step, total - len(socks))):
            s = socket.socket(_family(host), socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((host, int(port)))
            pending.append(s)
        sel = selectors.DefaultSelector()
        for s in pending:
            sel.register(s, selectors.EVENT_WRITE)
        left = set(pending)
        while left and time.monotonic() < deadline:
            for key, _mask in sel.select(timeout=1.0):
                s = key.fileobj  # type: ignore[assignment]
                sel.unregister(s)
                left.discard(s)
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    socks.append(s)
                else:
                    s.close()
        sel.close()
        for s in left:
            s.close()
    print(json.dumps({"open": len(socks)}), flush=True)
    sys.stdin.read()
    for s in socks:
        s.close()
    return {"closed": len(socks)}


def serve(host: str, port: str, count: str, timeout: str = "300") -> dict:
    """A kernel-socket server with the lab services' sink/source protocol (the baseline for
    kernel <-> kernel): a connection starting with "SEND n seed\\n" gets n pattern bytes,
    any other is read to EOF and answered with "<count> <sha256>".  Serves ``count``
    connections one after another, printing "ready" once listening."""
    ls = socket.socket(_family(host), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(16)
    ls.settimeout(float(timeout))
    print(json.dumps({"ready": True}), flush=True)
    for _ in range(int(count)):
        conn, _addr = ls.accept()
        conn.settimeout(float(timeout))
        first = conn.recv(CHUNK)
        if first.startswith(b"SEND "):
            _cmd, n, seed = first.split(b"\n")[0].split()
            for chunk in pattern(int(n), int(seed)):
                conn.sendall(chunk)
        else:
            h = hashlib.sha256(first)
            n_i, _ = _read_all(conn, h)
            conn.sendall(f"{n_i + len(first)} {h.hexdigest()}\n".encode())
        conn.close()
    ls.close()
    return {"served": int(count)}


COMMANDS = {
    f.__name__: f
    for f in (
        tcp_send,
        tcp_recv,
        tcp_halfclose,
        tcp_parallel,
        tcp_reset_by_us,
        tcp_expect_reset,
        tcp_connect,
        udp_request,
        hold,
        serve,
    )
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(json.dumps({"error": f"usage: peer {{{','.join(COMMANDS)}}} ARGS..."}))
        return 2
    try:
        result = COMMANDS[argv[0]](*argv[1:])
    except Exception as e:  # noqa: BLE001 - reported to the test as data
        result = {"error": repr(e)}
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
