"""The lab netstack is proven in: network namespaces with a TUN device, a lossy shim,
and a kernel-side peer.  Used by tests/e2e and scripts/bench-netstack; never by the stack.
"""
