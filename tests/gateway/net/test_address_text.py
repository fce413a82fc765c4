"""Addresses in log lines: what a user would type or search for, never a raw tuple."""

from __future__ import annotations

import pytest

from gateway.net.address_text import format_address


@pytest.mark.parametrize("address,text", [
    (("::ffff:10.99.1.2", 54767, 0, 0), "10.99.1.2:54767"),
    (("10.99.1.2", 54767), "10.99.1.2:54767"),
    (("2001:db8::1", 53, 0, 0), "[2001:db8::1]:53"),
    (("fe80::1%eth0", 5, 0, 2), "[fe80::1%eth0]:5"),
    (("gateway.internal", 80), "gateway.internal:80"),
    (None, "?"),
    ("/run/sock", "/run/sock"),
])
def test_format_address(address, text) -> None:  # type: ignore[no-untyped-def]
    assert format_address(address) == text
