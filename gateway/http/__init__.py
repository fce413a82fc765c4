"""HTTP flows: ``Headers``, ``Request``, ``Response`` and ``HTTPFlow``, as mitmproxy names them.

Raw wire values (method, path, header bytes, body as received) are kept in a small
``data`` object; the public attributes are views that decode them (``request.path`` is a
str, ``request.data.path`` the bytes).  Bodies are stored as received in ``raw_content``
and transparently de/compressed through ``content`` according to Content-Encoding.
"""

from gateway.http.headers import Headers
from gateway.http.httpflow import HTTPFlow
from gateway.http.message import Message
from gateway.http.request import Request
from gateway.http.response import Response

__all__ = ["Headers", "Message", "Request", "Response", "HTTPFlow"]
