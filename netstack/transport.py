"""``NetstackTransport``: one netstack TCP connection as an ``asyncio.Transport``.

Layers above use the ``asyncio.StreamReader``/``StreamWriter`` pair built on it exactly as
they use a kernel socket's.  Backpressure runs both ways:

* Writing: data goes into the connection's send buffer (``Stack.tcp_send``); what does
  not fit waits here, and above the high-water mark the protocol is paused, so
  ``writer.drain()`` blocks until the peer's ACKs make room (``SendSpaceAvailable``).
* Reading: received data is handed to the protocol only while reading is not paused, and
  ``Stack.tcp_consumed`` is called only for what the protocol took.  When the application
  stops reading, the ``StreamReader`` pauses us, data stays in the TCP receive buffer and
  the advertised window closes; the peer stops sending.

Closing follows kernel semantics: ``close()`` sends what is queued, then FIN, and reports
``connection_lost`` once the data is handed to the stack; the stack finishes the close
(FIN exchange, TIME_WAIT) on its own, like an orphaned kernel socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netstack.aio import NetstackDriver

log = logging.getLogger(__name__)

_EXCEPTIONS: dict[str, type[Exception] | None] = {
    "closed": None,
    "aborted": None,
    "reset": ConnectionResetError,
    "timeout": TimeoutError,
    "refused": ConnectionRefusedError,
}


class NetstackTransport(asyncio.Transport):
    def __init__(
        self,
        driver: NetstackDriver,
        conn_id: int,
        peername: tuple[str, int],
        sockname: tuple[str, int],
        extra: dict[str, Any] | None = None,
    ) -> None:
        # A copy: asyncio.Transport keeps the dict it is given, and the driver hands the
        # same link-wide dict to every connection.
        super().__init__(dict(extra) if extra else {})
        self._driver = driver
        self._stack = driver.stack
        self._conn_id = conn_id
        self._extra.update(peername=peername, sockname=sockname, socket=None, netstack_conn_id=conn_id)
        self._protocol: asyncio.BaseProtocol | None = None
        self._closing = False  # close() or abort() called
        self._lost = False  # connection_lost delivered
        self._gone = False  # the stack reported Closed
        self._eof_written = False
        self._eof_sent = False
        # receive side
        self._paused = False
        self._rx: deque[bytes] = deque()
        self._rx_eof = False
        self._deliver_scheduled = False
        self._pending_exc: BaseException | None = None
        # send side
        self._wbuf: deque[bytes] = deque()
        self._wsize = 0
        self._high = 64 * 1024
        self._low = 16 * 1024
        self._protocol_paused = False

    # ------------------------------------------------------------ asyncio.BaseTransport

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._discard_rx()
        if not self._wbuf:
            self._send_fin()
            self._driver._loop.call_soon(self._connection_lost, None)
        self._driver._kick()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[return-value]

    # ------------------------------------------------------------ asyncio.ReadTransport

    def is_reading(self) -> bool:
        return not self._paused and not self.is_closing()

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            if (self._rx or self._rx_eof or self._pending_exc is not None) and not self._deliver_scheduled:
                self._deliver_scheduled = True
                self._driver._loop.call_soon(self._deliver)

    # ------------------------------------------------------------ asyncio.WriteTransport

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high = high
        self._low = low
        self._maybe_pause_protocol()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def get_write_buffer_size(self) -> int:
        return self._wsize

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data or self._closing or self._lost or self._gone:
            return
        if not isinstance(data, bytes):
            data = bytes(data)
        if not self._wbuf:
            n = self._stack.tcp_send(self._conn_id, data)
            self._driver._kick()
            if n == len(data):
                return
            data = data[n:]
        self._wbuf.append(data)
        self._wsize += len(data)
        self._maybe_pause_protocol()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        if self._eof_written or self._closing:
            return
        self._eof_written = True
        if not self._wbuf:
            self._send_fin()
            self._driver._kick()

    def can_write_eof(self) -> bool:
        return True

    def abort(self) -> None:
        if self._lost:
            return
        self._closing = True
        self._wbuf.clear()
        self._wsize = 0
        self._discard_rx()
        if not self._gone:
            self._stack.tcp_abort(self._conn_id)
            self._driver._kick()
        self._driver._loop.call_soon(self._connection_lost, None)

    # ------------------------------------------------------------ from the driver

    def _connected(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol
        protocol.connection_made(self)

    def _data(self, data: bytes) -> None:
        if self._closing or self._lost:
            # Nobody will read it: keep the window open rather than stall the peer.
            self._stack.tcp_consumed(self._conn_id, len(data))
            return
        if self._paused or self._rx:
            self._rx.append(data)
            return
        self._stack.tcp_consumed(self._conn_id, len(data))
        try:
            self._protocol.data_received(data)  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 - a protocol bug must not break the driver
            log.exception("netstack: protocol.data_received failed")
            self.abort()

    def _eof(self) -> None:
        if self._closing or self._lost:
            return
        if self._paused or self._rx:
            self._rx_eof = True
            return
        self._deliver_eof()

    def _deliver_eof(self) -> None:
        self._rx_eof = False
        try:
            keep_open = self._protocol.eof_received()  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001
            log.exception("netstack: protocol.eof_received failed")
            self.abort()
            return
        if not keep_open:
            self.close()

    def _deliver(self) -> None:
        self._deliver_scheduled = False
        while self._rx and not self._paused and not self._lost:
            data = self._rx.popleft()
            self._stack.tcp_consumed(self._conn_id, len(data))
            self._driver._kick()
            try:
                self._protocol.data_received(data)  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001
                log.exception("netstack: protocol.data_received failed")
                self.abort()
                return
        if self._rx or self._paused or self._lost:
            return
        if self._rx_eof:
            self._deliver_eof()
        if self._gone and not self._closing:
            self._connection_lost(self._pending_exc)

    def _send_space(self) -> None:
        wbuf = self._wbuf
        stack = self._stack
        cid = self._conn_id
        while wbuf:
            data = wbuf[0]
            n = stack.tcp_send(cid, data)
            if n == 0:
                break
            self._wsize -= n
            if n < len(data):
                wbuf[0] = data[n:]
                break
            wbuf.popleft()
        if not wbuf and (self._eof_written or self._closing) and not self._eof_sent:
            self._send_fin()
            if self._closing:
                self._driver._loop.call_soon(self._connection_lost, None)
        self._maybe_resume_protocol()

    def _closed(self, reason: str) -> None:
        """The stack reported ``Closed(reason)``; the connection is gone."""
        self._gone = True
        self._wbuf.clear()
        self._wsize = 0
        if self._lost:
            return
        exc_type = _EXCEPTIONS.get(reason, ConnectionError)
        exc = exc_type(f"netstack: connection {reason}") if exc_type is not None else None
        if exc is None and (self._rx or self._rx_eof) and not self._closing:
            # A clean close with data the application has not read yet: hand it over
            # first, as a kernel socket would.
            self._pending_exc = None
            if not self._paused and not self._deliver_scheduled:
                self._deliver_scheduled = True
                self._driver._loop.call_soon(self._deliver)
            return
        self._rx.clear()
        self._connection_lost(exc)

    # ------------------------------------------------------------ internals

    def _discard_rx(self) -> None:
        """Unread data is thrown away on close; the stack must still count it as taken."""
        if self._rx:
            n = sum(len(d) for d in self._rx)
            self._rx.clear()
            if not self._gone:
                self._stack.tcp_consumed(self._conn_id, n)

    def _send_fin(self) -> None:
        if not self._eof_sent and not self._gone:
            self._eof_sent = True
            self._stack.tcp_close(self._conn_id)

    def _connection_lost(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._driver._forget_transport(self._conn_id, self)
        if self._protocol is None:
            return
        try:
            self._protocol.connection_lost(exc)
        except Exception:  # noqa: BLE001
            log.exception("netstack: protocol.connection_lost failed")

    def _maybe_pause_protocol(self) -> None:
        if self._wsize > self._high and not self._protocol_paused and self._protocol is not None:
            self._protocol_paused = True
            try:
                self._protocol.pause_writing()
            except Exception:  # noqa: BLE001
                log.exception("netstack: protocol.pause_writing failed")

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and self._wsize <= self._low and self._protocol is not None:
            self._protocol_paused = False
            try:
                self._protocol.resume_writing()
            except Exception:  # noqa: BLE001
                log.exception("netstack: protocol.resume_writing failed")
