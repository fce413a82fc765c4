"""Add a header to every response.

    gateway up --mode regular -s examples/add_header.py
    curl -x http://127.0.0.1:8080 -si http://example.com/ | grep -i x-gateway

The simplest kind of addon: a module-level function named after the hook.
"""

from gateway import http


def response(flow: http.HTTPFlow) -> None:
    flow.response.headers["x-gateway"] = "seen"
