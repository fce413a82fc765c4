"""Reason phrases for status codes."""

from __future__ import annotations

import http

RESPONSES: dict[int, str] = {s.value: s.phrase for s in http.HTTPStatus}
RESPONSES.setdefault(418, "I'm a teapot")


def reason_phrase(code: int) -> str:
    return RESPONSES.get(code, "")
