"""What the netstack side of the lab serves, by destination port.

Because netstack answers for every address, one set of handlers serves the whole routed
range; the destination port picks the behaviour.  Each handler uses only the public
StreamReader/StreamWriter interface, as the gateway's layers do.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable

from netstack.lab.peer import pattern

SINK = 9000  # read to EOF, answer "<count> <sha256>"
SOURCE = 9001  # "SEND n seed" -> n pattern bytes, then close
ECHO = 9002  # echo until EOF, then close
HALF_CLOSE = 9003  # write a greeting + EOF first, then read what still comes
RESET = 9004  # read a line, then abort (RST)
REFUSE = 9005  # refused by on_tcp_request
DROP = 9006  # dropped by on_tcp_request
SLOW_ACCEPT = 9007  # accepted after an async decision, then echo
HOLD = 9008  # keep the connection idle until the peer closes
HTTP = 8080  # a minimal HTTP/1.1 server: GET /N answers N pattern bytes

UDP_BIG = 53  # answer every datagram with 3000 bytes
UDP_ECHO = 7
UDP_REFUSE = 9
UDP_BIG_SIZE = 3000


class Services:
    def __init__(self) -> None:
        self.results: list[dict] = []
        self.connections = 0
        self.send_udp: Callable[[tuple[str, int], tuple[str, int], bytes], None] | None = None
        """Set by the lab: the driver's ``send_udp(src, dst, data)``."""

    async def on_tcp_request(self, src: tuple[str, int], dst: tuple[str, int]) -> str:
        port = dst[1]
        if port == REFUSE:
            return "refuse"
        if port == DROP:
            return "drop"
        if port == SLOW_ACCEPT:
            await asyncio.sleep(0.05)  # e.g. the gateway connecting upstream first
        return "accept"

    def on_tcp_request_sync(self, src: tuple[str, int], dst: tuple[str, int]) -> str:
        port = dst[1]
        return "refuse" if port == REFUSE else "drop" if port == DROP else "accept"

    async def on_tcp_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        port = writer.get_extra_info("sockname")[1]
        handler = {
            SINK: self.sink,
            SOURCE: self.source,
            ECHO: self.echo,
            SLOW_ACCEPT: self.echo,
            HALF_CLOSE: self.half_close,
            RESET: self.reset,
            HOLD: self.hold,
            HTTP: self.http,
        }.get(port, self.echo)
        try:
            await handler(reader, writer)
        except (ConnectionError, TimeoutError) as e:
            self.results.append({"port": port, "error": type(e).__name__})
            writer.transport.abort()

    async def sink(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        h = hashlib.sha256()
        n = 0
        while data := await reader.read(1 << 20):
            h.update(data)
            n += len(data)
        writer.write(f"{n} {h.hexdigest()}\n".encode())
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        self.results.append({"port": SINK, "received": n})

    async def source(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _cmd, n, seed = (await reader.readline()).split()
        for chunk in pattern(int(n), int(seed)):
            for i in range(0, len(chunk), 65536):
                writer.write(chunk[i : i + 65536])
                await writer.drain()
        writer.close()
        await writer.wait_closed()
        self.results.append({"port": SOURCE, "sent": int(n)})

    async def echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def half_close(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello, I am done talking\n")
        writer.write_eof()
        data = await reader.read()
        self.results.append({"port": HALF_CLOSE, "read_after_eof": data.decode()})
        writer.close()
        await writer.wait_closed()

    async def reset(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.transport.abort()
        self.results.append({"port": RESET, "aborted": True})

    async def http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ", 2)[1].decode()
        size = int(path.strip("/") or 0)
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n".encode())
        for chunk in pattern(size, 7):
            writer.write(chunk)
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        self.results.append({"port": HTTP, "path": path})

    async def hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    def on_udp_datagram(self, src: tuple[str, int], dst: tuple[str, int], data: bytes) -> str | None:
        port = dst[1]
        if port == UDP_REFUSE:
            return "refuse"
        if self.send_udp is not None:
            self.send_udp(dst, src, self.udp_answer(dst, data))
        return None

    def udp_answer(self, dst: tuple[str, int], data: bytes) -> bytes:
        if dst[1] == UDP_BIG:
            return bytes(range(256)) * (UDP_BIG_SIZE // 256) + bytes(UDP_BIG_SIZE % 256)
        return data
