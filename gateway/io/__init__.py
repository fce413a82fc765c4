"""Flow files: ``FlowWriter(fo).add(flow)`` and ``FlowReader(fo).stream()``.

The format is our own and documented in docs/flow-format.md: a versioned header, then one
checksummed record per flow holding its ``get_state()`` dict in a compact self-describing
encoding (no pickle: files come from anyone).
"""

from gateway.io.framing import FlowReadException
from gateway.io.reader import FlowReader, read_flows_from_paths
from gateway.io.writer import FilteredFlowWriter, FlowWriter

__all__ = ["FlowReader", "FlowWriter", "FilteredFlowWriter", "FlowReadException", "read_flows_from_paths"]
