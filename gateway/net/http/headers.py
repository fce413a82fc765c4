"""Content-Type parsing, for charset detection and form handling."""

from __future__ import annotations

from email.message import Message
from email.utils import collapse_rfc2231_value


def parse_content_type(c: str) -> tuple[str, str, dict[str, str]] | None:
    """``"text/html; charset=UTF-8"`` -> ``("text", "html", {"charset": "UTF-8"})``.

    Parameter names are lower-cased; None if there is no ``type/subtype``.
    """
    if not c:
        return None
    head, _, params_str = c.partition(";")
    ts = head.split("/", 1)
    if len(ts) != 2 or not ts[0].strip() or not ts[1].strip():
        return None
    # email.message handles quoting and RFC 2231 parameters correctly.
    params: dict[str, str] = {}
    if params_str.strip():
        msg = Message()
        msg["content-type"] = "x/x;" + params_str
        for key, value in msg.get_params(failobj=[])[1:]:
            if isinstance(value, tuple):  # RFC 2231: (charset, language, value)
                value = collapse_rfc2231_value(value)
            if key:
                params[key.lower()] = value
    return ts[0].strip().lower(), ts[1].strip().lower(), params


def assemble_content_type(type: str, subtype: str, parameters: dict[str, str]) -> str:
    if not parameters:
        return f"{type}/{subtype}"
    params = "; ".join(
        f"{k}={v}" if v and all(c.isalnum() or c in "-_.!~*'+" for c in v) else f'{k}="{v}"'
        for k, v in parameters.items()
    )
    return f"{type}/{subtype}; {params}"
