"""Flows of every type for the flow-file tests: gateway.test.tflow plus a few variants."""

from __future__ import annotations

import pytest

from gateway import http
from gateway.test import tflow


@pytest.fixture(scope="session")
def cert():
    from cryptography.hazmat.primitives.serialization import Encoding

    from gateway.certs import Cert, create_ca

    _, ca = create_ca("flowfile test CA", "gateway tests")
    return Cert.from_pem(ca.public_bytes(Encoding.PEM))


def gzip_flow() -> http.HTTPFlow:
    """Compressed body, trailers, unicode in the URL and repeated headers."""
    f = tflow.tflow(resp=True)
    f.request.url = "https://example.com/caf%C3%A9/ünï?q=✓&q=2"
    f.response.headers["Content-Encoding"] = "gzip"
    f.response.content = b"<html><body>" + b"compressed " * 200 + b"</body></html>"
    f.response.trailers = http.Headers(x_checksum="abc")
    return f


def decorated_flow(cert) -> http.HTTPFlow:
    """Every flow-level attribute set: marked, comment, metadata, replay, backup, error, certs."""
    f = tflow.tflow(resp=True, err=True)
    f.marked = ":star:"
    f.comment = "look at this"
    f.metadata = {"seen": 3, "tags": ["a", "b"], "nested": {"x": (1, 2)}, "raw": b"\x00\xff", 7: None}
    f.is_replay = "request"
    f.server_conn.certificate_list = [cert, cert]
    f.client_conn.mitmcert = cert
    f.backup()
    f.request.path = "/changed"
    return f


def every_flow_type(cert) -> list:
    return [
        tflow.tflow(),
        tflow.tflow(resp=True),
        tflow.tflow(err=True),
        tflow.tflow(resp=True, ws=True),
        tflow.twebsocketflow(close_code=1000, close_reason="bye"),
        gzip_flow(),
        decorated_flow(cert),
        tflow.ttcpflow(),
        tflow.ttcpflow(err=True, messages=[]),
        tflow.tudpflow(),
        tflow.tdnsflow(),
        tflow.tdnsflow(resp=True),
        tflow.tdnsflow(err=True),
    ]


@pytest.fixture
def flows_of_every_type(cert):
    """A factory, so each call (each hypothesis example) gets fresh flows to damage."""
    return lambda: every_flow_type(cert)
