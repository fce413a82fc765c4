"""netstack: a userspace IPv4/IPv6 TCP, UDP and ICMP stack.

A library of its own (it never imports ``gateway``): feed it IP packets and time, take
back packets to send and events (new TCP connections with their original destination,
data, close; UDP datagrams). ``netstack.aio`` turns it into asyncio streams.
"""
