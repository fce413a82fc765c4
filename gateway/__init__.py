"""gateway: a packet-mode interception gateway.

The public modules mirror mitmproxy's (``gateway.http``, ``gateway.flow``, ...) so that
an addon written for mitmproxy ports by changing its import line.
"""

from gateway.version import VERSION as __version__

__all__ = ["__version__"]
