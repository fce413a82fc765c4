"""``--save FILE`` (``-w``): stream every finished flow to a flow file as it finishes.

``+FILE`` appends to an existing flow file instead of replacing it. Flows are written
when they are complete: an HTTP flow at its response (or error), a WebSocket flow when
the WebSocket ends, TCP/UDP flows when the connection ends, DNS flows at the response.
Flows still open when the gateway stops are written at shutdown, so an open WebSocket or
TCP connection is not lost, with an error that says they were cut off. Each flow is flushed at once, so ``gateway show`` can read
the file while the gateway runs, and a crash loses at most the flow being written.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from typing import IO, Any

from gateway import ctx, flowfilter
from gateway.io import FlowReadException, FlowWriter
from gateway.io.reader import complete_length
from gateway.optmanager import OptionsError

logger = logging.getLogger(__name__)

_REMEMBER = 4096

SHUTDOWN_MESSAGE = "gateway stopped before this flow finished"
"""The error written with flows still open at shutdown (the live flow is left unchanged)."""


class Save:
    def __init__(self) -> None:
        self.stream: FlowWriter | None = None
        self.fo: IO[bytes] | None = None
        self.path: str | None = None
        self.filter: flowfilter.TFilter | None = None
        self.active: dict[str, Any] = {}
        """Flows started but not finished, by id: written at shutdown if still open."""
        self.saved = 0
        self._recently_saved: OrderedDict[str, None] = OrderedDict()
        """Ids of the last flows written: a flow is written once, when it first finishes,
        even if a second "end" hook follows (an error hook and then an end hook)."""

    def load(self, loader: Any) -> None:
        if "save_stream_file" not in loader.master.options:
            loader.add_option(
                "save_stream_file", str | None, None,
                "Stream finished flows to this file (`+` in front appends).",
            )  # fmt: skip
        loader.add_option(
            "save_stream_filter", str | None, None,
            "Only save flows matching this filter expression (see `gateway show --help`).",
        )  # fmt: skip

    def configure(self, updated: set[str]) -> None:
        if "save_stream_filter" in updated:
            expr = ctx.options.save_stream_filter
            try:
                self.filter = flowfilter.parse(expr) if expr else None
            except ValueError as e:
                raise OptionsError(f"save_stream_filter: {e}") from None
        if "save_stream_file" in updated:
            self._close()
            spec = ctx.options.save_stream_file
            if spec:
                self._open(spec)

    def _open(self, spec: str) -> None:
        append = spec.startswith("+")
        path = os.path.abspath(os.path.expanduser(spec[1:] if append else spec))
        try:
            if append and os.path.exists(path) and os.path.getsize(path) > 0:
                fo = open(path, "r+b")
                try:
                    end = complete_length(fo)
                except FlowReadException as e:
                    fo.close()
                    raise OptionsError(f"cannot append to {path}: {e}") from None
                size = os.path.getsize(path)
                if end < size:
                    logger.warning(f"{path}: dropping {size - end} damaged bytes at the end before appending")
                    fo.truncate(end)
                fo.seek(end)
            else:
                fo = open(path, "wb")
        except OSError as e:
            raise OptionsError(f"cannot save flows to {path}: {e.strerror or e}") from None
        self.fo = fo
        self.path = path
        self.stream = FlowWriter(fo)
        fo.flush()

    def _close(self) -> None:
        if self.fo is not None:
            try:
                self.fo.close()
            except OSError as e:
                logger.error(f"closing {self.path}: {e}")
        self.fo = None
        self.stream = None

    def save_flow(self, flow: Any) -> None:
        """Write one flow now (also for addons that want to save a flow themselves)."""
        self.active.pop(flow.id, None)
        if self.stream is None or self.fo is None:
            return
        if flow.id in self._recently_saved:
            return
        if self.filter is not None and not self.filter(flow):
            return
        try:
            self.stream.add(flow)
            self.fo.flush()
            self.saved += 1
            self._recently_saved[flow.id] = None
            if len(self._recently_saved) > _REMEMBER:
                self._recently_saved.popitem(last=False)
        except (OSError, TypeError, ValueError) as e:
            # A full disk or unsaveable metadata must not take the connection down.
            logger.error(f"cannot save flow to {self.path}: {e}")

    def _started(self, flow: Any) -> None:
        if self.stream is not None:
            self.active[flow.id] = flow

    # HTTP
    def request(self, flow: Any) -> None:
        self._started(flow)

    def response(self, flow: Any) -> None:
        # A flow that became a WebSocket is written when the WebSocket ends.
        if flow.websocket is None:
            self.save_flow(flow)

    def error(self, flow: Any) -> None:
        if flow.websocket is None or flow.websocket.timestamp_end is not None:
            self.save_flow(flow)

    def websocket_end(self, flow: Any) -> None:
        self.save_flow(flow)

    # TCP, UDP, DNS
    def tcp_start(self, flow: Any) -> None:
        self._started(flow)

    def tcp_end(self, flow: Any) -> None:
        self.save_flow(flow)

    def tcp_error(self, flow: Any) -> None:
        self.save_flow(flow)

    def udp_start(self, flow: Any) -> None:
        self._started(flow)

    def udp_end(self, flow: Any) -> None:
        self.save_flow(flow)

    def udp_error(self, flow: Any) -> None:
        self.save_flow(flow)

    def dns_request(self, flow: Any) -> None:
        self._started(flow)

    def dns_response(self, flow: Any) -> None:
        self.save_flow(flow)

    def dns_error(self, flow: Any) -> None:
        self.save_flow(flow)

    def done(self) -> None:
        from gateway.flow import Error

        for flow in list(self.active.values()):
            # Written with an error saying it was cut off, so that a download interrupted by
            # the shutdown does not read as complete; the live flow keeps its own state.
            own = flow.error
            if own is None:
                flow.error = Error(SHUTDOWN_MESSAGE)
            try:
                self.save_flow(flow)
            finally:
                flow.error = own
        self.active.clear()
        self._close()
