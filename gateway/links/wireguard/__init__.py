"""Our own WireGuard: UDP datagrams in, decrypted IP packets tagged with their peer out.

The protocol core (``device.Device`` and the modules it is made of) is sans-IO: bytes,
addresses and the current time go in, packets and datagrams to send come out, so every
timer of the protocol can be driven by tests without sleeping.  ``udp.WireGuardEndpoint``
is the asyncio edge that runs a ``Device`` over a real UDP socket, and ``config`` keeps
the server key, the peers and the client configurations in the state directory.

A link only moves packets (DESIGN.md, seam 2): nothing here knows about netstack or HTTP.
"""
