"""The lab's small servers: WebSocket echo, UDP echo, DNS for lab.test, TCP bulk.

nginx serves HTTP; these cover the protocols nginx does not.  One asyncio process, started
by provision-servers.sh inside the servers namespace (or on the servers VM).
"""

from __future__ import annotations

import argparse
import asyncio

import dns.message
import dns.rcode
import dns.rrset
import websockets

ZONE = "lab.test."


def answer(wire: bytes, v4: str, v6: str) -> bytes:
    query = dns.message.from_wire(wire)
    reply = dns.message.make_response(query)
    for q in query.question:
        name = q.name.to_text().lower()
        if not name.endswith(ZONE):
            reply.set_rcode(dns.rcode.REFUSED)
            continue
        if q.rdtype == 1:
            reply.answer.append(dns.rrset.from_text(q.name, 60, "IN", "A", v4))
        elif q.rdtype == 28:
            reply.answer.append(dns.rrset.from_text(q.name, 60, "IN", "AAAA", v6))
    return reply.to_wire()


class Udp(asyncio.DatagramProtocol):
    def __init__(self, handler):
        self.handler = handler

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        try:
            out = self.handler(data)
        except Exception as e:  # a lab server answers what it can and keeps going
            print("udp error", e, flush=True)
            return
        if out is not None:
            self.transport.sendto(out, addr)


async def dns_tcp(reader, writer, v4, v6):
    try:
        while True:
            n = int.from_bytes(await reader.readexactly(2), "big")
            out = answer(await reader.readexactly(n), v4, v6)
            writer.write(len(out).to_bytes(2, "big") + out)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def bulk(reader, writer):
    """'GET n\\n' sends n bytes; 'PUT n\\n' reads n bytes and answers their count."""
    try:
        line = (await reader.readline()).split()
        verb, n = line[0], int(line[1])
        if verb == b"GET":
            chunk = bytes(range(256)) * 256
            while n > 0:
                writer.write(chunk[: min(n, len(chunk))])
                n -= len(chunk)
                await writer.drain()
        elif verb == b"PUT":
            got = 0
            while got < n:
                data = await reader.read(1 << 20)
                if not data:
                    break
                got += len(data)
            writer.write(b"%d\n" % got)
            await writer.drain()
    except (ConnectionError, IndexError, ValueError):
        pass
    finally:
        writer.close()


async def ws_echo(ws):
    async for msg in ws:
        await ws.send(msg)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--v4", required=True)
    p.add_argument("--v6", required=True)
    a = p.parse_args()
    loop = asyncio.get_running_loop()
    for host in (a.v4, a.v6):
        await loop.create_datagram_endpoint(lambda: Udp(lambda d: d), local_addr=(host, 9999))
        await loop.create_datagram_endpoint(lambda: Udp(lambda d: answer(d, a.v4, a.v6)), local_addr=(host, 53))
    hosts = [a.v4, a.v6]
    await asyncio.start_server(lambda r, w: dns_tcp(r, w, a.v4, a.v6), hosts, 53)
    await asyncio.start_server(bulk, hosts, 5001)
    await websockets.serve(ws_echo, hosts, 8765)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
