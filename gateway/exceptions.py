"""The exceptions an addon may catch or raise, under mitmproxy's module name.

Each is defined beside the code that raises it; this module only gathers them so that
``from mitmproxy import exceptions`` ports to ``from gateway import exceptions``.
"""

from gateway.addonmanager import AddonHalt, AddonManagerError
from gateway.flow import ControlException
from gateway.flowfilter import FilterSyntaxError
from gateway.io.framing import FlowReadException
from gateway.optmanager import OptionsError

__all__ = [
    "AddonHalt",
    "AddonManagerError",
    "ControlException",
    "FilterSyntaxError",
    "FlowReadException",
    "OptionsError",
]
