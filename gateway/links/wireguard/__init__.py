"""Our own WireGuard: UDP datagrams in, decrypted IP packets tagged with their peer out.

The protocol core (``device.Device`` and the modules it is made of) is sans-IO: bytes,
addresses and the current time go in, packets and datagrams to send come out, so every
timer of the protocol can be driven by tests without sleeping.  ``udp.WireGuardEndpoint``
is the asyncio edge that runs a ``Device`` over a real UDP socket, and ``config`` keeps
the server key, the peers and the client configurations in the state directory.

A link only moves packets (DESIGN.md, seam 2): nothing here knows about netstack or HTTP.

What ``gateway up`` does with it::

    store = StateStore(state_dir)                      # config.py
    state, created = store.load_or_create(ipv4_range=..., ipv6_range=..., first_peer="phone")
    text = render_client_config(state, state.get_peer("phone"), endpoint=..., dns=..., mtu=...,
                                keepalive=...)
    store.write_client_config("phone", text); print(text); print(render_qr(text))
    device = create_device(state, timers=TimerConfig(...))   # shortened timers for the lab
    endpoint = WireGuardEndpoint(device, on_packets, host="::", port=state.listen_port)
    endpoint.start()                                   # OSError(EADDRINUSE) if the port is busy
    # on_packets(batch): for peer, ip_packet in batch -> netstack, tagged with peer.link_info
    # netstack's output: endpoint.send_packet(ip_packet) (routed by destination) or
    #                    endpoint.send_packets(peer, packets)
    # peers added/removed meanwhile (gateway peers ...): sync_device(device, store.load())
"""

from typing import Any


async def start(mode: Any, handler: Any) -> Any:
    """The ``wireguard`` mode for ``gateway.modes.start_mode``: a running ``mode.WireGuardServer``."""
    from gateway.links.wireguard.mode import start as start_server

    return await start_server(mode, handler)
