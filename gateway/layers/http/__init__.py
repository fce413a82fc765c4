"""The HTTP layer: HTTP/1.1, HTTP/2 and WebSocket on one client connection.

``handle_http`` is the entry point the connection handler calls once it knows the
client speaks HTTP (plain, or after TLS with the negotiated ALPN).
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.layers.context import LayerContext

log = logging.getLogger("gateway.http")


async def handle_http(ctx: LayerContext, reader: Any, writer: Any, *, alpn: bytes | None = None) -> None:
    """Serve one client connection until it closes; never raises for bad peers."""
    from gateway.layers.http.upstream import ServerPool

    pool = ServerPool(ctx)
    try:
        if alpn == b"h2":
            from gateway.layers.http.http2 import serve_http2

            await serve_http2(ctx, reader, writer, pool)
        else:
            from gateway.layers.http.http1 import serve_http1

            await serve_http1(ctx, reader, writer, pool)
    except (ConnectionError, OSError) as e:
        log.debug("client connection ended: %s", e)
    except Exception:  # noqa: BLE001 - one broken connection must not take the process down
        log.exception("HTTP layer failed on a client connection")
    finally:
        await pool.close()
        try:
            writer.close()
        except Exception:  # noqa: BLE001
            pass


__all__ = ["handle_http"]
